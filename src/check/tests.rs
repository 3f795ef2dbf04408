//! The checks on real runs whose state a test breaks on purpose, and the
//! promise the fast path relies on: an event changes no process outside
//! [`World::touched`].

use std::path::Path;

use super::*;
use crate::engine::SEC;
use crate::scenario::{parse, Format};
use crate::sim::Simulation;

fn sim(toml: &str, seed: u64) -> Simulation {
    let s = parse(toml, Format::Toml, "t.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    Simulation::new(s, seed).unwrap()
}

/// A 3+3 cluster, node timeout 5 s, with these extra lines.
fn cluster(duration: &str, extra: &str) -> String {
    format!("duration = \"{duration}\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\ncluster-node-timeout = 5000\n{extra}")
}

fn names(sim: &Simulation) -> Vec<&'static str> {
    sim.checks.violations().iter().map(|v| v.check).collect()
}

/// Checks every process after every event and fails if one outside what
/// the event touches changed.
#[derive(Default)]
struct AllSeen {
    before: Vec<Seen>,
    touches: Option<Touches>,
    events: u64,
}

impl Hooks<World> for AllSeen {
    fn before(&mut self, _at: SimTime, _seq: u64, event: &Event, world: &World) {
        self.before = world.procs.iter().map(Seen::of).collect();
        self.touches = Some(Touches::of(event));
    }

    fn after(&mut self, stats: &RunStats, world: &World) {
        self.events += 1;
        let touches = self.touches.expect("before ran");
        let Some(touched) = world.touched(touches) else {
            return;
        };
        for (p, proc) in world.procs.iter().enumerate() {
            if !touched.contains(&(p as u32)) {
                assert_eq!(
                    Seen::of(proc),
                    self.before[p],
                    "{} changed at {} by an event touching {touches:?}",
                    proc.name,
                    stats.now
                );
            }
        }
    }
}

#[test]
fn an_event_changes_no_process_it_does_not_touch() {
    for file in [
        "master-crash.toml",
        "partition-master.toml",
        "paused-master.toml",
        "host-crash.toml",
        "from-dump.toml",
        "master-crash-load.toml",
    ] {
        let s = crate::scenario::load(&Path::new("scenarios").join(file)).unwrap();
        let seed = s.seed;
        let mut sim = Simulation::new(s, seed).unwrap();
        let mut all = AllSeen::default();
        sim.run(&mut all);
        assert_eq!(all.events, sim.stats.events, "{file}");
    }
}

/// node-2 takes node-1's config epoch and slot 0 behind everyone's back.
#[test]
fn two_masters_claiming_a_slot_with_one_epoch_is_reported() {
    let mut s = sim(&cluster("20s", ""), 1);
    s.run_until(5 * SEC, &mut ());
    let epoch = s.world.node(0).unwrap().myself().config_epoch;
    let node = s.world.procs[1].node.as_mut().unwrap();
    let me = node.lookup(&node.my_id()).unwrap();
    node.nm(me).config_epoch = epoch;
    node.del_slot(0);
    node.add_slot(me, 0);
    s.run(&mut ());
    let v = s.checks.violations();
    assert_eq!(names(&s), [unique_config_epoch_per_slot::NAME], "{v:?}");
    assert_eq!(
        v[0].message,
        format!("node-1 and node-2 both claim slot 0 with config epoch {epoch}")
    );
    assert!(v[0].at > 5 * SEC && v[0].at < 5 * SEC + SEC / 10, "{v:?}");
}

/// Two masters share a config epoch; Redis's collision handling separates
/// them within a ping, long before the check's node timeout.
#[test]
fn a_config_epoch_collision_that_redis_resolves_is_not_reported() {
    let mut s = sim(&cluster("30s", ""), 1);
    s.run_until(5 * SEC, &mut ());
    let epoch = |s: &Simulation, p: u32| s.world.node(p).unwrap().myself().config_epoch;
    let (e1, e2) = (epoch(&s, 0), epoch(&s, 1));
    let node = s.world.procs[1].node.as_mut().unwrap();
    let me = node.lookup(&node.my_id()).unwrap();
    node.nm(me).config_epoch = e1;
    s.run(&mut ());
    assert!(
        s.checks.violations().is_empty(),
        "{:?}",
        s.checks.violations()
    );
    let (a, b) = (epoch(&s, 0), epoch(&s, 1));
    assert!(
        a != b && (a, b) != (e1, e2),
        "resolved with a new epoch: {a} {b}"
    );
}

/// A vote recorded twice for one epoch, as a broken voter would.
#[test]
fn a_second_vote_in_an_epoch_in_the_history_is_reported() {
    let mut s = sim(
        &cluster(
            "30s",
            "[[faults]]\nat = \"10s\"\naction = \"kill\"\nnode = \"node-1\"\n",
        ),
        1,
    );
    s.run_until(25 * SEC, &mut ());
    let vote = s
        .world
        .history
        .iter()
        .find(|h| {
            matches!(
                h.kind,
                HistoryKind::Note {
                    note: Note::VoteGranted { .. },
                    ..
                }
            )
        })
        .cloned()
        .expect("a vote in the failover");
    let HistoryKind::Note {
        note: Note::VoteGranted { epoch, .. },
        ..
    } = &vote.kind
    else {
        unreachable!()
    };
    let (voter, epoch) = (vote.proc.unwrap(), *epoch);
    let mut again = vote.clone();
    again.at = 25 * SEC;
    s.world.history.push(again);
    s.run(&mut ());
    let v = s.checks.violations();
    assert_eq!(names(&s), [one_vote_per_epoch::NAME], "{v:?}");
    assert!(v[0].message.starts_with(&format!(
        "{} voted twice in epoch {epoch}: ",
        s.world.procs[voter as usize].name
    )));
    assert_eq!(v[0].at, 25 * SEC);
}

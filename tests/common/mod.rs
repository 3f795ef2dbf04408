//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use redsim::client::{Cmd, OpRecord, Outcome};
use redsim::engine::{SimTime, SEC};
use redsim::node::Note;
use redsim::scenario::{parse, Format, Scenario};
use redsim::sim::Simulation;
use redsim::world::{DataEvent, HistoryKind};

pub fn scenario(toml: &str) -> Scenario {
    parse(toml, Format::Toml, "test.toml", Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
}

/// The load error of scenario `toml` (labelled `t.toml`).
pub fn load_error(toml: &str) -> String {
    parse(toml, Format::Toml, "t.toml", Path::new("."))
        .unwrap_err()
        .to_string()
}

pub fn run(toml: &str, seed: u64) -> Simulation {
    let mut sim = Simulation::new(scenario(toml), seed).expect("runnable");
    sim.run(&mut ());
    sim
}

/// A 3+3 cluster with node timeout `nt_ms` and the given faults (TOML).
pub fn cluster_3x3(nt_ms: u64, duration: &str, faults: &str) -> String {
    format!(
        "duration = \"{duration}\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\ncluster-node-timeout = {nt_ms}\n{faults}"
    )
}

/// [`cluster_3x3`] with more `[config]` lines.
pub fn cluster_3x3_conf(nt_ms: u64, duration: &str, config: &str, faults: &str) -> String {
    cluster_3x3(nt_ms, duration, &format!("{config}\n{faults}"))
}

/// The process whose node is the master of process `p`'s node.
pub fn master_of(sim: &Simulation, p: u32) -> Option<u32> {
    let id = sim.world.node(p)?.master_id()?;
    sim.world.proc_of_id(&id)
}

/// Every process is running and reports `cluster_state:ok`.
pub fn all_running_and_ok(sim: &Simulation) -> bool {
    sim.world
        .procs
        .iter()
        .all(|p| p.node.as_ref().is_some_and(|n| n.state_ok()))
}

/// Times (µs) at which observer `obs` noted something about `about`.
pub fn notes(sim: &Simulation, obs: u32, about: u32, f: impl Fn(&Note) -> bool) -> Vec<SimTime> {
    sim.world
        .history
        .iter()
        .filter_map(|h| match &h.kind {
            HistoryKind::Note {
                note,
                about: Some(a),
            } if *a == about && h.proc == Some(obs) && f(note) => Some(h.at),
            _ => None,
        })
        .collect()
}

/// Times (µs) at which process `p` noted something, whatever it was about.
pub fn notes_at(sim: &Simulation, p: u32, f: impl Fn(&Note) -> bool) -> Vec<SimTime> {
    sim.world
        .history
        .iter()
        .filter_map(|h| match &h.kind {
            HistoryKind::Note { note, .. } if h.proc == Some(p) && f(note) => Some(h.at),
            _ => None,
        })
        .collect()
}

/// A `[[faults]]` entry.
pub fn fault(at: &str, action: &str, node: &str) -> String {
    format!("[[faults]]\nat = \"{at}\"\naction = \"{action}\"\nnode = \"{node}\"\n")
}

/// A `failover` fault: `CLUSTER FAILOVER [FORCE|TAKEOVER]` sent to `node`.
pub fn failover(at: &str, node: &str, mode: &str) -> String {
    format!("{}mode = \"{mode}\"\n", fault(at, "failover", node))
}

/// The value of `key` in a `CLUSTER INFO` reply.
pub fn info_field(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim_end().to_string())
}

pub fn first_pfail(sim: &Simulation, obs: u32, about: u32) -> Option<SimTime> {
    notes(sim, obs, about, |n| matches!(n, Note::Pfail { .. }))
        .first()
        .copied()
}

pub fn first_fail(sim: &Simulation, obs: u32, about: u32) -> Option<SimTime> {
    notes(sim, obs, about, |n| {
        matches!(n, Note::FailMarked { .. } | Note::FailReceived { .. })
    })
    .first()
    .copied()
}

/// State changes (time, ok) of process `p`.
pub fn state_changes(sim: &Simulation, p: u32) -> Vec<(SimTime, bool)> {
    sim.world
        .history
        .iter()
        .filter_map(|h| match &h.kind {
            HistoryKind::Note {
                note: Note::StateChanged { ok },
                ..
            } if h.proc == Some(p) => Some((h.at, *ok)),
            _ => None,
        })
        .collect()
}

pub fn secs(t: SimTime) -> f64 {
    t as f64 / SEC as f64
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The history entries of process `p` about replication and persistence.
pub fn data_events(sim: &Simulation, p: u32) -> Vec<(SimTime, DataEvent)> {
    sim.world
        .history
        .iter()
        .filter_map(|h| match &h.kind {
            HistoryKind::Data(e) if h.proc == Some(p) => Some((h.at, e.clone())),
            _ => None,
        })
        .collect()
}

/// Bundled cache scenario `path` with every node's `maxmemory-policy` set to
/// `policy`: node-1's hit ratio, its evicted keys, and the simulation. Its
/// peak memory stays within `maxmemory` (a few KB of rounding allowed).
pub fn cache_run(
    path: &str,
    policy: redsim::node::config::MaxmemoryPolicy,
) -> (f64, u64, Simulation) {
    let mut s = redsim::scenario::load(Path::new(path)).expect("bundled scenario");
    for n in &mut s.nodes {
        n.config.maxmemory_policy = policy;
    }
    let seed = s.seed;
    let mut sim = Simulation::new(s, seed).expect("runnable");
    sim.run(&mut ());
    let n = sim.world.node(0).expect("node-1 runs");
    let st = n.keyspace.stats;
    let ratio = st.keyspace_hits as f64 / (st.keyspace_hits + st.keyspace_misses) as f64;
    assert!(n.used_memory_peak() <= n.maxmemory() + 4096, "{policy:?}");
    (ratio, st.evicted_keys, sim)
}

/// The client requests answered with an error, after checking that each
/// was a write refused with `text` and that every read was served (a node
/// refusing writes and serving reads).
pub fn writes_refused_with<'a>(sim: &'a Simulation, text: &str) -> Vec<&'a OpRecord> {
    let c = &sim.world.clients;
    let refused: Vec<_> = c
        .ops
        .iter()
        .filter(|r| r.outcome == Outcome::Error)
        .collect();
    for r in &refused {
        assert!(r.cmd.is_write(), "{r:?}");
        assert_eq!(c.errors.text(r.error), Some(text), "{r:?}");
    }
    assert!(c
        .ops
        .iter()
        .filter(|r| r.cmd == Cmd::Get)
        .all(|r| r.outcome.is_ok()));
    refused
}

//! `redsim fuzz`: many runs, each drawn from its own seed (a cluster, its
//! configuration, a workload and a fault schedule; see [`case`]), checked by
//! the invariant checks; a failing run is shrunk with proptest to a small
//! scenario that fails the same check, and written out at once.
//!
//! Each run is single-threaded and depends on its seed alone; `--jobs`
//! threads take seeds from a shared counter and the results are reported in
//! seed order, so a campaign's results do not depend on `--jobs`.

pub mod case;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};

use crate::engine::SimTime;
use crate::node::Planted;
use crate::scenario::{self, Format};
use crate::sim::Simulation;

pub use case::{Case, Shape};

/// What a campaign is asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    pub runs: u64,
    pub jobs: usize,
    /// The campaign's seed: run `i` draws from `run_seed(seed, i)`.
    pub seed: u64,
    /// `(i, n)`: only runs whose index is `i` modulo `n`.
    pub shard: (u64, u64),
    /// Where shrunk failures are written (`None`: not written).
    pub out_dir: Option<PathBuf>,
    pub shrink: bool,
    /// A test-only broken rule (see [`Planted`]).
    pub planted: Option<Planted>,
}

/// A base scenario: its cluster, configuration and workloads are kept, only
/// the faults are drawn.
#[derive(Clone, Debug)]
pub struct Base {
    /// The file's tables without `name`, `seed`, `duration`, `faults` and
    /// `expect`.
    table: toml::Table,
    shape: Shape,
    name: String,
}

impl Base {
    pub fn load(path: &Path) -> Result<Base, String> {
        let s = scenario::load(path).map_err(|e| e.to_string())?;
        crate::sim::check_runnable(&s)?;
        let mut table = scenario::load_table(path)?;
        for k in ["name", "seed", "duration", "faults", "expect"] {
            table.remove(k);
        }
        let node_timeout_ms = s.max_node_timeout_ms();
        let shape = Shape {
            nodes: s.nodes.len() as u32,
            replicas: s.cluster.replicas,
            hosts: s.cluster.hosts.max(1),
            node_timeout_ms,
            latency: crate::check::latency_max(s.network.latency),
        };
        Ok(Base {
            table,
            shape,
            name: s.name,
        })
    }
}

/// The seed of run `i` of a campaign seeded `seed` (SplitMix64 of both, so
/// that neighbouring campaigns do not share runs).
pub fn run_seed(seed: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i.wrapping_add(1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// proptest's generator for one run, from the run's seed.
fn runner_for(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(!seed).to_le_bytes());
    let config = PtConfig {
        failure_persistence: None,
        ..PtConfig::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// The scenario file of `case` run with `seed`.
pub fn scenario_text(case: &Case, seed: u64, base: Option<&Base>) -> String {
    let shape = match base {
        Some(b) => b.shape,
        None => case.setup.shape(),
    };
    let (faults, duration) = case.faults_toml(&shape);
    let duration = case::duration_str(duration);
    match base {
        None => format!(
            "name = \"fuzz {seed}\"\nseed = {seed}\nduration = \"{duration}\"\n\n{}{faults}",
            case.setup.toml()
        ),
        Some(b) => {
            let mut table = b.table.clone();
            table.insert("name".into(), format!("{} fuzz {seed}", b.name).into());
            table.insert("duration".into(), duration.into());
            let faults: toml::Table = toml::from_str(&faults).expect("generated faults parse");
            table.extend(faults);
            // The seed as text: a TOML integer is an i64, and half the
            // seeds are above i64::MAX (redsim reads them as u64).
            let table = toml::to_string(&table).expect("a TOML table serialises");
            format!("seed = {seed}\n{table}")
        }
    }
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// The first violation: the check's name, when, and what.
    Violation {
        check: String,
        at: SimTime,
        message: String,
    },
    /// The simulator panicked (a bug of redsim's, never of Redis's).
    Panic(String),
    /// The drawn scenario did not load (a bug of the fuzzer's).
    Invalid(String),
}

impl Outcome {
    /// What a shrunk case must keep failing: the same check (or a panic).
    fn same_failure(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Violation { check: a, .. }, Outcome::Violation { check: b, .. }) => a == b,
            (Outcome::Panic(_), Outcome::Panic(_)) => true,
            (Outcome::Invalid(_), Outcome::Invalid(_)) => true,
            _ => false,
        }
    }

    pub fn failed(&self) -> bool {
        *self != Outcome::Pass
    }

    /// A short name: `pass`, the check's name, `panic` or `invalid`.
    pub fn label(&self) -> &str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Violation { check, .. } => check,
            Outcome::Panic(_) => "panic",
            Outcome::Invalid(_) => "invalid",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Outcome::Pass => "pass".into(),
            Outcome::Violation { check, at, message } => {
                format!("{check} at {}: {message}", crate::world::fmt_time(*at))
            }
            Outcome::Panic(m) => format!("panic: {m}"),
            Outcome::Invalid(m) => format!("invalid scenario: {m}"),
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    pub index: u64,
    pub seed: u64,
    pub outcome: Outcome,
    pub faults: usize,
    /// What the run measured (zeros if it did not run).
    pub m: Measured,
    /// Where the shrunk scenario was written, if it was.
    pub regression: Option<PathBuf>,
    /// The shrunk case's fault count, if shrunk.
    pub shrunk_faults: Option<usize>,
}

/// Run a scenario text once, catching panics.
pub fn run_text(text: &str, seed: u64, planted: Option<Planted>) -> (Outcome, Option<Measured>) {
    let scenario = match scenario::parse(text, Format::Toml, "fuzz.toml", Path::new(".")) {
        Ok(s) => s,
        Err(e) => return (Outcome::Invalid(e.to_string()), None),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut sim = Simulation::new(scenario, seed)?;
        sim.plant(planted);
        sim.run(&mut ());
        let outcome = match sim.checks.violations().first() {
            None => Outcome::Pass,
            Some(v) => Outcome::Violation {
                check: v.check.to_string(),
                at: v.at,
                message: v.message.clone(),
            },
        };
        let totals = sim.client_totals();
        let windows = sim.checks.split_brain();
        let end = sim.stats.now;
        Ok::<_, String>((
            outcome,
            Measured {
                events: sim.stats.events,
                sim_time: sim.stats.now,
                failovers: sim.failovers().len(),
                lost_writes: totals.lost,
                acked_writes: totals.writes.acknowledged,
                lost_by_window: sim.checks.lost_writes().by_window,
                split_brains: windows.len() as u64,
                split_brain_max: windows
                    .iter()
                    .map(|w| w.to.unwrap_or(end) - w.from)
                    .max()
                    .unwrap_or(0),
            },
        ))
    }));
    match result {
        Ok(Ok((o, m))) => (o, Some(m)),
        Ok(Err(e)) => (Outcome::Invalid(e), None),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into());
            (Outcome::Panic(msg), None)
        }
    }
}

/// Figures of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    pub events: u64,
    pub sim_time: SimTime,
    pub failovers: usize,
    pub lost_writes: u64,
    pub acked_writes: u64,
    pub lost_by_window: [u64; 5],
    pub split_brains: u64,
    pub split_brain_max: SimTime,
}

/// The shrinking budget: runs tried while shrinking one failure.
const SHRINK_STEPS: usize = 400;

/// Shrink a failing case with proptest's value tree (fewer episodes, fewer
/// nodes, plainer settings) as long as it fails the same way. Returns the
/// smallest failing case and its outcome.
fn shrink(
    mut tree: impl ValueTree<Value = Case>,
    seed: u64,
    base: Option<&Base>,
    planted: Option<Planted>,
    first: &Outcome,
) -> (Case, Outcome) {
    let mut best = (tree.current(), first.clone());
    let mut steps = 0;
    while steps < SHRINK_STEPS && tree.simplify() {
        loop {
            steps += 1;
            let case = tree.current();
            let (o, _) = run_text(&scenario_text(&case, seed, base), seed, planted);
            if o.same_failure(first) {
                best = (case, o);
                break;
            }
            if steps >= SHRINK_STEPS || !tree.complicate() {
                return best;
            }
        }
    }
    best
}

/// Draw, run and (if it fails) shrink run `index` of a campaign.
pub fn fuzz_one(index: u64, opts: &Options, base: Option<&Base>) -> RunReport {
    let seed = run_seed(opts.seed, index);
    let mut runner = runner_for(seed);
    let tree = case::strategy()
        .new_tree(&mut runner)
        .expect("the fuzz strategy never rejects");
    let case = tree.current();
    let shape = base.map_or_else(|| case.setup.shape(), |b| b.shape);
    let text = scenario_text(&case, seed, base);
    let (outcome, measured) = run_text(&text, seed, opts.planted);
    let m = measured.unwrap_or_default();
    let mut report = RunReport {
        index,
        seed,
        outcome: outcome.clone(),
        faults: case.fault_count(&shape),
        m,
        regression: None,
        shrunk_faults: None,
    };
    if outcome.failed() && opts.shrink {
        let (small, small_outcome) = shrink(tree, seed, base, opts.planted, &outcome);
        let small_shape = base.map_or_else(|| small.setup.shape(), |b| b.shape);
        report.shrunk_faults = Some(small.fault_count(&small_shape));
        if let Some(dir) = &opts.out_dir {
            let text = regression_text(&small, seed, base, &small_outcome, opts);
            match write_regression(dir, &small_outcome, seed, &text) {
                Ok(p) => report.regression = Some(p),
                Err(e) => eprintln!("warning: {e}"),
            }
        }
    }
    report
}

/// The file written for a shrunk failure: a header saying where it came
/// from and what it breaks, then the scenario.
fn regression_text(
    case: &Case,
    seed: u64,
    base: Option<&Base>,
    outcome: &Outcome,
    opts: &Options,
) -> String {
    let mut head = format!(
        "# Found by `redsim fuzz --seed {} --runs {}`: run seed {seed}, shrunk.\n# Breaks: {}\n",
        opts.seed,
        opts.runs,
        outcome.describe().replace('\n', " ")
    );
    if let Some(p) = opts.planted {
        head.push_str(&format!(
            "# With the planted bug {:?} (test-only).\n",
            p.name()
        ));
    }
    format!("{head}\n{}", scenario_text(case, seed, base))
}

fn write_regression(
    dir: &Path,
    outcome: &Outcome,
    seed: u64,
    text: &str,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let path = dir.join(format!("{}-{seed}.toml", outcome.label()));
    std::fs::write(&path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(path)
}

/// Run a campaign: the runs of this shard, `opts.jobs` at a time; `progress`
/// is called after each run (from the worker threads). Reports come back in
/// index order.
pub fn campaign(
    opts: &Options,
    base: Option<&Base>,
    progress: &(dyn Fn(&RunReport) + Sync),
) -> Vec<RunReport> {
    let (shard, shards) = opts.shard;
    let indices: Vec<u64> = (0..opts.runs).filter(|i| i % shards == shard).collect();
    parallel_map(&indices, opts.jobs, |&index| {
        let r = fuzz_one(index, opts, base);
        progress(&r);
        r
    })
}

/// `f` of each item, `jobs` threads at a time taking items in order from
/// a shared counter; the results in the items' order, whatever `jobs`.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(item) = items.get(k) else { break };
                let r = f(item);
                results.lock().expect("no worker panics holding it")[k] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panics holding it")
        .into_iter()
        .flatten()
        .collect()
}

/// The scenario file run `index` of campaign `seed` draws.
pub fn show(seed: u64, index: u64, base: Option<&Base>) -> String {
    let run = run_seed(seed, index);
    let case = case::strategy()
        .new_tree(&mut runner_for(run))
        .expect("the fuzz strategy never rejects")
        .current();
    format!(
        "# redsim fuzz --seed {seed}: run {index}, run seed {run}\n{}",
        scenario_text(&case, run, base)
    )
}

/// What a campaign found, added up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub runs: u64,
    pub failed: u64,
    /// Failing runs by label (check name, `panic`, `invalid`), in name order.
    pub by_label: std::collections::BTreeMap<String, u64>,
    pub events: u64,
    pub sim_time: SimTime,
    pub failovers: u64,
    pub acked_writes: u64,
    pub lost_writes: u64,
    pub lost_by_window: [u64; 5],
    /// Runs that lost at least one acknowledged write.
    pub runs_losing_writes: u64,
    pub split_brains: u64,
    pub runs_with_split_brain: u64,
    pub split_brain_max: SimTime,
}

impl Summary {
    pub fn of(reports: &[RunReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            s.runs += 1;
            if r.outcome.failed() {
                s.failed += 1;
                *s.by_label.entry(r.outcome.label().to_string()).or_default() += 1;
            }
            let m = &r.m;
            s.events += m.events;
            s.sim_time += m.sim_time;
            s.failovers += m.failovers as u64;
            s.acked_writes += m.acked_writes;
            s.lost_writes += m.lost_writes;
            for (a, b) in s.lost_by_window.iter_mut().zip(m.lost_by_window) {
                *a += b;
            }
            s.runs_losing_writes += u64::from(m.lost_writes > 0);
            s.split_brains += m.split_brains;
            s.runs_with_split_brain += u64::from(m.split_brains > 0);
            s.split_brain_max = s.split_brain_max.max(m.split_brain_max);
        }
        s
    }

    /// The plain-text report: failures (with their shrunk files), then the
    /// totals and the anomalies measured.
    pub fn text(&self, opts: &Options, reports: &[RunReport]) -> String {
        let mut t = String::new();
        let (i, n) = opts.shard;
        let shard = if n > 1 {
            format!(", shard {i}/{n}")
        } else {
            String::new()
        };
        t.push_str(&format!(
            "fuzz campaign: seed {}, {} runs{shard}\n",
            opts.seed, self.runs
        ));
        for r in reports.iter().filter(|r| r.outcome.failed()) {
            t.push_str(&format!(
                "  FAIL run {} (seed {}, {} faults): {}\n",
                r.index,
                r.seed,
                r.faults,
                r.outcome.describe()
            ));
            if let (Some(p), Some(k)) = (&r.regression, r.shrunk_faults) {
                t.push_str(&format!(
                    "       shrunk to {k} faults: {} (replay: redsim run {})\n",
                    p.display(),
                    p.display()
                ));
            }
        }
        t.push_str(&format!(
            "checks: {} runs passed, {} failed",
            self.runs - self.failed,
            self.failed
        ));
        if !self.by_label.is_empty() {
            let parts: Vec<String> = self
                .by_label
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            t.push_str(&format!(" ({})", parts.join(", ")));
        }
        t.push('\n');
        t.push_str(&format!(
            "simulated: {} s, {} events, {} failovers\n",
            self.sim_time / crate::engine::SEC,
            self.events,
            self.failovers
        ));
        t.push_str("anomalies (Redis's by design, not violations):\n");
        t.push_str(&format!(
            "  acknowledged writes lost: {} of {} ({} runs lost some)\n",
            self.lost_writes, self.acked_writes, self.runs_losing_writes
        ));
        for (w, n) in crate::check::lost_writes_explained::WINDOWS
            .iter()
            .zip(self.lost_by_window)
        {
            t.push_str(&format!("    {w}: {n}\n"));
        }
        t.push_str(&format!(
            "  split-brain windows (two nodes accepting writes for a slot): {} in {} runs, longest {}\n",
            self.split_brains,
            self.runs_with_split_brain,
            crate::world::fmt_time(self.split_brain_max)
        ));
        t
    }

    /// The `--json` report.
    pub fn json(&self, opts: &Options, reports: &[RunReport]) -> serde_json::Value {
        let failures: Vec<serde_json::Value> = reports
            .iter()
            .filter(|r| r.outcome.failed())
            .map(|r| {
                serde_json::json!({
                    "index": r.index,
                    "seed": r.seed,
                    "check": r.outcome.label(),
                    "message": r.outcome.describe(),
                    "faults": r.faults,
                    "shrunk_faults": r.shrunk_faults,
                    "regression": r.regression.as_ref().map(|p| p.display().to_string()),
                })
            })
            .collect();
        serde_json::json!({
            "seed": opts.seed,
            "runs": self.runs,
            "shard": format!("{}/{}", opts.shard.0, opts.shard.1),
            "passed": self.runs - self.failed,
            "failed": self.failed,
            "failed_by_check": self.by_label,
            "failures": failures,
            "events": self.events,
            "sim_time_ms": self.sim_time / crate::engine::MS,
            "failovers": self.failovers,
            "anomalies": {
                "acknowledged_writes": self.acked_writes,
                "lost_writes": self.lost_writes,
                "runs_losing_writes": self.runs_losing_writes,
                "lost_writes_by_window": crate::check::lost_writes_explained::WINDOWS
                    .iter()
                    .zip(self.lost_by_window)
                    .map(|(w, n)| (w.to_string(), serde_json::json!(n)))
                    .collect::<serde_json::Map<String, serde_json::Value>>(),
                "split_brain_windows": self.split_brains,
                "runs_with_split_brain": self.runs_with_split_brain,
                "longest_split_brain_ms": self.split_brain_max / crate::engine::MS,
            },
        })
    }
}

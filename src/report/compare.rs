//! `redsim compare`: several scenarios run, their outcomes side by side —
//! typically the same fault schedule against replication only, Sentinel
//! and Cluster setups of the same size (`scenarios/compare/`). For each
//! run: the setup, the failover (who replaced the killed master, how long
//! after the fault), how long writes kept failing (`max_unavailable`, the
//! `--json` summary's figure), the writes acknowledged, failed and lost
//! (with the lost-writes windows that explain them), and the invariant
//! violations. A fault that is not in every scenario's schedule is named
//! under the table, so a difference of setups is not mistaken for one of
//! schedules.

use std::fmt::Write;

use serde_json::{json, Value};

use crate::check::lost_writes_explained::WINDOWS;
use crate::scenario::Mode;
use crate::sim::{ExpectResult, Simulation};
use crate::world::fmt_time;

/// One run's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub scenario: String,
    pub setup: String,
    pub seed: u64,
    pub trace_hash: String,
    /// The first failover: promoted node, kind, delay after its fault.
    pub failover: Option<(String, String, Option<u64>)>,
    pub max_unavailable_ms: u64,
    pub writes_acknowledged: u64,
    pub writes_failed: u64,
    pub writes_lost: u64,
    /// Lost writes per window of `lost-writes-explained` (non-zero only).
    pub lost_by_window: Vec<(&'static str, u64)>,
    pub violations: usize,
    /// `(time, fault)` of its schedule, in words.
    pub faults: Vec<(u64, String)>,
    /// Whether every expectation held.
    pub ok: bool,
}

impl Figures {
    /// The figures of a finished run with its expectations' `results`.
    pub fn of(sim: &Simulation, results: &[ExpectResult]) -> Figures {
        let w = &sim.world;
        let s = &w.scenario;
        let n = s.nodes.len();
        let setup = match s.cluster.mode {
            Mode::Cluster => format!(
                "cluster: {n} nodes, {} masters",
                n / (s.cluster.replicas as usize + 1)
            ),
            Mode::Standalone => "standalone: 1 node".to_string(),
            Mode::Replication => format!("replication: 1 master + {} replicas", n - 1),
            Mode::Sentinel => format!(
                "sentinel: 1 master + {} replicas, {} sentinels",
                n - 1,
                w.sentinels.procs.len()
            ),
        };
        let t = sim.client_totals();
        let lost = sim.checks.lost_writes();
        let failover = sim.failovers().first().map(|f| {
            (
                w.procs[f.promoted as usize].name.clone(),
                f.kind.as_str().to_string(),
                f.died.map(|d| (f.promoted_at - d) / 1000),
            )
        });
        Figures {
            scenario: s.name.clone(),
            setup,
            seed: w.seed,
            trace_hash: sim.stats.hash.hex(),
            failover,
            max_unavailable_ms: t.unavailable.iter().max().copied().unwrap_or(0) / 1000,
            writes_acknowledged: t.writes.acknowledged,
            writes_failed: t.writes.failed,
            writes_lost: t.lost,
            lost_by_window: WINDOWS
                .iter()
                .zip(lost.by_window)
                .filter(|(_, n)| *n > 0)
                .map(|(w, n)| (*w, n))
                .chain((lost.unexplained > 0).then_some(("unexplained", lost.unexplained)))
                .collect(),
            violations: sim.checks.violations().len(),
            faults: s
                .faults
                .iter()
                .map(|f| (f.at / 1000, super::describe_fault(w, &f.action)))
                .collect(),
            ok: results.iter().all(|r| r.ok != Some(false)),
        }
    }

    fn failover_text(&self) -> String {
        match &self.failover {
            None => "none".to_string(),
            Some((node, kind, Some(after))) => {
                format!("{node} ({kind}), {} after", fmt_time(after * 1000))
            }
            Some((node, kind, None)) => format!("{node} ({kind})"),
        }
    }

    fn lost_text(&self) -> String {
        let mut s = self.writes_lost.to_string();
        if !self.lost_by_window.is_empty() {
            let w: Vec<String> = self
                .lost_by_window
                .iter()
                .map(|(w, n)| format!("{n} {w}"))
                .collect();
            let _ = write!(s, " ({})", w.join(", "));
        }
        s
    }
}

/// The faults that are not in every run's schedule, in words.
pub fn schedule_differences(runs: &[Figures]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in runs {
        for f in &r.faults {
            if !runs.iter().all(|o| o.faults.contains(f)) {
                let line = format!("{} {} ({})", fmt_time(f.0 * 1000), f.1, r.scenario);
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
    }
    out
}

/// The comparison as a text table: one column per run.
pub fn table(runs: &[Figures]) -> String {
    let rows: Vec<(&str, Vec<String>)> = vec![
        (
            "scenario",
            runs.iter().map(|r| r.scenario.clone()).collect(),
        ),
        ("setup", runs.iter().map(|r| r.setup.clone()).collect()),
        (
            "seed, trace hash",
            runs.iter()
                .map(|r| format!("{} {}", r.seed, r.trace_hash))
                .collect(),
        ),
        (
            "failover",
            runs.iter().map(Figures::failover_text).collect(),
        ),
        (
            "writes failing, longest",
            runs.iter()
                .map(|r| fmt_time(r.max_unavailable_ms * 1000))
                .collect(),
        ),
        (
            "writes acknowledged",
            runs.iter()
                .map(|r| r.writes_acknowledged.to_string())
                .collect(),
        ),
        (
            "writes failed",
            runs.iter().map(|r| r.writes_failed.to_string()).collect(),
        ),
        ("writes lost", runs.iter().map(Figures::lost_text).collect()),
        (
            "invariant violations",
            runs.iter().map(|r| r.violations.to_string()).collect(),
        ),
    ];
    let label_w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 2;
    let col_w: Vec<usize> = (0..runs.len())
        .map(|i| rows.iter().map(|(_, v)| v[i].len()).max().unwrap_or(0) + 2)
        .collect();
    let mut s = String::new();
    for (label, values) in &rows {
        let _ = write!(s, "{label:<label_w$}");
        for (v, w) in values.iter().zip(&col_w) {
            let _ = write!(s, "{v:<w$}");
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
    }
    let diff = schedule_differences(runs);
    if !diff.is_empty() {
        let _ = writeln!(s, "\nnot in every schedule:");
        for d in diff {
            let _ = writeln!(s, "  {d}");
        }
    }
    s
}

/// The comparison as JSON: `runs` (one object per run) and
/// `schedule_differences`.
pub fn json(runs: &[Figures]) -> Value {
    let runs_json: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "scenario": r.scenario,
                "setup": r.setup,
                "seed": r.seed,
                "trace_hash": r.trace_hash,
                "failover": r.failover.as_ref().map(|(node, kind, after)| json!({
                    "promoted": node, "kind": kind, "after_fault_ms": after,
                })),
                "max_unavailable_ms": r.max_unavailable_ms,
                "writes": {
                    "acknowledged": r.writes_acknowledged,
                    "failed": r.writes_failed,
                    "lost": r.writes_lost,
                },
                "lost_writes_by_window": r.lost_by_window.iter()
                    .map(|(w, n)| (w.to_string(), json!(n)))
                    .collect::<serde_json::Map<String, Value>>(),
                "invariant_violations": r.violations,
                "expectations_ok": r.ok,
            })
        })
        .collect();
    json!({ "runs": runs_json, "schedule_differences": schedule_differences(runs) })
}

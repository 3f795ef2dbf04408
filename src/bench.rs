//! `redsim bench`: how fast scenarios run. The wall clock is read here,
//! around whole runs and never inside one, so what a run does cannot
//! depend on it.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::engine::{SimTime, SEC};
use crate::scenario::Scenario;
use crate::sim::Simulation;

/// What one scenario measured: the figures of its fastest repetition (the
/// one least disturbed by the rest of the machine) and the process's peak
/// memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub scenario: String,
    pub seed: u64,
    pub events: u64,
    pub sim_time: SimTime,
    /// Client requests sent during the run (`ops.sent` of the summary).
    pub client_ops: u64,
    pub repeat: u32,
    /// Wall time of the fastest repetition: building the world and running
    /// it with the checks on, without printing the summary.
    pub best: Duration,
    /// Wall time of the median repetition.
    pub median: Duration,
    /// The process's resident-set high-water mark (`VmHWM`), where the OS
    /// tells it.
    pub peak_rss_kib: Option<u64>,
}

impl Measurement {
    /// Events per wall-clock second.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.best.as_secs_f64()
    }

    /// Simulated seconds per wall-clock second ("× real time").
    pub fn speedup(&self) -> f64 {
        self.sim_time as f64 / SEC as f64 / self.best.as_secs_f64()
    }

    /// Client requests per wall-clock second.
    pub fn client_ops_per_sec(&self) -> f64 {
        self.client_ops as f64 / self.best.as_secs_f64()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "seed": self.seed,
            "events": self.events,
            "sim_time_ms": self.sim_time / crate::engine::MS,
            "client_ops": self.client_ops,
            "repeat": self.repeat,
            "best_wall_ms": self.best.as_secs_f64() * 1e3,
            "median_wall_ms": self.median.as_secs_f64() * 1e3,
            "events_per_sec": self.events_per_sec(),
            "sim_seconds_per_wall_second": self.speedup(),
            "client_ops_per_sec": self.client_ops_per_sec(),
            "peak_rss_kib": self.peak_rss_kib,
        })
    }

    pub fn from_json(v: &Value) -> Option<Measurement> {
        let ms =
            |k: &str| -> Option<Duration> { Some(Duration::from_secs_f64(v[k].as_f64()? / 1e3)) };
        Some(Measurement {
            scenario: v["scenario"].as_str()?.to_string(),
            seed: v["seed"].as_u64()?,
            events: v["events"].as_u64()?,
            sim_time: v["sim_time_ms"].as_u64()? * crate::engine::MS,
            client_ops: v["client_ops"].as_u64()?,
            repeat: u32::try_from(v["repeat"].as_u64()?).ok()?,
            best: ms("best_wall_ms")?,
            median: ms("median_wall_ms")?,
            peak_rss_kib: v["peak_rss_kib"].as_u64(),
        })
    }
}

/// Why a scenario could not be measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BenchError {
    /// The scenario cannot run (bad input).
    Unrunnable(String),
    /// Two repetitions differ: a determinism bug.
    NotDeterministic(String),
}

/// Runs `scenario` with `seed` `repeat` times (at least once) and measures
/// each run. Every repetition must give the same trace hash: a difference
/// is a determinism bug.
pub fn measure(scenario: &Scenario, seed: u64, repeat: u32) -> Result<Measurement, BenchError> {
    let mut walls = Vec::new();
    let mut first: Option<(u64, SimTime, u64, u64)> = None;
    for _ in 0..repeat.max(1) {
        let s = scenario.clone();
        let start = Instant::now();
        let mut sim = Simulation::new(s, seed).map_err(BenchError::Unrunnable)?;
        sim.run(&mut ());
        let wall = start.elapsed();
        let got = (
            sim.stats.events,
            sim.stats.now,
            sim.client_totals().ops.sent,
            sim.stats.hash.value(),
        );
        match first {
            None => first = Some(got),
            Some(f) if f != got => {
                return Err(BenchError::NotDeterministic(format!(
                    "two runs with seed {seed} differ (trace hash {:016x} then {:016x})",
                    f.3, got.3
                )))
            }
            Some(_) => {}
        }
        walls.push(wall);
    }
    walls.sort();
    let (events, sim_time, client_ops, _) = first.expect("ran at least once");
    Ok(Measurement {
        scenario: scenario.name.clone(),
        seed,
        events,
        sim_time,
        client_ops,
        repeat: walls.len() as u32,
        best: walls[0],
        median: walls[walls.len() / 2],
        peak_rss_kib: peak_rss_kib(),
    })
}

/// `VmHWM` of this process from `/proc/self/status` (Linux), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `1234567.8` as `1.23 M`, for the table.
pub fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.1}"),
    }
}

/// The table `redsim bench` prints.
pub fn table(rows: &[Measurement]) -> String {
    use std::fmt::Write;
    let width = rows
        .iter()
        .map(|m| m.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<width$}  {:>10}  {:>8}  {:>10}  {:>11}  {:>12}  {:>11}  {:>9}",
        "scenario", "events", "sim", "wall", "events/s", "× real time", "client op/s", "peak mem"
    );
    for m in rows {
        let mem = m.peak_rss_kib.map_or_else(
            || "n/a".to_string(),
            |k| format!("{:.1} MiB", k as f64 / 1024.0),
        );
        let ops = if m.client_ops == 0 {
            "-".to_string()
        } else {
            si(m.client_ops_per_sec())
        };
        let _ = writeln!(
            s,
            "{:<width$}  {:>10}  {:>7.1}s  {:>8.2}ms  {:>11}  {:>12}  {:>11}  {:>9}",
            m.scenario,
            m.events,
            m.sim_time as f64 / SEC as f64,
            m.best.as_secs_f64() * 1e3,
            si(m.events_per_sec()),
            si(m.speedup()),
            ops,
            mem
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(toml: &str) -> Scenario {
        crate::scenario::parse(
            toml,
            crate::scenario::Format::Toml,
            "bench.toml",
            std::path::Path::new("."),
        )
        .expect("scenario")
    }

    #[test]
    fn measures_a_run_and_round_trips_through_json() {
        let s = scenario(
            "name = \"b\"\nduration = \"3s\"\n[cluster]\nnodes = 3\n[[workload]]\nrate = 100\nstart = \"2s\"\n",
        );
        let m = measure(&s, 3, 2).unwrap();
        assert_eq!(m.scenario, "b");
        assert_eq!(m.repeat, 2);
        assert_eq!(m.sim_time, 3 * SEC);
        // The requests the clients sent, as the run's summary counts them.
        let mut sim = Simulation::new(s, 3).unwrap();
        sim.run(&mut ());
        assert!(m.client_ops > 0);
        assert_eq!(m.client_ops, sim.client_totals().ops.sent);
        assert_eq!(m.events, sim.stats.events);
        assert!(m.best <= m.median);
        let back = Measurement::from_json(&m.to_json()).unwrap();
        assert_eq!(back.events, m.events);
        assert_eq!(back.client_ops, m.client_ops);
        assert_eq!(back.peak_rss_kib, m.peak_rss_kib);
        let t = table(&[m]);
        assert!(t.lines().nth(1).unwrap().starts_with("b "), "{t}");
    }

    #[test]
    fn si_prefixes() {
        assert_eq!(si(999.0), "999.0");
        assert_eq!(si(1500.0), "1.5 k");
        assert_eq!(si(2_340_000.0), "2.34 M");
        assert_eq!(si(5e9), "5.00 G");
    }
}

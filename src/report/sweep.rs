//! `redsim sweep FILE --set KEY=V1,V2,... --seeds N`: the scenario run
//! for every combination of the values and every seed (in parallel; the
//! results in a fixed order whatever the number of jobs), the figures of
//! each run ([`Figures`]) as a table (CSV and JSON) and their distribution
//! per value as box plots.
//!
//! A key without a dot is a `redis.conf` directive of every node
//! (`[config]`); a key with dots is a path into the scenario file
//! (`cluster.replicas`, `network.latency`). A value is read as a TOML
//! value (`5000`, `0.5`, `true`, `"1ms"`), and as a string when it is not
//! one (`yes`, `allkeys-lru`). The seeds are the scenario's `seed`, then
//! the next `N - 1` integers.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::page::{create_dir, escape, html_page, inline_svg, write, write_figure};
use super::plot::BoxPlot;
use super::timeline::{Figures, Sampler};
use crate::scenario::{self, Format, Scenario};
use crate::sim::Simulation;

/// One `--set`: where in the scenario, and the values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// As given: `cluster-node-timeout`, `cluster.replicas`.
    pub key: String,
    /// The path in the scenario's table.
    pub path: Vec<String>,
    /// The values as given.
    pub values: Vec<String>,
}

impl Axis {
    /// `KEY=V1,V2,...`.
    pub fn parse(arg: &str) -> Result<Axis, String> {
        let bad = |why: &str| {
            format!("--set {arg}: {why} (expected KEY=V1,V2,... such as cluster-node-timeout=1000,5000,15000 or cluster.replicas=0,1)")
        };
        let (key, values) = arg.split_once('=').ok_or_else(|| bad("no '='"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(bad("no key"));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(bad("an empty value"));
        }
        let path: Vec<String> = if key.contains('.') {
            key.split('.').map(str::to_string).collect()
        } else {
            vec!["config".to_string(), key.to_string()]
        };
        if path.iter().any(String::is_empty) {
            return Err(bad("an empty part in the key"));
        }
        Ok(Axis {
            key: key.to_string(),
            path,
            values,
        })
    }
}

/// A value of `--set` as TOML: a TOML value if it is one, else a string.
fn toml_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// One combination of values: an index into each axis's values.
pub type Combination = Vec<usize>;

/// Every combination, the first axis varying slowest.
pub fn combinations(axes: &[Axis]) -> Vec<Combination> {
    let mut out: Vec<Combination> = vec![Vec::new()];
    for a in axes {
        out = out
            .into_iter()
            .flat_map(|c| {
                (0..a.values.len()).map(move |i| {
                    let mut c = c.clone();
                    c.push(i);
                    c
                })
            })
            .collect();
    }
    out
}

/// `key=value key=value` of a combination.
pub fn label(axes: &[Axis], c: &Combination) -> String {
    let parts: Vec<String> = axes
        .iter()
        .zip(c)
        .map(|(a, &i)| format!("{}={}", a.key, a.values[i]))
        .collect();
    parts.join(" ")
}

/// The scenario of `file` with the values of combination `c`; an error
/// names the `--set` that does not fit.
pub fn scenario_with(
    file: &Path,
    table: &toml::Table,
    axes: &[Axis],
    c: &Combination,
) -> Result<Scenario, String> {
    let mut t = table.clone();
    for (a, &i) in axes.iter().zip(c) {
        let (last, parents) = a.path.split_last().expect("an axis has a key");
        let mut at = &mut t;
        for p in parents {
            let next = at
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = next.as_table_mut().ok_or_else(|| {
                format!("--set {}: {p} in {} is not a table", a.key, file.display())
            })?;
        }
        at.insert(last.clone(), toml_value(&a.values[i]));
    }
    let text = toml::to_string(&t).map_err(|e| format!("{}: {e}", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let s =
        scenario::parse(&text, Format::Toml, &file.display().to_string(), base).map_err(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("{}: ", e.path)
            };
            format!(
                "{} with --set {}: {key}{}",
                file.display(),
                label(axes, c),
                e.message
            )
        })?;
    crate::sim::check_runnable(&s)?;
    Ok(s)
}

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub combination: Combination,
    pub seed: u64,
    pub events: u64,
    pub trace_hash: String,
    pub figures: Figures,
}

/// Run the scenario once with `seed` and measure it.
pub fn measure(scenario: Scenario, seed: u64) -> Result<(u64, String, Figures), String> {
    let mut sampler = Sampler::for_duration(scenario.duration);
    let mut sim = Simulation::new(scenario, seed)?;
    sim.run(&mut sampler);
    let timeline = sampler.into_timeline(&sim.world, sim.stats.now);
    Ok((
        sim.stats.events,
        sim.stats.hash.hex(),
        Figures::of(&sim, &timeline),
    ))
}

/// A sweep: the scenario file and its table, the axes, the seeds.
pub struct Sweep {
    pub file: PathBuf,
    pub name: String,
    pub axes: Vec<Axis>,
    pub seeds: Vec<u64>,
    /// One scenario per combination (in [`combinations`] order).
    scenarios: Vec<(Combination, Scenario)>,
}

impl Sweep {
    /// Load `file`, check every combination loads, and take `seeds`
    /// seeds from the scenario's.
    pub fn new(file: &Path, axes: Vec<Axis>, seeds: u64) -> Result<Sweep, String> {
        let base = scenario::load(file).map_err(|e| e.to_string())?;
        crate::sim::check_runnable(&base)?;
        if seeds == 0 {
            return Err("--seeds 0: expected at least 1".into());
        }
        let table = scenario::load_table(file)?;
        let scenarios = combinations(&axes)
            .into_iter()
            .map(|c| scenario_with(file, &table, &axes, &c).map(|s| (c, s)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Sweep {
            file: file.to_path_buf(),
            name: base.name,
            seeds: (0..seeds).map(|k| base.seed.wrapping_add(k)).collect(),
            axes,
            scenarios,
        })
    }

    /// Every run, `jobs` at a time; rows in (combination, seed) order.
    pub fn run(&self, jobs: usize) -> Result<Vec<Row>, String> {
        let runs: Vec<(usize, u64)> = (0..self.scenarios.len())
            .flat_map(|i| self.seeds.iter().map(move |&s| (i, s)))
            .collect();
        crate::fuzz::parallel_map(&runs, jobs, |&(i, seed)| {
            let (c, s) = &self.scenarios[i];
            measure(s.clone(), seed).map(|(events, trace_hash, figures)| Row {
                combination: c.clone(),
                seed,
                events,
                trace_hash,
                figures,
            })
        })
        .into_iter()
        .collect()
    }

    /// The combinations' labels, in order.
    pub fn labels(&self) -> Vec<String> {
        self.scenarios
            .iter()
            .map(|(c, _)| label(&self.axes, c))
            .collect()
    }
}

/// The figures a sweep tabulates and plots: name, heading, unit, value.
type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Figures) -> Option<f64>,
);

pub const METRICS: [Metric; 6] = [
    (
        "failover_s",
        "failover time (fault → promotion)",
        "s",
        |f| f.failover_s,
    ),
    (
        "unwritable_s",
        "downtime: some slot not writable",
        "s",
        |f| Some(f.unwritable_s),
    ),
    (
        "slot_unavailability_s",
        "slot-weighted unavailability",
        "s",
        |f| Some(f.slot_unavailability_s),
    ),
    (
        "client_unavailable_s",
        "longest client write failure (a shard)",
        "s",
        |f| f.client_unavailable_s,
    ),
    ("lost_writes", "acknowledged writes lost", "writes", |f| {
        Some(f.lost_writes as f64)
    }),
    ("hit_ratio", "hit ratio", "", |f| f.hit_ratio),
];

/// The metrics drawn as box plots (the slot-weighted unavailability is
/// in the table only).
const PLOTTED: [&str; 5] = [
    "failover_s",
    "unwritable_s",
    "client_unavailable_s",
    "lost_writes",
    "hit_ratio",
];

fn cell(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.3}"))
}

/// The table as CSV: one row per run.
pub fn csv(sweep: &Sweep, rows: &[Row]) -> String {
    let mut out = String::from("combination");
    for a in &sweep.axes {
        let _ = write!(out, ",{}", a.key);
    }
    out.push_str(",seed");
    for (name, ..) in METRICS {
        let _ = write!(out, ",{name}");
    }
    out.push_str(",acknowledged_writes,events,trace_hash\n");
    for r in rows {
        let _ = write!(out, "\"{}\"", label(&sweep.axes, &r.combination));
        for (a, &i) in sweep.axes.iter().zip(&r.combination) {
            let _ = write!(out, ",\"{}\"", a.values[i].replace('"', "\"\""));
        }
        let _ = write!(out, ",{}", r.seed);
        for (_, _, _, get) in METRICS {
            let _ = write!(out, ",{}", cell(get(&r.figures)));
        }
        let _ = writeln!(
            out,
            ",{},{},{}",
            r.figures.acknowledged_writes, r.events, r.trace_hash
        );
    }
    out
}

/// The table as JSON: the sweep's parameters and one object per run.
pub fn json(sweep: &Sweep, rows: &[Row]) -> Value {
    json!({
        "scenario": sweep.name,
        "file": sweep.file.display().to_string(),
        "set": sweep.axes.iter().map(|a| json!({ "key": a.key, "values": a.values })).collect::<Vec<_>>(),
        "seeds": sweep.seeds,
        "runs": rows.iter().map(|r| {
            let values: serde_json::Map<String, Value> = sweep
                .axes
                .iter()
                .zip(&r.combination)
                .map(|(a, &i)| (a.key.clone(), json!(a.values[i])))
                .collect();
            json!({
                "combination": label(&sweep.axes, &r.combination),
                "values": values,
                "seed": r.seed,
                "events": r.events,
                "trace_hash": r.trace_hash,
                "figures": r.figures,
            })
        }).collect::<Vec<_>>(),
    })
}

/// The values of metric `get` per combination (runs that did not measure
/// it left out).
pub fn groups(
    sweep: &Sweep,
    rows: &[Row],
    get: fn(&Figures) -> Option<f64>,
) -> Vec<(String, Vec<f64>)> {
    let labels = sweep.labels();
    let short: Vec<String> = if sweep.axes.len() == 1 {
        sweep.axes[0].values.clone()
    } else {
        labels.clone()
    };
    (0..labels.len())
        .map(|k| {
            let values = rows
                .iter()
                .filter(|r| label(&sweep.axes, &r.combination) == labels[k])
                .filter_map(|r| get(&r.figures))
                .collect();
            (short[k].clone(), values)
        })
        .collect()
}

/// The median of `v` (none if empty).
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// The medians per combination, as text for the terminal.
pub fn text(sweep: &Sweep, rows: &[Row]) -> String {
    let mut out = format!(
        "sweep  {}  ({} combinations x {} seeds = {} runs)\nmedians per combination:\n",
        sweep.name,
        sweep.scenarios.len(),
        sweep.seeds.len(),
        rows.len()
    );
    let labels = sweep.labels();
    let width = labels.iter().map(String::len).max().unwrap_or(0).max(11);
    let _ = write!(out, "  {:<width$}", "combination");
    for (name, ..) in METRICS {
        let _ = write!(out, "  {name:>8}");
    }
    out.push('\n');
    let per_metric: Vec<Vec<(String, Vec<f64>)>> = METRICS
        .iter()
        .map(|&(_, _, _, get)| groups(sweep, rows, get))
        .collect();
    for (k, l) in labels.iter().enumerate() {
        let _ = write!(out, "  {l:<width$}");
        for (g, (name, ..)) in per_metric.iter().zip(METRICS) {
            let m = median(&g[k].1).map_or_else(|| "-".to_string(), |m| format!("{m:.3}"));
            let _ = write!(out, "  {m:>w$}", w = name.len().max(8));
        }
        out.push('\n');
    }
    out
}

/// Write the sweep's table (`sweep.csv`, `sweep.json`), its box plots
/// (SVG and PNG) and `index.html` to `dir`. Returns the files written.
pub fn write_report(dir: &Path, sweep: &Sweep, rows: &[Row]) -> Result<Vec<PathBuf>, String> {
    create_dir(dir)?;
    let mut files = Vec::new();
    let path = dir.join("sweep.csv");
    write(&path, &csv(sweep, rows))?;
    files.push(path);
    let path = dir.join("sweep.json");
    write(
        &path,
        &serde_json::to_string_pretty(&json(sweep, rows)).expect("JSON"),
    )?;
    files.push(path);
    let x_desc = if sweep.axes.len() == 1 {
        sweep.axes[0].key.clone()
    } else {
        "combination".to_string()
    };
    let mut body = format!(
        "<h1>Sweep: {}</h1>\n<p><code>{}</code>, {} seeds per combination ({}), {} runs.</p>\n<pre>{}</pre>\n<p>The table of every run: <a href=\"sweep.csv\">sweep.csv</a>, <a href=\"sweep.json\">sweep.json</a>.</p>\n",
        escape(&sweep.name),
        escape(&sweep.file.display().to_string()),
        sweep.seeds.len(),
        sweep
            .seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        rows.len(),
        escape(&text(sweep, rows)),
    );
    for (name, heading, unit, get) in METRICS {
        if !PLOTTED.contains(&name) {
            continue;
        }
        let plot = BoxPlot {
            title: format!("{heading} — {}, {} seeds", sweep.name, sweep.seeds.len()),
            x_desc: x_desc.clone(),
            y_desc: if unit.is_empty() {
                heading.to_string()
            } else {
                format!("{heading} ({unit})")
            },
            groups: groups(sweep, rows, get),
        };
        let svg = write_figure(dir, name, &plot, &mut files)?;
        let _ = writeln!(
            body,
            "<h2 id=\"{name}\">{}</h2>\n<figure>\n{}\n</figure>",
            escape(heading),
            inline_svg(&svg)
        );
    }
    let path = dir.join("index.html");
    write(
        &path,
        &html_page(&format!("redsim sweep: {}", sweep.name), &body),
    )?;
    files.push(path);
    Ok(files)
}

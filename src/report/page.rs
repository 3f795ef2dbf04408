//! `redsim run --report DIR`: the plots of a run as SVG and PNG files and
//! one self-contained `index.html` (the plots inline, no external asset)
//! with the key figures, the fault schedule, the human summary (checks,
//! anomalies, expectations) and `CLUSTER NODES` at the end.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::plot::{self, Figure, RunData, RunPlot};
use super::timeline::{secs, Figures, Timeline};
use crate::sim::{ExpectResult, Simulation};
use crate::world::fmt_time;

/// `<`, `>`, `&` and `"` escaped for HTML text and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// A whole HTML page: `title`, the style, `body`.
pub fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

const STYLE: &str =
    "body { font-family: sans-serif; margin: 2em auto; max-width: 1260px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; max-width: 1200px; }
svg { max-width: 100%; height: auto; }
";

/// An SVG document as an element to inline in HTML (without the XML
/// declaration, if any).
pub fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// Write `svg` and `png` of `f` as `dir/<stem>.svg` and `.png`; returns
/// the SVG text.
pub fn write_figure(
    dir: &Path,
    stem: &str,
    f: &impl Figure,
    files: &mut Vec<PathBuf>,
) -> Result<String, String> {
    let svg = plot::to_svg(f)?;
    let path = dir.join(format!("{stem}.svg"));
    write(&path, &svg)?;
    files.push(path);
    let path = dir.join(format!("{stem}.png"));
    plot::to_png(f, &path)?;
    files.push(path);
    Ok(svg)
}

pub fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

pub fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))
}

/// What each plot shows, under it.
fn caption(p: RunPlot) -> &'static str {
    match p {
        RunPlot::Availability => "Top: the clients' tries per time bucket, by when they ended, one lane per shard (the masters' slot ranges at creation): green succeeded, red failed. Bottom: the fraction of the 16384 slots writable — held by a running master whose own cluster_state is ok. Shaded: the faults, from when applied to what ended them. Lines: the first PFAIL and FAIL about a node after each fault, elections started, promotions, heals.",
        RunPlot::Latency => "Each try at the time it was sent and its latency (log scale), coloured by outcome; at most 1000 points per outcome are drawn (every k-th try; the legend counts all). Grey: the slowest try per bucket.",
        RunPlot::Roles => "Each node over time: master, replica, paused (SIGSTOP) or dead, sampled; its own config epoch written where it changes.",
        RunPlot::Replication => "master_repl_offset of each node (what a replica processed of its master's stream); triangles where a replica finished a full sync, circles where its master accepted a partial resync.",
    }
}

/// Write the report of a finished run to `dir`: the four plots (SVG and
/// PNG), `summary.json` and `index.html`. Returns the files written.
pub fn write_run_report(
    dir: &Path,
    sim: &Simulation,
    results: &[ExpectResult],
    timeline: &Timeline,
) -> Result<Vec<PathBuf>, String> {
    create_dir(dir)?;
    let w = &sim.world;
    let data = RunData::new(
        format!("scenario \"{}\", seed {}", w.scenario.name, w.seed),
        w.procs.iter().map(|p| p.name.clone()).collect(),
        (0..w.shards)
            .map(|i| format!("shard {}  {}", i + 1, sim.shard_slots(i)))
            .collect(),
        &w.shard_of_slot,
        &w.clients.ops,
        timeline,
    );
    let mut files = Vec::new();
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{}</h1>\n<p>seed {} · {} simulated · {} events · trace hash <code>{}</code> · <code>{}</code></p>",
        escape(&w.scenario.name),
        w.seed,
        fmt_time(sim.stats.now),
        sim.stats.events,
        sim.stats.hash.hex(),
        escape(&w.scenario.source.display().to_string()),
    );
    figures_table(&mut body, &Figures::of(sim, timeline));
    for p in RunPlot::ALL {
        let svg = write_figure(dir, p.file_stem(), &p.with(&data), &mut files)?;
        let _ = writeln!(
            body,
            "<h2 id=\"{}\">{}</h2>\n<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
            p.file_stem(),
            p.heading(),
            inline_svg(&svg),
            escape(caption(p))
        );
    }
    fault_table(&mut body, sim, timeline);
    let _ = writeln!(
        body,
        "<h2 id=\"summary\">Summary, checks and anomalies</h2>\n<pre>{}</pre>",
        escape(&super::human_summary(sim, results))
    );
    cluster_nodes(&mut body, sim);
    let path = dir.join("summary.json");
    write(
        &path,
        &serde_json::to_string_pretty(&sim.summary(results)).expect("summary serializes"),
    )?;
    files.push(path);
    let path = dir.join("index.html");
    write(
        &path,
        &html_page(&format!("redsim report: {}", w.scenario.name), &body),
    )?;
    files.push(path);
    Ok(files)
}

fn opt_s(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.3} s"))
}

fn figures_table(body: &mut String, f: &Figures) {
    let rows = [
        (
            "failover time (fault → promotion of the replica)",
            opt_s(f.failover_s),
        ),
        (
            "downtime: some slot not writable (once the cluster was first fully up)",
            format!("{:.3} s", f.unwritable_s),
        ),
        (
            "slot-weighted unavailability (slot-seconds not writable / 16384)",
            format!("{:.3} s", f.slot_unavailability_s),
        ),
        (
            "longest time the clients' writes kept failing (a shard)",
            opt_s(f.client_unavailable_s),
        ),
        (
            "acknowledged writes lost",
            format!("{} of {}", f.lost_writes, f.acknowledged_writes),
        ),
        (
            "hit ratio",
            f.hit_ratio.map_or("-".into(), |h| format!("{h:.3}")),
        ),
    ];
    let _ = writeln!(body, "<h2 id=\"figures\">Key figures</h2>\n<table>");
    for (k, v) in rows {
        let _ = writeln!(
            body,
            "<tr><th>{}</th><td class=\"num\">{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
    let _ = writeln!(body, "</table>");
}

fn fault_table(body: &mut String, sim: &Simulation, t: &Timeline) {
    let _ = writeln!(body, "<h2 id=\"faults\">Fault schedule</h2>");
    if sim.world.scenario.faults.is_empty() {
        let _ = writeln!(body, "<p>No faults.</p>");
        return;
    }
    let _ = writeln!(
        body,
        "<table>\n<tr><th>at</th><th>fault</th><th>until</th><th>lasted</th></tr>"
    );
    for f in &sim.world.scenario.faults {
        let what = super::describe_fault(&sim.world, &f.action);
        let band = t.bands.iter().find(|b| b.from == f.at && b.label == what);
        let (until, lasted) = match band {
            Some(b) if b.to > b.from => (fmt_time(b.to), format!("{:.3} s", secs(b.to - b.from))),
            _ => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            body,
            "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{until}</td><td class=\"num\">{lasted}</td></tr>",
            fmt_time(f.at),
            escape(&what)
        );
    }
    let _ = writeln!(body, "</table>");
}

/// `CLUSTER NODES` as the first running cluster node sees it at the end.
fn cluster_nodes(body: &mut String, sim: &Simulation) {
    let _ = writeln!(
        body,
        "<h2 id=\"cluster-nodes\">CLUSTER NODES at the end</h2>"
    );
    let seen = (0..sim.world.procs.len()).find_map(|i| sim.cluster_nodes(i).ok().map(|t| (i, t)));
    match seen {
        Some((i, text)) => {
            let _ = writeln!(
                body,
                "<p>As <code>{}</code> sees it at {}:</p>\n<pre>{}</pre>",
                escape(&sim.world.procs[i].name),
                fmt_time(sim.stats.now),
                escape(&text)
            );
        }
        None => {
            let _ = writeln!(
                body,
                "<p>No running node answers CLUSTER NODES (a standalone node, or every node dead).</p>"
            );
        }
    }
}

//! `redsim run --report` and `redsim sweep`: the plots are valid SVG and
//! PNG holding the series and labels they should, rendering is byte for
//! byte deterministic (and the bundled reports are up to date), the page
//! is self-contained, and a node-timeout sweep shows downtime growing
//! about linearly with the node timeout.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use redsim::report::plot::{Figure, RunPlot};
use redsim::report::sweep::{self, Axis, Sweep};
use redsim::report::timeline::Sampler;
use redsim::report::{page, plot};
use redsim::sim::Simulation;

const PARTITION: &str = "scenarios/partition-master-load.toml";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("redsim-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Run `file` with its seed and write its report to `dir`.
fn report(file: &str, dir: &Path) -> Vec<PathBuf> {
    let s = redsim::scenario::load(Path::new(file)).unwrap();
    let seed = s.seed;
    let mut sampler = Sampler::for_duration(s.duration);
    let mut sim = Simulation::new(s, seed).unwrap();
    let results = sim.run(&mut sampler);
    let timeline = sampler.into_timeline(&sim.world, sim.stats.now);
    page::write_run_report(dir, &sim, &results, &timeline).unwrap()
}

/// The partition scenario's report, rendered once for all the tests.
fn partition_report() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = temp_dir("partition");
        report(PARTITION, &d);
        d
    })
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Well-formed XML (the subset plotters writes: elements, attributes,
/// text; no comments or CDATA): every tag closed, in order, one root.
fn check_well_formed(text: &str) -> Result<(), String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').ok_or("a tag is not closed")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        } else {
            let name = tag.split_whitespace().next().ok_or("an empty tag")?;
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name.trim_end_matches('/'));
            }
        }
    }
    match (stack.is_empty(), roots) {
        (true, 1) => Ok(()),
        (false, _) => Err(format!("unclosed elements {stack:?}")),
        (_, n) => Err(format!("{n} root elements")),
    }
}

/// An SVG document of `size`, well formed, holding every label.
fn check_svg(svg: &str, size: (u32, u32), labels: &[&str]) {
    check_well_formed(svg).unwrap();
    assert!(
        svg.starts_with(&format!("<svg width=\"{}\" height=\"{}\"", size.0, size.1)),
        "{}",
        &svg[..100.min(svg.len())]
    );
    for l in labels {
        assert!(svg.contains(l), "no {l:?} in the SVG");
    }
}

/// Pixels of `png` of exactly colour `c`.
fn pixels_of(png: &image::RgbImage, c: [u8; 3]) -> usize {
    png.pixels().filter(|p| p.0 == c).count()
}

fn decode(path: &Path, size: (u32, u32)) -> image::RgbImage {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        path.display()
    );
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8();
    assert_eq!(img.dimensions(), size, "{}", path.display());
    // Text and axes: dark pixels.
    let dark = img.pixels().filter(|p| p.0.iter().all(|&v| v < 80)).count();
    assert!(dark > 2000, "{}: {dark} dark pixels", path.display());
    img
}

const GREEN: [u8; 3] = [44, 160, 44];
const RED: [u8; 3] = [214, 39, 40];
const BLUE: [u8; 3] = [31, 119, 180];
const LIGHT_BLUE: [u8; 3] = [158, 202, 225];

/// The size a plot of the partition scenario is drawn at (6 nodes, 3
/// shards).
fn size_of(p: RunPlot) -> (u32, u32) {
    let s = redsim::scenario::load(Path::new(PARTITION)).unwrap();
    let seed = s.seed;
    let sim = Simulation::new(s, seed).unwrap();
    let timeline = Sampler::for_duration(0).into_timeline(&sim.world, 0);
    let w = &sim.world;
    let data = plot::RunData::new(
        String::new(),
        w.procs.iter().map(|p| p.name.clone()).collect(),
        vec![String::new(); w.shards],
        &w.shard_of_slot,
        &w.clients.ops,
        &timeline,
    );
    p.with(&data).size()
}

#[test]
fn availability_plot_of_a_partition_shows_lanes_faults_and_markers() {
    let dir = partition_report();
    let svg = read(dir, "availability.svg");
    check_svg(
        &svg,
        size_of(RunPlot::Availability),
        &[
            "Availability — scenario &quot;partition isolating a master under load&quot;, seed 5",
            "shard 1  0-5460",
            "shard 2  5461-10922",
            "shard 3  10923-16383",
            ">\nfault\n<",
            ">\nok\n<",
            ">\nfailed\n<",
            ">\nPFAIL\n<",
            ">\nFAIL\n<",
            ">\npromoted\n<",
            ">\nheal\n<",
            "FAIL node-1",
            "node-5 promoted (epoch 7)",
            "node-5 asks votes (epoch 7)",
            "fraction of slots writable",
            "simulated time (s)",
        ],
    );
    // Successful and failed tries drawn as bars.
    assert!(svg.matches("fill=\"#2CA02C\"").count() > 100);
    assert!(svg.matches("fill=\"#D62728\"").count() >= 5);
    let png = decode(
        &dir.join("availability.png"),
        size_of(RunPlot::Availability),
    );
    assert!(pixels_of(&png, GREEN) > 5000);
    assert!(pixels_of(&png, RED) > 50);
}

#[test]
fn latency_roles_and_replication_plots_hold_their_series() {
    let dir = partition_report();
    let svg = read(dir, "latency.svg");
    check_svg(
        &svg,
        size_of(RunPlot::Latency),
        &[
            "Latency of client operations",
            "latency (ms, log scale)",
            ">\nok (",
            ">\ntimeout (",
            "slowest per 0.5 s",
        ],
    );
    let points = svg.matches("<circle").count();
    assert!(
        points > 1000 && points <= 4 * plot::LATENCY_POINTS_PER_OUTCOME + 8,
        "{points} points"
    );
    let svg = read(dir, "roles.svg");
    let mut labels = vec![
        "Roles and config epochs",
        "epoch 7",
        ">\nmaster\n<",
        ">\nreplica\n<",
    ];
    let names: Vec<String> = (1..=6).map(|i| format!(">\nnode-{i}\n<")).collect();
    labels.extend(names.iter().map(String::as_str));
    check_svg(&svg, size_of(RunPlot::Roles), &labels);
    let png = decode(&dir.join("roles.png"), size_of(RunPlot::Roles));
    assert!(pixels_of(&png, BLUE) > 5000 && pixels_of(&png, LIGHT_BLUE) > 5000);
    let svg = read(dir, "replication.svg");
    check_svg(
        &svg,
        size_of(RunPlot::Replication),
        &[
            "Replication offsets",
            "master_repl_offset (kB)",
            "full sync finished",
            ">\nnode-5\n<",
        ],
    );
    assert!(svg.matches("<polyline").count() >= 6);
    for p in [RunPlot::Latency, RunPlot::Replication] {
        decode(&dir.join(format!("{}.png", p.file_stem())), size_of(p));
    }
}

#[test]
fn the_page_is_self_contained_with_plots_faults_and_cluster_nodes() {
    let html = read(partition_report(), "index.html");
    check_well_formed(&html[html.find("<html").unwrap()..]).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    for want in [
        "<h1>partition isolating a master under load</h1>",
        "Key figures",
        "failover time (fault → promotion of the replica)",
        "Fault schedule",
        "<td>isolate node-1</td><td class=\"num\">25.000s</td><td class=\"num\">15.000 s</td>",
        "Summary, checks and anomalies",
        "lost-writes-explained",
        "CLUSTER NODES at the end",
        "myself,",
    ] {
        assert!(html.contains(want), "no {want:?} in index.html");
    }
    // Nothing loaded from elsewhere (the SVG namespace is a name, not a
    // load).
    let outside = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for external in ["<img", "<script", "<link", "src=", "http://", "https://"] {
        assert!(!outside.contains(external), "{external} in index.html");
    }
    // CLUSTER NODES comes last.
    assert!(html.rfind("<h2").unwrap() == html.find("<h2 id=\"cluster-nodes\"").unwrap());
}

#[test]
fn rendering_is_byte_identical_and_the_bundled_report_is_up_to_date() {
    let again = temp_dir("again");
    report(PARTITION, &again);
    let bundled = Path::new("reports/partition-master-load");
    for p in RunPlot::ALL {
        let name = format!("{}.svg", p.file_stem());
        let first = read(partition_report(), &name);
        // (assert! rather than assert_eq!: the files are long.)
        assert!(
            first == read(&again, &name),
            "{name} differs between two runs"
        );
        assert!(
            first == read(bundled, &name),
            "reports/partition-master-load/{name} is out of date: run tools/regen-reports"
        );
    }
    assert!(
        read(partition_report(), "index.html") == read(bundled, "index.html"),
        "reports/partition-master-load/index.html is out of date: run tools/regen-reports"
    );
    for p in RunPlot::ALL {
        let name = format!("{}.png", p.file_stem());
        let bytes = |d: &Path| std::fs::read(d.join(&name)).unwrap();
        assert!(
            bytes(partition_report()) == bytes(&again),
            "{name} differs between two runs"
        );
    }
}

fn node_timeout_sweep(values: &str, seeds: u64) -> Sweep {
    let axis = Axis::parse(&format!("cluster-node-timeout={values}")).unwrap();
    Sweep::new(Path::new("scenarios/master-crash.toml"), vec![axis], seeds).unwrap()
}

#[test]
fn downtime_grows_about_linearly_with_the_node_timeout() {
    let s = node_timeout_sweep("1000,3000,6000", 3);
    let rows = s.run(2).unwrap();
    assert_eq!(rows.len(), 9);
    let medians = |get| -> Vec<f64> {
        sweep::groups(&s, &rows, get)
            .iter()
            .map(|(_, v)| sweep::median(v).expect("every run measured it"))
            .collect()
    };
    let down = medians(|f| Some(f.unwritable_s));
    let failover = medians(|f| f.failover_s);
    eprintln!("node timeout 1 s, 3 s, 6 s: downtime medians {down:?}, failover {failover:?}");
    // Increasing, at a rate of 1-2.5 s of downtime per s of node timeout
    // (PFAIL after 1-1.5 NT, then FAIL and the election), the same rate
    // on both intervals within a factor of 2: a line, not a curve.
    assert!(
        down[0] > 0.5 && down[0] < down[1] && down[1] < down[2],
        "{down:?}"
    );
    let slope_a = (down[1] - down[0]) / 2.0;
    let slope_b = (down[2] - down[1]) / 3.0;
    for slope in [slope_a, slope_b] {
        assert!((0.8..=2.5).contains(&slope), "slopes {slope_a} {slope_b}");
    }
    assert!(
        (0.5..=2.0).contains(&(slope_a / slope_b)),
        "slopes {slope_a} {slope_b}"
    );
    // The downtime of a killed master is its failover.
    for (d, f) in down.iter().zip(&failover) {
        assert!((d - f).abs() < 0.2, "downtime {d} vs failover {f}");
    }
}

#[test]
fn a_sweep_does_not_depend_on_jobs_and_writes_its_table_and_plots() {
    let s = node_timeout_sweep("1000,2000", 2);
    let one = s.run(1).unwrap();
    let two = s.run(2).unwrap();
    assert_eq!(one, two);
    assert_eq!(one.iter().map(|r| r.seed).collect::<Vec<_>>(), [7, 8, 7, 8]);
    let dir = temp_dir("sweep");
    sweep::write_report(&dir, &s, &one).unwrap();
    let csv = read(&dir, "sweep.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("combination,cluster-node-timeout,seed,failover_s,unwritable_s"));
    assert!(lines[1].starts_with("\"cluster-node-timeout=1000\",\"1000\",7,"));
    let json: serde_json::Value = serde_json::from_str(&read(&dir, "sweep.json")).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 4);
    assert_eq!(json["runs"][2]["values"]["cluster-node-timeout"], "2000");
    assert!(json["runs"][0]["figures"]["failover_s"].as_f64().unwrap() > 0.5);
    for name in [
        "failover_s",
        "unwritable_s",
        "client_unavailable_s",
        "lost_writes",
        "hit_ratio",
    ] {
        let svg = read(&dir, &format!("{name}.svg"));
        check_well_formed(&svg).unwrap();
        assert!(
            svg.contains(">\n1000\n<") && svg.contains(">\n2000\n<"),
            "{name}"
        );
        assert!(svg.contains("cluster-node-timeout"), "{name}");
        decode(&dir.join(format!("{name}.png")), (900, 480));
    }
    // Each run a dot; the failover box plot has them all.
    assert_eq!(read(&dir, "failover_s.svg").matches("<circle").count(), 4);
    assert!(read(&dir, "hit_ratio.svg").contains("no run measured this"));
    assert_eq!(read(&dir, "index.html").matches("<svg").count(), 5);
}

#[test]
fn sweep_settings_that_do_not_fit_are_refused_with_the_key() {
    for (arg, want) in [
        ("cluster-node-timeout", "--set cluster-node-timeout: no '='"),
        ("=1,2", "no key"),
        ("cluster-node-timeout=1,,2", "an empty value"),
    ] {
        let e = Axis::parse(arg).unwrap_err();
        assert!(e.contains(want), "{e}");
    }
    let bad = |set: &str| {
        let axis = Axis::parse(set).unwrap();
        match Sweep::new(Path::new("scenarios/master-crash.toml"), vec![axis], 1) {
            Ok(_) => panic!("{set} accepted"),
            Err(e) => e,
        }
    };
    let e = bad("cluster-node-timeout=5000,abc");
    assert!(
        e.contains(
            "--set cluster-node-timeout=abc: config.cluster-node-timeout: expected an integer"
        ),
        "{e}"
    );
    let e = bad("cluster-node-timout=5000");
    assert!(e.contains("did you mean 'cluster-node-timeout'"), "{e}");
    let e = bad("cluster.replicas=2");
    assert!(
        e.contains("cluster.nodes: Redis Cluster requires at least 3 master nodes"),
        "{e}"
    );
    // A scenario key works: no replicas, no failover.
    let axis = Axis::parse("cluster.replicas=0,1").unwrap();
    let s = Sweep::new(Path::new("scenarios/master-crash.toml"), vec![axis], 1).unwrap();
    let rows = s.run(2).unwrap();
    assert_eq!(rows[0].figures.failover_s, None);
    assert!(rows[1].figures.failover_s.is_some());
}

#[test]
fn a_standalone_node_is_writable_throughout_and_its_hit_ratio_is_measured() {
    let s = redsim::scenario::load(Path::new("scenarios/standalone-cache.toml")).unwrap();
    let seed = s.seed;
    let (_, _, f) = sweep::measure(s, seed).unwrap();
    assert_eq!(f.unwritable_s, 0.0);
    assert_eq!(f.failover_s, None);
    let hit = f.hit_ratio.expect("the cache was read");
    assert!((0.74..0.82).contains(&hit), "{hit}");
}

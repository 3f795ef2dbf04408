//! The `redsim` command line. Parsing, printing and exit status only; the
//! work is in the library.
//!
//! Exit status: 0 success, 1 a failed expectation or check, 2 bad input.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use redsim::engine::SimTime;
use redsim::node::command_table;
use redsim::node::keyspace::{Executed, Reply};
use redsim::node::route::ClientFlags;
use redsim::node::serve::ClientReply;
use redsim::scenario::{self, Scenario};
use redsim::sim::{self, HashRecorder, Simulation, TraceWriter};

#[derive(Parser)]
#[command(name = "redsim", version, about = "A deterministic simulator of Redis Cluster", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and print a summary.
    Run {
        /// Scenario file (.toml or .json).
        file: PathBuf,
        /// Seed of the run (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Write every processed event as a JSON line to this file.
        #[arg(long, value_name = "FILE.jsonl")]
        trace: Option<PathBuf>,
        /// Run twice and report the first event where the runs differ.
        #[arg(long)]
        check_determinism: bool,
        /// Write the report (plots as SVG and PNG, index.html) to DIR
        /// (default: reports/<file name without extension>/).
        #[arg(long, value_name = "DIR", num_args = 0..=1, conflicts_with = "check_determinism")]
        report: Option<Option<PathBuf>>,
    },
    /// Run several scenarios (e.g. one fault schedule against replication,
    /// Sentinel and Cluster setups) and print their outcomes side by side.
    Compare {
        /// Scenario files, two or more.
        #[arg(required = true, num_args = 2..)]
        files: Vec<PathBuf>,
        /// Seed of every run (default: each scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Print the comparison as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check a scenario file without running it.
    Validate { file: PathBuf },
    /// Print the hash slot of each key, as CLUSTER KEYSLOT does.
    Keyslot {
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Print CLUSTER NODES as a node sees it at a moment of a run.
    Nodes(ViewArgs),
    /// Print CLUSTER INFO as a node sees it at a moment of a run.
    Info(ViewArgs),
    /// Print the reply a node would give to a command at a moment of a run
    /// (redirection, error, or the keyspace's answer).
    Query {
        #[command(flatten)]
        view: ViewArgs,
        /// The client sent READONLY (reads from a replica).
        #[arg(long)]
        readonly: bool,
        /// The client sent ASKING just before the command.
        #[arg(long)]
        asking: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Run many drawn scenarios (cluster, configuration, workload, fault
    /// schedule), check each, and shrink every failure to a small scenario
    /// written to the output directory.
    Fuzz(FuzzArgs),
    /// Measure how fast scenarios run: events, simulated seconds and client
    /// requests per wall-clock second, and peak memory (each scenario in a
    /// process of its own).
    Bench(BenchArgs),
    /// Run a scenario for every combination of some settings and several
    /// seeds; write a table (CSV, JSON) and box plots per value.
    Sweep(SweepArgs),
    /// Print the slot allocation `redis-cli --cluster create` would make.
    Create {
        /// Node addresses as ip:port, in the order given to redis-cli.
        #[arg(required = true)]
        addrs: Vec<String>,
        /// Replicas per master (`--cluster-replicas`).
        #[arg(long, default_value_t = 0)]
        replicas: usize,
        /// Seed for redis-cli's replica shuffle and the node IDs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Scenario files (default: scenarios/*.toml and scenarios/bench/*.toml
    /// under the current directory).
    files: Vec<PathBuf>,
    /// Runs of each scenario; the fastest is reported.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Seed of every run (default: each scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the measurements as a JSON array.
    #[arg(long)]
    json: bool,
    /// Measure one file in this process and print its measurement as JSON
    /// (what `bench` runs for each file).
    #[arg(long, hide = true)]
    child: bool,
}

#[derive(clap::Args)]
struct ViewArgs {
    file: PathBuf,
    /// When, in simulated time (e.g. 12s, 1500ms).
    #[arg(long)]
    at: String,
    /// Which node's view (default: node-1).
    #[arg(long, default_value = "node-1")]
    node: String,
    #[arg(long)]
    seed: Option<u64>,
}

/// `println!` that ends the program quietly when standard output has been
/// closed (`redsim run ... | head`) instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0)
        }
    };
}

/// `print!` that ends the program quietly when standard output is closed.
macro_rules! out {
    ($($arg:tt)*) => {
        if write!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0)
        }
    };
}

/// Bad input: message on stderr, exit 2.
fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn load(file: &std::path::Path) -> Result<Scenario, ExitCode> {
    scenario::load(file).map_err(bad_input)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            file,
            seed,
            json,
            trace,
            check_determinism,
            report,
        } => {
            let report = report.map(|dir| dir.unwrap_or_else(|| default_report_dir(&file, "")));
            run(file, seed, json, trace, check_determinism, report)
        }
        Command::Fuzz(args) => fuzz(args),
        Command::Bench(args) => bench(args),
        Command::Compare { files, seed, json } => compare(files, seed, json),
        Command::Sweep(args) => sweep(args),
        Command::Validate { file } => match load(&file) {
            Ok(s) => {
                outln!(
                    "{}: ok ({} nodes, {} faults, {} expectations)",
                    file.display(),
                    s.nodes.len(),
                    s.faults.len(),
                    s.expects.len()
                );
                for w in sim::not_implemented(&s) {
                    outln!("note: {w}");
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Keyslot { keys } => {
            for k in keys {
                outln!("{}", redsim::node::slots::key_hash_slot(k.as_bytes()));
            }
            ExitCode::SUCCESS
        }
        Command::Nodes(v) => view(v, true),
        Command::Info(v) => view(v, false),
        Command::Query {
            view,
            readonly,
            asking,
            command,
        } => query(view, readonly, asking, command),
        Command::Create {
            addrs,
            replicas,
            seed,
        } => create(addrs, replicas, seed),
    }
}

/// `reports/<prefix><file name without extension>/`: where `run
/// --report` without a value (no prefix) and `sweep` (`sweep-`) write.
fn default_report_dir(file: &std::path::Path, prefix: &str) -> PathBuf {
    let stem = file
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("reports").join(format!("{prefix}{stem}"))
}

fn run(
    file: PathBuf,
    seed: Option<u64>,
    json: bool,
    trace: Option<PathBuf>,
    check_determinism: bool,
    report: Option<PathBuf>,
) -> ExitCode {
    let scenario = match load(&file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = seed.unwrap_or(scenario.seed);
    if check_determinism {
        return determinism(scenario, seed);
    }
    let mut sim = match Simulation::new(scenario, seed) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    for w in sim::not_implemented(&sim.world.scenario) {
        eprintln!("warning: {w}");
    }
    // The plots' samples, only when a report is asked for.
    let mut sampler = report
        .as_ref()
        .map(|_| redsim::report::timeline::Sampler::for_duration(sim.world.scenario.duration));
    let results = match trace {
        Some(path) => {
            let f = match std::fs::File::create(&path) {
                Ok(f) => f,
                Err(e) => return bad_input(format!("{}: {e}", path.display())),
            };
            let mut w = TraceWriter {
                out: std::io::BufWriter::new(f),
                error: None,
            };
            let r = sim.run(&mut (&mut w, &mut sampler));
            if let Some(e) = w.error {
                return bad_input(format!("{}: {e}", path.display()));
            }
            r
        }
        None => sim.run(&mut sampler),
    };
    for w in &sim.world.warnings {
        eprintln!("warning: {w}");
    }
    let failed = results.iter().any(|r| r.ok == Some(false));
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&sim.summary(&results)).expect("summary serializes")
        );
    } else {
        out!("{}", redsim::report::human_summary(&sim, &results));
    }
    if let (Some(dir), Some(sampler)) = (report, sampler) {
        let timeline = sampler.into_timeline(&sim.world, sim.stats.now);
        match redsim::report::page::write_run_report(&dir, &sim, &results, &timeline) {
            Ok(files) => eprintln!(
                "report: {} files in {}/ (open {})",
                files.len(),
                dir.display(),
                dir.join("index.html").display()
            ),
            Err(e) => return bad_input(e),
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn compare(files: Vec<PathBuf>, seed: Option<u64>, json: bool) -> ExitCode {
    use redsim::report::compare;
    let mut runs = Vec::new();
    for file in &files {
        let scenario = match load(file) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let seed = seed.unwrap_or(scenario.seed);
        let mut sim = match Simulation::new(scenario, seed) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        for w in sim::not_implemented(&sim.world.scenario) {
            eprintln!("warning: {}: {w}", file.display());
        }
        let results = sim.run(&mut ());
        for w in &sim.world.warnings {
            eprintln!("warning: {}: {w}", file.display());
        }
        runs.push(compare::Figures::of(&sim, &results));
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&compare::json(&runs)).expect("comparison serializes")
        );
    } else {
        out!("{}", compare::table(&runs));
    }
    if runs.iter().all(|r| r.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn determinism(scenario: Scenario, seed: u64) -> ExitCode {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut sim = match Simulation::new(scenario.clone(), seed) {
            Ok(s) => s,
            Err(e) => return bad_input(e),
        };
        let mut rec = HashRecorder::default();
        sim.run(&mut rec);
        runs.push((rec.hashes, sim.stats));
    }
    let (a, b) = (&runs[0].0, &runs[1].0);
    match a.iter().zip(b.iter()).position(|(x, y)| x != y) {
        None if a.len() == b.len() => {
            outln!(
                "deterministic: both runs processed {} events, trace hash {}",
                a.len(),
                runs[0].1.hash.hex()
            );
            ExitCode::SUCCESS
        }
        pos => {
            let i = pos.unwrap_or(a.len().min(b.len()));
            let t = a.get(i).or(b.get(i)).map(|x| x.0).unwrap_or(0);
            outln!(
                "NOT deterministic: the runs first differ at event #{i} (t = {}); {} vs {} events",
                redsim::world::fmt_time(t),
                a.len(),
                b.len()
            );
            ExitCode::from(1)
        }
    }
}

/// Load the scenario of `v` and run it up to `--at`: the simulation, the
/// index of `--node`, and the time.
fn run_to(v: &ViewArgs) -> Result<(Simulation, usize, SimTime), ExitCode> {
    let scenario = load(&v.file)?;
    let at: SimTime =
        scenario::parse_duration(&v.at).map_err(|e| bad_input(format!("--at: {e}")))?;
    let Some(i) = scenario.nodes.iter().position(|n| n.name == v.node) else {
        let names: Vec<&str> = scenario.nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(bad_input(format!(
            "--node: no node named {:?} (nodes: {})",
            v.node,
            names.join(", ")
        )));
    };
    let seed = v.seed.unwrap_or(scenario.seed);
    let mut sim = Simulation::new(scenario, seed).map_err(bad_input)?;
    sim.run_until(at, &mut ());
    Ok((sim, i, at))
}

/// The node cannot answer: message on stderr, exit 1.
fn not_answering(msg: &str, at: SimTime) -> ExitCode {
    eprintln!("{msg} at {}", redsim::world::fmt_time(at));
    ExitCode::from(1)
}

fn view(v: ViewArgs, nodes: bool) -> ExitCode {
    let (sim, i, at) = match run_to(&v) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let text = if nodes {
        sim.cluster_nodes(i)
    } else {
        sim.cluster_info(i)
    };
    match text {
        Ok(t) => {
            out!("{}", if nodes { t } else { t.replace("\r\n", "\n") });
            ExitCode::SUCCESS
        }
        Err(e) => not_answering(&e, at),
    }
}

fn query(v: ViewArgs, readonly: bool, asking: bool, command: Vec<String>) -> ExitCode {
    let (sim, i, at) = match run_to(&v) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let argv: Vec<&[u8]> = command.iter().map(|a| a.as_bytes()).collect();
    let client = ClientFlags {
        readonly,
        asking,
        ..ClientFlags::default()
    };
    match sim.query(i, &argv, client) {
        Ok(reply) => {
            match reply {
                // redis-cli prints INFO's text raw.
                ClientReply::Done(Executed {
                    reply: Reply::Bulk(text),
                    ..
                }) if argv[0].eq_ignore_ascii_case(b"info") => {
                    print!("{}", String::from_utf8_lossy(&text))
                }
                ClientReply::Done(e) => println!("{}", format_reply(&e.reply, "")),
                ClientReply::Blocked => println!(
                    "(blocked: writes are paused by a manual failover; the command is processed again when the pause ends)"
                ),
                ClientReply::Wait(w) => println!(
                    "(blocked: fewer than {} replicas acknowledged offset {}; WAIT replies when {} do, or {} with the number that did)",
                    w.numreplicas,
                    w.offset,
                    w.numreplicas,
                    match w.timeout_ms {
                        0 => "never".to_string(),
                        t => format!("after {t} ms"),
                    }
                ),
            }
            if command_table::find_command(argv[0]).is_none() {
                let names: Vec<String> = command_table::COMMANDS
                    .iter()
                    .map(|c| c.name.to_uppercase())
                    .collect();
                eprintln!(
                    "note: redsim's command table has only {}; Redis itself may know {:?}",
                    names.join(" "),
                    command[0]
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => not_answering(&e, at),
    }
}

/// A reply as `redis-cli` prints it (errors keep their `-`); `indent` is
/// the margin of an array's nested lines.
fn format_reply(reply: &Reply, indent: &str) -> String {
    match reply {
        Reply::Ok => "OK".to_string(),
        Reply::Nil => "(nil)".to_string(),
        Reply::Int(i) => format!("(integer) {i}"),
        Reply::Error(e) => format!("-{e}"),
        Reply::Bulk(b) => {
            let mut s = String::from("\"");
            for &c in b {
                match c {
                    b'\\' | b'"' => s.extend(['\\', char::from(c)]),
                    b'\n' => s.push_str("\\n"),
                    b'\r' => s.push_str("\\r"),
                    b'\t' => s.push_str("\\t"),
                    0x07 => s.push_str("\\a"),
                    0x08 => s.push_str("\\b"),
                    0x20..=0x7e => s.push(char::from(c)),
                    _ => s.push_str(&format!("\\x{c:02x}")),
                }
            }
            s.push('"');
            s
        }
        Reply::Array(items) if items.is_empty() => "(empty array)".to_string(),
        Reply::Array(items) => {
            let width = items.len().to_string().len();
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                let head = format!("{:>width$}) ", i + 1);
                let margin = format!("{indent}{}", " ".repeat(head.len()));
                if i > 0 {
                    out.push('\n');
                    out.push_str(indent);
                }
                out.push_str(&head);
                out.push_str(&format_reply(item, &margin));
            }
            out
        }
    }
}

fn create(addrs: Vec<String>, replicas: usize, seed: u64) -> ExitCode {
    let mut parsed = Vec::new();
    for a in &addrs {
        match redsim::net::Addr::parse(a) {
            Ok(x) => parsed.push(x),
            Err(e) => return bad_input(e),
        }
    }
    let mut rng = redsim::engine::actor_rng(seed, redsim::engine::Actor::Admin);
    let ids: Vec<String> = (0..parsed.len() as u32)
        .map(|i| {
            let mut r = redsim::engine::actor_rng(seed, redsim::engine::Actor::Node(i));
            redsim::node::bus::NodeId::random(&mut r).hex()
        })
        .collect();
    match redsim::admin::create_command_output(&parsed, replicas, &mut rng, &ids) {
        Ok(text) => {
            out!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            out!("{e}");
            ExitCode::from(2)
        }
    }
}

#[derive(clap::Args)]
struct FuzzArgs {
    /// A base scenario: keep its cluster, configuration and workloads;
    /// draw only the faults.
    file: Option<PathBuf>,
    /// Number of runs in the campaign.
    #[arg(long, default_value_t = 100)]
    runs: u64,
    /// Runs at a time (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// The campaign's seed; run i draws from a seed derived from it and i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Take only runs whose index is I modulo N (e.g. 0/4), to spread a
    /// campaign over machines.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Where shrunk failures are written.
    #[arg(long, default_value = "tests/regressions", value_name = "DIR")]
    out: PathBuf,
    /// Report failures without shrinking them (nothing is written).
    #[arg(long)]
    no_shrink: bool,
    /// Print the scenario file run INDEX draws (every option it drew)
    /// and exit without running it.
    #[arg(long, value_name = "INDEX")]
    show: Option<u64>,
    /// Print the campaign's result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Break one Redis rule on every node (to see the checks fail):
    /// keep-fail, forget-current-epoch, promote-without-epoch-bump.
    #[arg(long, hide = true)]
    plant: Option<String>,
}

#[derive(clap::Args)]
struct SweepArgs {
    /// Scenario file (.toml or .json).
    file: PathBuf,
    /// KEY=V1,V2,...: a redis.conf directive of every node
    /// (cluster-node-timeout=1000,5000) or, with dots, a key of the
    /// scenario file (cluster.replicas=0,1). Repeat for more axes.
    #[arg(long = "set", value_name = "KEY=V1,V2,...", required = true)]
    set: Vec<String>,
    /// Seeds per combination: the scenario's seed and the next ones.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// Runs at a time (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Where the table and plots go (default: reports/sweep-<file name>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the table as JSON instead of the medians.
    #[arg(long)]
    json: bool,
}

fn sweep(a: SweepArgs) -> ExitCode {
    use redsim::report::sweep::{self, Axis, Sweep};
    let axes = match a
        .set
        .iter()
        .map(|s| Axis::parse(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    if a.jobs == Some(0) {
        return bad_input("--jobs 0: expected at least 1");
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let s = match Sweep::new(&a.file, axes, a.seeds) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let rows = match s.run(jobs) {
        Ok(r) => r,
        Err(e) => return bad_input(e),
    };
    let dir = a
        .out
        .unwrap_or_else(|| default_report_dir(&a.file, "sweep-"));
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&sweep::json(&s, &rows)).expect("JSON")
        );
    } else {
        out!("{}", sweep::text(&s, &rows));
    }
    match sweep::write_report(&dir, &s, &rows) {
        Ok(files) => {
            eprintln!(
                "sweep: {} files in {}/ (open {})",
                files.len(),
                dir.display(),
                dir.join("index.html").display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => bad_input(e),
    }
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {s}: expected I/N with 0 <= I < N (e.g. 0/4)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

fn fuzz(a: FuzzArgs) -> ExitCode {
    use redsim::fuzz::{self, Options};
    let base = match &a.file {
        Some(f) => match fuzz::Base::load(f) {
            Ok(b) => Some(b),
            Err(e) => return bad_input(e),
        },
        None => None,
    };
    let shard = match a.shard.as_deref().map(parse_shard).transpose() {
        Ok(s) => s.unwrap_or((0, 1)),
        Err(e) => return bad_input(e),
    };
    let planted = match a.plant.as_deref() {
        None => None,
        Some(p) => match redsim::node::Planted::parse(p) {
            Some(p) => Some(p),
            None => {
                let names: Vec<&str> = redsim::node::Planted::ALL
                    .iter()
                    .map(|p| p.name())
                    .collect();
                return bad_input(format!("--plant {p}: expected one of {}", names.join(", ")));
            }
        },
    };
    if a.jobs == Some(0) {
        return bad_input("--jobs 0: expected at least 1");
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Some(index) = a.show {
        outln!("{}", fuzz::show(a.seed, index, base.as_ref()));
        return ExitCode::SUCCESS;
    }
    let opts = Options {
        runs: a.runs,
        jobs,
        seed: a.seed,
        shard,
        out_dir: Some(a.out.clone()),
        shrink: !a.no_shrink,
        planted,
    };
    let bar = indicatif::ProgressBar::new(
        (0..opts.runs).filter(|i| i % shard.1 == shard.0).count() as u64,
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {msg} [{elapsed}]")
            .expect("a valid template"),
    );
    let failures = std::sync::atomic::AtomicU64::new(0);
    let started = std::time::Instant::now();
    let reports = fuzz::campaign(&opts, base.as_ref(), &|r| {
        if r.outcome.failed() {
            let n = failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} failing"));
            bar.println(format!(
                "run {} (seed {}): {}",
                r.index,
                r.seed,
                r.outcome.describe()
            ));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let summary = fuzz::Summary::of(&reports);
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary.json(&opts, &reports)).expect("JSON")
        );
    } else {
        out!("{}", summary.text(&opts, &reports));
        outln!(
            "{} runs in {:.1} s on {} jobs: {:.0} runs per second",
            reports.len(),
            wall,
            jobs,
            reports.len() as f64 / wall.max(1e-9)
        );
    }
    if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The bundled scenarios `redsim bench` measures when given none.
fn bundled_scenarios() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["scenarios", "scenarios/bench"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    files
}

fn bench(a: BenchArgs) -> ExitCode {
    if a.child {
        let [file] = a.files.as_slice() else {
            return bad_input("bench --child takes exactly one file");
        };
        let scenario = match load(file) {
            Ok(s) => s,
            Err(code) => return code,
        };
        let seed = a.seed.unwrap_or(scenario.seed);
        return match redsim::bench::measure(&scenario, seed, a.repeat) {
            Ok(m) => {
                outln!("{}", m.to_json());
                ExitCode::SUCCESS
            }
            Err(redsim::bench::BenchError::Unrunnable(e)) => {
                bad_input(format!("{}: {e}", file.display()))
            }
            Err(redsim::bench::BenchError::NotDeterministic(e)) => {
                eprintln!("error: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        };
    }
    let files = if a.files.is_empty() {
        bundled_scenarios()
    } else {
        a.files
    };
    if files.is_empty() {
        return bad_input(
            "no scenario files given and none found under ./scenarios (run from the project's root or name the files)",
        );
    }
    // Check every file before measuring any.
    for f in &files {
        if let Err(code) = load(f) {
            return code;
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return bad_input(format!("cannot find the redsim executable: {e}")),
    };
    let mut rows = Vec::new();
    for f in &files {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "--child", "--repeat", &a.repeat.to_string()]);
        if let Some(seed) = a.seed {
            cmd.args(["--seed", &seed.to_string()]);
        }
        cmd.arg(f).stderr(std::process::Stdio::inherit());
        let out = match cmd.output() {
            Ok(o) => o,
            Err(e) => return bad_input(format!("cannot start {}: {e}", exe.display())),
        };
        if !out.status.success() {
            return ExitCode::from(out.status.code().map_or(1, |c| c as u8));
        }
        let m = serde_json::from_slice(&out.stdout)
            .ok()
            .and_then(|v| redsim::bench::Measurement::from_json(&v));
        match m {
            Some(m) => {
                if !a.json {
                    eprintln!("measured {}", f.display());
                }
                rows.push(m)
            }
            None => {
                return bad_input(format!(
                    "{}: the measuring process printed no result",
                    f.display()
                ))
            }
        }
    }
    if a.json {
        let all: Vec<serde_json::Value> = rows.iter().map(|m| m.to_json()).collect();
        outln!("{}", serde_json::Value::Array(all));
    } else {
        out!("{}", redsim::bench::table(&rows));
    }
    ExitCode::SUCCESS
}

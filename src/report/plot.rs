//! The pictures of a report, drawn with `plotters` to SVG (a string) and
//! PNG (a file). Text is set in DejaVu Sans, embedded in the binary (the
//! `dejavu` crate) and registered with plotters' `ab_glyph` renderer, so
//! no system font or fontconfig is needed and the output is the same
//! bytes on every machine.
//!
//! The plots of a run ([`RunPlot`]) share the time axis (seconds of
//! simulated time), the faults as shaded bands and the protocol markers
//! (see [`super::timeline`]); a sweep's are box plots ([`BoxPlot`]).

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::timeline::{secs, MarkerKind, Role, Timeline};
use crate::client::accounting::NO_SHARD;
use crate::client::{Cmd, OpRecord, Outcome};

/// The font family every text uses.
const FONT: &str = "sans-serif";

/// Register the embedded font once per process.
fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            plotters::style::register_font(FONT, style, bytes)
                .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
        }
    });
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A picture that can be drawn on any plotters backend.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// The figure as an SVG document.
pub fn to_svg(f: &impl Figure) -> Result<String, String> {
    register_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, f.size()).into_drawing_area();
        f.draw(&root).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The figure written as a PNG file.
pub fn to_png(f: &impl Figure, path: &std::path::Path) -> Result<(), String> {
    register_fonts();
    let root = BitMapBackend::new(path, f.size()).into_drawing_area();
    f.draw(&root)
        .and_then(|()| root.present())
        .map_err(|e| format!("{}: {e}", path.display()))
}

// Colours (Tableau 10, as most plotting tools use).
const BLUE: RGBColor = RGBColor(31, 119, 180);
const LIGHT_BLUE: RGBColor = RGBColor(158, 202, 225);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);
const PURPLE: RGBColor = RGBColor(148, 103, 189);
const GREY: RGBColor = RGBColor(110, 110, 110);
const PALETTE: [RGBColor; 10] = [
    BLUE,
    ORANGE,
    GREEN,
    RED,
    PURPLE,
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// The faults' bands (Jepsen's nemesis bands).
const BAND: RGBColor = RGBColor(255, 170, 170);

fn marker_color(k: MarkerKind) -> RGBColor {
    match k {
        MarkerKind::Pfail => ORANGE,
        MarkerKind::Fail => RED,
        MarkerKind::ElectionStarted => PURPLE,
        MarkerKind::Promoted => GREEN,
        MarkerKind::Heal => BLUE,
    }
}

fn role_color(r: Role) -> RGBColor {
    match r {
        Role::Master => BLUE,
        Role::Replica => LIGHT_BLUE,
        Role::Paused => ORANGE,
        Role::Dead => RGBColor(60, 60, 60),
    }
}

/// What a client's try came to, for colouring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeClass {
    Ok,
    Redirected,
    Error,
    Timeout,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 4] = [
        OutcomeClass::Ok,
        OutcomeClass::Redirected,
        OutcomeClass::Error,
        OutcomeClass::Timeout,
    ];

    pub fn of(r: &OpRecord) -> OutcomeClass {
        match r.outcome {
            o if o.is_ok() && r.redirects > 0 => OutcomeClass::Redirected,
            o if o.is_ok() => OutcomeClass::Ok,
            Outcome::Timeout => OutcomeClass::Timeout,
            _ => OutcomeClass::Error,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OutcomeClass::Ok => "ok",
            OutcomeClass::Redirected => "ok after MOVED/ASK",
            OutcomeClass::Error => "error",
            OutcomeClass::Timeout => "timeout",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            OutcomeClass::Ok => GREEN,
            OutcomeClass::Redirected => BLUE,
            OutcomeClass::Error => RED,
            OutcomeClass::Timeout => ORANGE,
        }
    }
}

/// What the plots of one run are drawn from.
pub struct RunData<'a> {
    /// `scenario "name", seed N`, in every title.
    pub title: String,
    pub names: Vec<String>,
    /// `shard 1  0-5460`, per shard.
    pub shards: Vec<String>,
    pub shard_of_slot: &'a [u16],
    /// The clients' tries (the library's own `CLUSTER SLOTS` left out).
    pub ops: Vec<&'a OpRecord>,
    pub timeline: &'a Timeline,
}

impl<'a> RunData<'a> {
    pub fn new(
        title: String,
        names: Vec<String>,
        shards: Vec<String>,
        shard_of_slot: &'a [u16],
        ops: &'a [OpRecord],
        timeline: &'a Timeline,
    ) -> RunData<'a> {
        RunData {
            title,
            names,
            shards,
            shard_of_slot,
            ops: ops.iter().filter(|r| r.cmd != Cmd::ClusterSlots).collect(),
            timeline,
        }
    }

    fn end_s(&self) -> f64 {
        secs(self.timeline.end).max(0.001)
    }

    /// The time axis: the run, and room on the right for the legend.
    fn x_max(&self) -> f64 {
        self.end_s() * 1.2
    }
}

/// The plots of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunPlot {
    Availability,
    Latency,
    Roles,
    Replication,
}

impl RunPlot {
    pub const ALL: [RunPlot; 4] = [
        RunPlot::Availability,
        RunPlot::Latency,
        RunPlot::Roles,
        RunPlot::Replication,
    ];

    /// The file name, without extension.
    pub fn file_stem(self) -> &'static str {
        match self {
            RunPlot::Availability => "availability",
            RunPlot::Latency => "latency",
            RunPlot::Roles => "roles",
            RunPlot::Replication => "replication",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            RunPlot::Availability => "Availability",
            RunPlot::Latency => "Latency of client operations",
            RunPlot::Roles => "Roles and config epochs",
            RunPlot::Replication => "Replication offsets",
        }
    }

    /// The plot with its data, ready to draw.
    pub fn with<'d>(self, data: &'d RunData<'d>) -> RunFigure<'d> {
        RunFigure { plot: self, data }
    }
}

/// A plot of a run with what it draws.
pub struct RunFigure<'d> {
    plot: RunPlot,
    data: &'d RunData<'d>,
}

const WIDTH: u32 = 1200;

impl Figure for RunFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let d = self.data;
        match self.plot {
            RunPlot::Availability => (WIDTH, 330 + 70 * d.shards.len().max(1) as u32),
            RunPlot::Latency => (WIDTH, 460),
            RunPlot::Roles => (WIDTH, 140 + 36 * d.names.len() as u32),
            RunPlot::Replication => (WIDTH, 460),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let d = self.data;
        let title = format!("{} — {}", self.plot.heading(), d.title);
        let root = root.titled(&title, (FONT, 20).into_font().style(FontStyle::Bold))?;
        match self.plot {
            RunPlot::Availability => availability(&root, d),
            RunPlot::Latency => latency(&root, d),
            RunPlot::Roles => roles(&root, d),
            RunPlot::Replication => replication(&root, d),
        }
    }
}

type TimeChart<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

/// What every time chart shows behind its data: the faults as shaded
/// bands, and the protocol markers as vertical lines, from `y0` to `y1`;
/// with `legend`, a legend entry for the bands and each kind of marker.
fn overlay<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut TimeChart<'_, DB, Y>,
    t: &Timeline,
    y0: f64,
    y1: f64,
    legend: bool,
) -> DrawResult<DB> {
    // A moment (a manual failover) still shows: at least 0.2% of the axis.
    let min_w = secs(t.end) / 500.0;
    let s = chart.draw_series(t.bands.iter().map(|b| {
        let from = secs(b.from);
        let to = secs(b.to).max(from + min_w);
        Rectangle::new([(from, y0), (to, y1)], BAND.mix(0.35).filled())
    }))?;
    if legend && !t.bands.is_empty() {
        s.label("fault")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BAND.mix(0.6).filled()));
    }
    for kind in MarkerKind::ALL {
        let color = marker_color(kind);
        let mine: Vec<_> = t.markers.iter().filter(|m| m.kind == kind).collect();
        if mine.is_empty() {
            continue;
        }
        let lines = chart.draw_series(mine.iter().map(|m| {
            let x = secs(m.at);
            PathElement::new(vec![(x, y0), (x, y1)], color.stroke_width(2))
        }))?;
        if legend {
            lines.label(kind.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y - 6), (x, y + 6)], color.stroke_width(3))
            });
        }
    }
    Ok(())
}

/// Rows of marker labels in the band of a chart from `y_top` down
/// (`row_h` apart): each label on the first row where it does not run
/// into the previous one (`s_per_px` converts its width to time).
fn marker_labels<DB: DrawingBackend>(
    chart: &mut TimeChart<'_, DB, RangedCoordf64>,
    t: &Timeline,
    y_top: f64,
    row_h: f64,
    s_per_px: f64,
) -> DrawResult<DB> {
    const ROWS: usize = 5;
    const CHAR_PX: f64 = 6.5;
    let mut row_end = [f64::NEG_INFINITY; ROWS];
    let mut placed = Vec::new();
    for m in &t.markers {
        let x = secs(m.at);
        let width = (m.label.len() as f64 + 1.0) * CHAR_PX * s_per_px;
        let row = (0..ROWS).find(|&r| row_end[r] < x).unwrap_or_else(|| {
            (0..ROWS)
                .min_by(|&a, &b| row_end[a].total_cmp(&row_end[b]))
                .unwrap_or(0)
        });
        row_end[row] = x + width;
        placed.push((x, y_top - row as f64 * row_h, m));
    }
    chart.draw_series(placed.into_iter().map(|(x, y, m)| {
        Text::new(
            format!(" {}", m.label),
            (x, y),
            (FONT, 11).into_font().color(&marker_color(m.kind)),
        )
    }))?;
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut TimeChart<'a, DB, Y>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
}

/// The label of the y-axis tick at `y` in a chart of lanes: lane `i` is
/// drawn from `len - 1 - i` (the first on top), labelled at its middle.
fn lane_label(labels: &[String], y: f64) -> String {
    let middle = (y - y.floor() - 0.5).abs() < 0.01;
    let i = labels.len() as f64 - 1.0 - y.floor();
    match labels.get(i as usize) {
        Some(l) if middle && i >= 0.0 => l.clone(),
        _ => String::new(),
    }
}

/// The time bucket of the availability lanes: about 120 over the run.
fn bucket_s(end_s: f64) -> f64 {
    let raw = end_s / 120.0;
    // A round value: 0.1, 0.2, 0.5, 1, 2, 5 ... seconds.
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|&b| b >= raw)
        .unwrap_or(10.0 * pow)
}

/// Successful and failed tries per bucket, one lane per shard; below, the
/// fraction of slots writable.
fn availability<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &RunData) -> DrawResult<DB> {
    let t = d.timeline;
    let end_s = d.end_s();
    let lanes = d.shards.len().max(1);
    let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 - 200);
    let bucket = bucket_s(end_s);
    let n_buckets = (end_s / bucket).ceil() as usize + 1;
    // [shard][bucket] = (ok, failed), by when the try ended.
    let mut counts = vec![vec![(0u32, 0u32); n_buckets]; lanes];
    for r in &d.ops {
        let shard = d.shard_of_slot[usize::from(r.slot)];
        if shard == NO_SHARD || usize::from(shard) >= lanes {
            continue;
        }
        let b = ((secs(r.done) / bucket) as usize).min(n_buckets - 1);
        let c = &mut counts[usize::from(shard)][b];
        if r.outcome.is_ok() {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let peak = counts
        .iter()
        .flatten()
        .map(|&(ok, failed)| ok + failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let lane_labels: Vec<String> = if d.shards.is_empty() {
        vec!["(no shards)".into()]
    } else {
        d.shards.clone()
    };
    let y_desc = format!("tries per {} s (lane = {peak})", fmt_num(bucket));
    // Above the lanes, the markers' labels.
    let y_max = lanes as f64 + 1.0;
    let mut chart = ChartBuilder::on(&top)
        .margin(10)
        .x_label_area_size(25)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..d.x_max(), 0f64..y_max)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(lanes * 2 + 3)
        .y_label_formatter(&|y| lane_label(&lane_labels, *y))
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    overlay(&mut chart, t, 0.0, y_max, true)?;
    for (i, lane) in counts.iter().enumerate() {
        let base = (lanes - 1 - i) as f64 + 0.05;
        // A few tries still show: at least 4% of the lane.
        let h = |n: u32| (f64::from(n) / f64::from(peak) * 0.85).max(0.04);
        let rects = lane.iter().enumerate().flat_map(|(b, &(ok, failed))| {
            let x0 = b as f64 * bucket;
            let x1 = x0 + bucket * 0.9;
            let mid = base + h(ok);
            [
                (ok > 0).then(|| Rectangle::new([(x0, base), (x1, mid)], GREEN.filled())),
                (failed > 0)
                    .then(|| Rectangle::new([(x0, mid), (x1, mid + h(failed))], RED.filled())),
            ]
            .into_iter()
            .flatten()
        });
        let s = chart.draw_series(rects)?;
        if i == 0 {
            s.label("ok")
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], GREEN.filled()));
        }
    }
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (0.0, 0.0)],
            RED.filled(),
        )))?
        .label("failed")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], RED.filled()));
    if d.ops.is_empty() {
        chart.draw_series(std::iter::once(Text::new(
            "no client workload in this scenario",
            (end_s * 0.02, lanes as f64 * 0.5),
            (FONT, 16).into_font().color(&GREY),
        )))?;
    }
    let plot_px = f64::from(top.dim_in_pixel().0.saturating_sub(170).max(1));
    marker_labels(&mut chart, t, y_max - 0.04, 0.18, d.x_max() / plot_px)?;
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;

    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d(0f64..d.x_max(), 0f64..1.05)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc("slots writable")
        .y_labels(3)
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    overlay(&mut chart, t, 0.0, 1.05, false)?;
    let frac = |w: u32| f64::from(w) / crate::node::slots::CLUSTER_SLOTS as f64;
    let writable = corners(
        t.samples
            .iter()
            .map(|s| (secs(s.at), frac(s.writable_slots))),
    );
    chart.draw_series(AreaSeries::new(
        writable.iter().copied(),
        0.0,
        GREEN.mix(0.25),
    ))?;
    chart
        .draw_series(LineSeries::new(writable, GREEN.stroke_width(2)))?
        .label("fraction of slots writable")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], GREEN.stroke_width(2)));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// The points of a sampled series where it changes (the last before and
/// the first after each change) and its ends: the same line, drawn with
/// far fewer points.
fn corners(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut prev: Option<(f64, f64)> = None;
    for p in points {
        match (out.last().copied(), prev) {
            (None, _) => out.push(p),
            (Some(_), Some(q)) if q.1 != p.1 => {
                if out.last() != Some(&q) {
                    out.push(q);
                }
                out.push(p);
            }
            _ => {}
        }
        prev = Some(p);
    }
    if let Some(p) = prev {
        if out.last() != Some(&p) {
            out.push(p);
        }
    }
    out
}

/// A number without useless decimals: 0.5, 1, 2.5.
fn fmt_num(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// At most this many points per outcome are drawn (every k-th try).
pub const LATENCY_POINTS_PER_OUTCOME: usize = 1000;

/// Each try at the time it was sent, at its latency (log scale),
/// coloured by outcome; and the slowest try per bucket as a line.
fn latency<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &RunData) -> DrawResult<DB> {
    let t = d.timeline;
    let end_s = d.end_s();
    let ms = |r: &OpRecord| ((r.done - r.sent) as f64 / 1000.0).max(0.01);
    let max_ms = d.ops.iter().map(|r| ms(r)).fold(1.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..d.x_max(), (0.01f64..max_ms).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("simulated time the try was sent (s)")
        .y_desc("latency (ms, log scale)")
        .y_label_formatter(&|y| fmt_num(*y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    overlay(&mut chart, t, 0.01, max_ms, true)?;
    // The slowest try per bucket.
    let bucket = bucket_s(end_s);
    let mut slowest: Vec<Option<f64>> = vec![None; (end_s / bucket).ceil() as usize + 1];
    for r in &d.ops {
        let b = ((secs(r.sent) / bucket) as usize).min(slowest.len() - 1);
        let v = slowest[b].get_or_insert(0.0);
        *v = v.max(ms(r));
    }
    chart
        .draw_series(LineSeries::new(
            slowest
                .iter()
                .enumerate()
                .filter_map(|(b, v)| v.map(|v| ((b as f64 + 0.5) * bucket, v))),
            GREY.stroke_width(1),
        ))?
        .label(format!("slowest per {} s", fmt_num(bucket)))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], GREY.stroke_width(1)));
    for class in OutcomeClass::ALL {
        let mine: Vec<&&OpRecord> = d
            .ops
            .iter()
            .filter(|r| OutcomeClass::of(r) == class)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let stride = mine.len().div_ceil(LATENCY_POINTS_PER_OUTCOME);
        let color = class.color();
        chart
            .draw_series(
                mine.iter()
                    .step_by(stride)
                    .map(|r| Circle::new((secs(r.sent), ms(r)), 2, color.filled())),
            )?
            .label(format!("{} ({})", class.label(), mine.len()))
            .legend(move |(x, y)| Circle::new((x + 7, y), 4, color.filled()));
    }
    if d.ops.is_empty() {
        chart.draw_series(std::iter::once(Text::new(
            "no client workload in this scenario",
            (end_s * 0.02, 1.0),
            (FONT, 16).into_font().color(&GREY),
        )))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// One lane per node: master, replica, paused or dead over time, with
/// the config epoch written where it changes.
fn roles<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &RunData) -> DrawResult<DB> {
    let t = d.timeline;
    let end_s = d.end_s();
    let n = d.names.len().max(1);
    let names = d.names.clone();
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..d.x_max(), 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| lane_label(&names, *y))
        .x_desc("simulated time (s)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    overlay(&mut chart, t, 0.0, n as f64, true)?;
    let step = secs(t.step);
    for i in 0..d.names.len() {
        let y0 = (n - 1 - i) as f64 + 0.2;
        let y1 = y0 + 0.6;
        // Runs of samples with the same role.
        let mut runs: Vec<(f64, f64, Role)> = Vec::new();
        let mut epochs: Vec<(f64, u64)> = Vec::new();
        for s in &t.samples {
            let ns = s.nodes[i];
            let x = secs(s.at);
            match runs.last_mut() {
                Some(r) if r.2 == ns.role => r.1 = x + step,
                _ => runs.push((x, x + step, ns.role)),
            }
            // Epoch 0 (before creation) unwritten; a change too close to
            // the last label replaces it.
            if ns.role != Role::Dead
                && ns.config_epoch > 0
                && epochs.last().is_none_or(|e| e.1 != ns.config_epoch)
            {
                if epochs.last().is_some_and(|e| x - e.0 < end_s / 40.0) {
                    epochs.pop();
                }
                epochs.push((x, ns.config_epoch));
            }
        }
        chart.draw_series(runs.iter().map(|&(a, b, role)| {
            Rectangle::new([(a, y0), (b.min(end_s), y1)], role_color(role).filled())
        }))?;
        chart.draw_series(epochs.iter().map(|&(x, e)| {
            Text::new(
                format!("epoch {e}"),
                (x, y1 + 0.02),
                (FONT, 11).into_font().color(&BLACK),
            )
        }))?;
        chart.draw_series(epochs.iter().map(|&(x, _)| {
            PathElement::new(vec![(x, y0), (x, y1 + 0.15)], BLACK.stroke_width(1))
        }))?;
    }
    for role in [Role::Master, Role::Replica, Role::Paused, Role::Dead] {
        let c = role_color(role);
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(role.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Each node's replication offset over time; full syncs (triangles) and
/// partial resyncs (circles) where the replica finished them.
fn replication<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &RunData) -> DrawResult<DB> {
    let t = d.timeline;
    let max = t
        .samples
        .iter()
        .flat_map(|s| s.nodes.iter().map(|n| n.repl_offset))
        .chain(t.syncs.iter().map(|s| s.offset))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    let (scale, unit) = if max > 10e6 {
        (1e6, "MB")
    } else if max > 10e3 {
        (1e3, "kB")
    } else {
        (1.0, "bytes")
    };
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..d.x_max(), 0f64..max / scale)?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc(format!("master_repl_offset ({unit})"))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    overlay(&mut chart, t, 0.0, max / scale, true)?;
    for (i, name) in d.names.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        // Dead stretches break the line.
        let mut parts: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for s in &t.samples {
            let ns = s.nodes[i];
            if ns.role == Role::Dead {
                if parts.last().is_some_and(|p| !p.is_empty()) {
                    parts.push(Vec::new());
                }
            } else if let Some(p) = parts.last_mut() {
                p.push((secs(s.at), ns.repl_offset as f64 / scale));
            }
        }
        for (k, part) in parts.into_iter().enumerate() {
            let s = chart.draw_series(LineSeries::new(
                corners(part.into_iter()),
                c.stroke_width(2),
            ))?;
            if k == 0 {
                s.label(name.as_str()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2))
                });
            }
        }
    }
    for full in [true, false] {
        let mine: Vec<_> = t.syncs.iter().filter(|s| s.full == full).collect();
        if mine.is_empty() {
            continue;
        }
        let s = chart.draw_series(mine.iter().map(|s| {
            let c = PALETTE[s.proc as usize % PALETTE.len()];
            let at = (secs(s.at), s.offset as f64 / scale);
            EmptyElement::at(at)
                + if full {
                    TriangleMarker::new((0, 0), 7, c.filled()).into_dyn()
                } else {
                    Circle::new((0, 0), 5, c.filled()).into_dyn()
                }
        }))?;
        let label = if full {
            "full sync finished"
        } else {
            "partial resync accepted"
        };
        s.label(label).legend(move |(x, y)| {
            EmptyElement::at((x + 7, y))
                + if full {
                    TriangleMarker::new((0, 0), 6, BLACK.filled()).into_dyn()
                } else {
                    Circle::new((0, 0), 4, BLACK.filled()).into_dyn()
                }
        });
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The distribution of one figure per value of a sweep: a box per group
/// (quartiles; whiskers to the furthest run within 1.5 times the box's
/// height, Tukey's rule, as plotters' `Quartiles` computes them), and
/// each run as a dot.
pub struct BoxPlot {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    /// (label, values) per group, in order.
    pub groups: Vec<(String, Vec<f64>)>,
}

/// A box plot's five numbers: the whiskers' ends (the furthest values
/// within 1.5 times the box's height of it, Tukey's rule), the quartiles
/// and the median (linear interpolation, as plotters' `Quartiles`).
pub fn five_numbers(values: &[f64]) -> Option<[f64; 5]> {
    if values.is_empty() {
        return None;
    }
    let [lower_fence, q1, median, q3, upper_fence] = Quartiles::new(values).values();
    let within = values
        .iter()
        .copied()
        .filter(|&v| v >= f64::from(lower_fence) - 1e-9 && v <= f64::from(upper_fence) + 1e-9);
    let low = within.clone().fold(f64::INFINITY, f64::min);
    let high = within.fold(f64::NEG_INFINITY, f64::max);
    Some([low, f64::from(q1), f64::from(median), f64::from(q3), high])
}

impl Figure for BoxPlot {
    fn size(&self) -> (u32, u32) {
        (900, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let root = root.titled(&self.title, (FONT, 18).into_font().style(FontStyle::Bold))?;
        let max = self
            .groups
            .iter()
            .flat_map(|g| g.1.iter().copied())
            .fold(0.0, f64::max);
        let top = if max > 0.0 { max * 1.15 } else { 1.0 };
        let n = self.groups.len().max(1);
        let labels: Vec<String> = self.groups.iter().map(|g| g.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&|x| {
                let i = x.round();
                match labels.get(i as usize) {
                    Some(l) if (x - i).abs() < 1e-6 && i >= 0.0 => l.clone(),
                    _ => String::new(),
                }
            })
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let boxes: Vec<(f64, [f64; 5])> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| five_numbers(&g.1).map(|f| (i as f64, f)))
            .collect();
        let style = BLUE.stroke_width(2);
        chart.draw_series(boxes.iter().flat_map(|&(x, [low, q1, median, q3, high])| {
            let (w, cap) = (0.18, 0.09);
            [
                PathElement::new(
                    vec![
                        (x - w, q1),
                        (x + w, q1),
                        (x + w, q3),
                        (x - w, q3),
                        (x - w, q1),
                    ],
                    style,
                ),
                PathElement::new(vec![(x - w, median), (x + w, median)], BLUE.stroke_width(3)),
                PathElement::new(vec![(x, q3), (x, high)], style),
                PathElement::new(vec![(x, q1), (x, low)], style),
                PathElement::new(vec![(x - cap, high), (x + cap, high)], style),
                PathElement::new(vec![(x - cap, low), (x + cap, low)], style),
            ]
        }))?;
        chart.draw_series(self.groups.iter().enumerate().flat_map(|(i, g)| {
            g.1.iter()
                .map(move |&v| Circle::new((i as f64, v), 3, RED.mix(0.6).filled()))
        }))?;
        if boxes.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "no run measured this",
                (0.0, top * 0.5),
                (FONT, 16).into_font().color(&GREY),
            )))?;
        }
        Ok(())
    }
}

//! `detector plot`: what a person looks at first — the round scores against the
//! threshold with the incidents shaded, and the busiest ports below over the same
//! time — as PNG (for mail and chat) or SVG (for a browser), drawn with plotters.
//!
//! The PNG's text needs glyphs: the font is compiled in (DejaVu Sans Mono, under the
//! Bitstream Vera licence beside it in `assets/`), so a server without fonts draws the
//! same chart. The PNG encoder is the `png` crate, fed plotters' RGB buffer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Once;

use chrono::{DateTime, Utc};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use portwatch_model::persistence::write_atomic;
use portwatch_store::Db;
use portwatch_store::incidents::{Incident, IncidentFilter};
use portwatch_store::series::{PortPackets, ScoredRound};

use crate::{Error, Result};

/// Width and height of the chart, in pixels.
pub const SIZE: (u32, u32) = (1280, 760);
/// The busiest ports drawn in the lower panel.
pub const TOP_PORTS: usize = 6;
/// The family plotters looks the font up by.
const FAMILY: &str = "sans-serif";
static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

const SCORE: RGBColor = RGBColor(31, 119, 180);
const THRESHOLD: RGBColor = RGBColor(255, 127, 14);
const ANOMALY: RGBColor = RGBColor(214, 39, 40);
/// Line colours of the port panel (matplotlib's "tab10" after the three above).
const PORT_COLOURS: [RGBColor; TOP_PORTS] = [
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

/// The output format, from the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    /// `.png` or `.svg` (any case); anything else is None.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" => Some(Format::Png),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }
}

/// What the chart shows, read from the database.
#[derive(Debug, Default)]
pub struct Data {
    pub rounds: Vec<ScoredRound>,
    pub incidents: Vec<Incident>,
    /// The busiest ports, busiest first, each with its packets per round start.
    pub ports: Vec<(u16, Vec<(i64, u64)>)>,
}

impl Data {
    /// The scored rounds since `since` (µs; all without), the incidents that overlap
    /// them and the [`TOP_PORTS`] busiest ports.
    pub fn load(db: &Db, since: Option<i64>) -> Result<Data> {
        let rounds = db.scored_rounds(since)?;
        let (Some(first), Some(last)) = (rounds.first(), rounds.last()) else {
            return Ok(Data::default());
        };
        let (t0, t1) = (first.start, last.start);
        let incidents = db
            .incidents(&IncidentFilter {
                active_only: false,
                since: None,
            })?
            .into_iter()
            .filter(|i| i.end >= t0 && i.start <= t1)
            .collect();
        let starts: Vec<i64> = rounds.iter().map(|r| r.start).collect();
        Ok(Data {
            ports: busiest(db.port_packets(since)?, &starts, TOP_PORTS),
            rounds,
            incidents,
        })
    }
}

/// The `n` ports with the most packets over all rounds, each with its packets at every
/// round of `starts` (0 where it had none: a line between two far-apart rounds would
/// draw traffic that never was).
fn busiest(rows: Vec<PortPackets>, starts: &[i64], n: usize) -> Vec<(u16, Vec<(i64, u64)>)> {
    let mut totals: HashMap<u16, u64> = HashMap::new();
    for r in &rows {
        *totals.entry(r.port).or_default() += r.packets;
    }
    let mut ports: Vec<(u16, u64)> = totals.into_iter().collect();
    // Busiest first; equal totals by port number, so the chart is the same every time.
    ports.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ports.truncate(n);
    let at: HashMap<(u16, i64), u64> = rows
        .into_iter()
        .map(|r| ((r.port, r.start), r.packets))
        .collect();
    ports
        .into_iter()
        .map(|(port, _)| {
            let series = starts
                .iter()
                .map(|&t| (t, at.get(&(port, t)).copied().unwrap_or(0)))
                .collect();
            (port, series)
        })
        .collect()
}

/// Draws the chart of the rounds since `since` into `out` (PNG or SVG by its
/// extension) and returns how many rounds it shows. Written atomically.
pub fn plot(db: &Db, out: &Path, since: Option<i64>) -> Result<usize> {
    let format = Format::of(out).ok_or_else(|| {
        Error::Invalid(format!(
            "{}: the chart is written as .png or .svg",
            out.display()
        ))
    })?;
    let data = Data::load(db, since)?;
    let bytes = render(&data, format)?;
    write_atomic(out, &bytes)?;
    Ok(data.rounds.len())
}

/// The chart as the bytes of a PNG or SVG file.
pub fn render(data: &Data, format: Format) -> Result<Vec<u8>> {
    REGISTER.call_once(|| {
        // The bytes are a valid font compiled in; a failure would leave text undrawn
        // (plotters then reports it), not crash.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
    let (w, h) = SIZE;
    match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                draw(&root, data).map_err(drawing)?;
                root.present().map_err(drawing)?;
            }
            Ok(svg.into_bytes())
        }
        Format::Png => {
            let mut rgb = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
                draw(&root, data).map_err(drawing)?;
                root.present().map_err(drawing)?;
            }
            encode_png(&rgb, w, h)
        }
    }
}

fn drawing<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> Error {
    Error::Invalid(format!("cannot draw the chart: {e}"))
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| Error::Invalid(format!("cannot encode the PNG: {e}"));
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(rgb).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

type Drawn<DB> = std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &Data) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let (Some(first), Some(last)) = (d.rounds.first(), d.rounds.last()) else {
        root.draw(&Text::new(
            "no scored rounds yet: run `detector --once` first",
            (40, 40),
            (FAMILY, 18),
        ))?;
        return Ok(());
    };
    // A round lasts about a minute: the axis ends one after the last round's start.
    let (t0, t1) = (
        utc(first.start),
        utc(last.start.max(first.start) + 60_000_000),
    );
    let (upper, lower) = root.split_vertically(SIZE.1 * 62 / 100);
    scores(&upper, d, t0..t1)?;
    ports(&lower, d, t0..t1)?;
    Ok(())
}

/// A time label short enough for the axis: the day is written where it changes
/// meaning (spans over a day), the seconds never.
fn time_label(span_hours: i64) -> impl Fn(&DateTime<Utc>) -> String {
    move |t| {
        if span_hours > 24 {
            t.format("%m-%d %H:%M").to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    }
}

/// A score as few digits show it (axis ticks and the threshold's label).
pub fn score_label(v: &f64) -> String {
    match v.abs() {
        x if x >= 100.0 => format!("{v:.0}"),
        x if x >= 1.0 => format!("{v:.1}"),
        x if x >= 0.01 => format!("{v:.2}"),
        _ => format!("{v:.0e}"),
    }
}

fn scores<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &Data,
    x: std::ops::Range<DateTime<Utc>>,
) -> Drawn<DB> {
    let floor = 1e-4;
    let mut lo = f64::MAX;
    let mut hi = f64::MIN;
    for r in &d.rounds {
        lo = lo.min(r.score.max(floor));
        hi = hi.max(r.score.max(floor));
        if let Some(t) = r.threshold {
            hi = hi.max(t);
            lo = lo.min(t.max(floor));
        }
    }
    let (lo, hi) = (lo / 1.5, hi * 2.0);
    let span_hours = (x.end - x.start).num_hours();
    let last_threshold = d.rounds.iter().rev().find_map(|r| r.threshold);
    let caption = match last_threshold {
        Some(t) => format!(
            "round score (reconstruction error, log scale): {} rounds, {} incidents, threshold now {}",
            d.rounds.len(),
            d.incidents.len(),
            score_label(&t)
        ),
        None => format!("round score: {} rounds, no threshold yet", d.rounds.len()),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FAMILY, 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(x.clone(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(8)
        .x_label_formatter(&time_label(span_hours))
        .y_label_formatter(&score_label)
        .y_desc("score")
        .label_style((FAMILY, 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    // Incidents first, so the lines are drawn over their bands; each labelled with its
    // id and kind at the top, staggered so neighbours do not overwrite each other.
    for (k, i) in d.incidents.iter().enumerate() {
        let (a, b) = (utc(i.start).max(x.start), utc(i.end).min(x.end));
        chart.draw_series(std::iter::once(Rectangle::new(
            [(a, lo), (b, hi)],
            ANOMALY.mix(0.15).filled(),
        )))?;
        let y = hi / 1.3f64.powi(1 + (k % 4) as i32);
        chart.draw_series(std::iter::once(Text::new(
            format!("#{} {}", i.id, i.kind),
            (a, y),
            (FAMILY, 12).into_font().color(&ANOMALY),
        )))?;
    }
    chart
        .draw_series(LineSeries::new(
            d.rounds.iter().map(|r| (utc(r.start), r.score.max(lo))),
            SCORE.stroke_width(1),
        ))?
        .label("score")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], SCORE));
    let with_threshold: Vec<(DateTime<Utc>, f64)> = d
        .rounds
        .iter()
        .filter_map(|r| r.threshold.map(|t| (utc(r.start), t)))
        .collect();
    if let (Some(t), Some(&(_, y))) = (last_threshold, with_threshold.last()) {
        chart
            .draw_series(DashedLineSeries::new(
                with_threshold.iter().copied(),
                6,
                4,
                THRESHOLD.stroke_width(2),
            ))?
            .label(format!("threshold ({})", score_label(&t)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], THRESHOLD.stroke_width(2)));
        chart.draw_series(std::iter::once(Text::new(
            format!("threshold {}", score_label(&t)),
            (x.end, y * 1.15),
            (FAMILY, 13)
                .into_font()
                .color(&THRESHOLD)
                .pos(Pos::new(HPos::Right, VPos::Bottom)),
        )))?;
    }
    chart
        .draw_series(
            d.rounds
                .iter()
                .filter(|r| r.anomalous)
                .map(|r| Circle::new((utc(r.start), r.score.max(lo)), 3, ANOMALY.filled())),
        )?
        .label("anomalous round")
        .legend(|(x, y)| Circle::new((x + 9, y), 3, ANOMALY.filled()));
    legend(&mut chart)
}

/// The series' legend, top left, over a light background.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Drawn<DB> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
}

fn ports<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &Data,
    x: std::ops::Range<DateTime<Utc>>,
) -> Drawn<DB> {
    let top = d
        .ports
        .iter()
        .flat_map(|(_, s)| s.iter().map(|&(_, n)| n))
        .max()
        .unwrap_or(0);
    let span_hours = (x.end - x.start).num_hours();
    let mut chart = ChartBuilder::on(area)
        .caption(
            "packets per round on the busiest ports (a packet counts for the lower of its two ports)",
            (FAMILY, 15),
        )
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(x, 0u64..(top + top / 10).max(1))?;
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(5)
        .x_label_formatter(&time_label(span_hours))
        .y_desc("packets")
        .label_style((FAMILY, 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if d.ports.is_empty() {
        chart.draw_series(std::iter::once(Text::new(
            "no packets in these rounds",
            (chart.x_range().start, top / 2),
            (FAMILY, 14),
        )))?;
        return Ok(());
    }
    for ((port, series), colour) in d.ports.iter().zip(PORT_COLOURS) {
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|&(t, n)| (utc(t), n)),
                colour.stroke_width(1),
            ))?
            .label(format!("port {port}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    legend(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pp(start: i64, port: u16, packets: u64) -> PortPackets {
        PortPackets {
            start,
            port,
            packets,
        }
    }

    #[test]
    fn the_busiest_ports_are_those_with_most_packets_over_all_rounds() {
        let rows = vec![
            pp(1, 443, 10),
            pp(1, 53, 30),
            pp(2, 443, 25),
            pp(2, 22, 1),
            pp(3, 80, 35),
        ];
        let top = busiest(rows, &[1, 2, 3], 2);
        // 80 and 443 both have 35 (80 first: the lower number), 53 has 30; a round
        // without a port's packets is a 0 in its series.
        assert_eq!(
            top,
            vec![
                (80, vec![(1, 0), (2, 0), (3, 35)]),
                (443, vec![(1, 10), (2, 25), (3, 0)])
            ]
        );
    }

    #[test]
    fn formats_are_told_by_the_extension() {
        assert_eq!(Format::of(Path::new("a/x.PNG")), Some(Format::Png));
        assert_eq!(Format::of(Path::new("x.svg")), Some(Format::Svg));
        assert_eq!(Format::of(Path::new("x.jpg")), None);
        assert_eq!(Format::of(Path::new("png")), None);
    }

    #[test]
    fn score_labels_keep_few_digits() {
        assert_eq!(score_label(&1234.5), "1234");
        assert_eq!(score_label(&12.34), "12.3");
        assert_eq!(score_label(&0.123), "0.12");
    }
}

//! `detector plot`: round scores against the threshold, as an SVG drawn by hand (no
//! plotting crate is needed for one line chart).

use std::fmt::Write as _;
use std::path::Path;

use portwatch_model::persistence::write_atomic;
use portwatch_store::Db;
use portwatch_store::time::format_micros;

use crate::{Error, Result};

/// Writes an SVG line chart of round scores (log scale) with the threshold of each
/// batch and anomalous rounds in red. Only `.svg` is supported.
pub fn plot(db: &Db, out: &Path) -> Result<usize> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext != "svg" {
        return Err(Error::Invalid(format!(
            "{}: only .svg output is supported (no PNG encoder is linked); convert with e.g. `rsvg-convert`",
            out.display()
        )));
    }
    let pts: Vec<(i64, f64, bool, Option<f64>)> = db
        .scored_rounds()?
        .into_iter()
        .map(|r| (r.start, r.score, r.anomalous, r.threshold))
        .collect();
    let (w, h, pad) = (1200.0f64, 400.0f64, 50.0f64);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    if pts.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{pad}" y="{pad}">no scored rounds yet</text></svg>"#
        );
    } else {
        let t0 = pts[0].0 as f64;
        let t1 = (pts[pts.len() - 1].0 as f64).max(t0 + 1.0);
        let ly = |v: f64| v.max(1e-3).log10();
        let mut lo = f64::MAX;
        let mut hi = f64::MIN;
        for p in &pts {
            lo = lo.min(ly(p.1));
            hi = hi.max(ly(p.1));
            if let Some(t) = p.3 {
                hi = hi.max(ly(t));
            }
        }
        if hi - lo < 1e-6 {
            hi = lo + 1.0;
        }
        let x = |t: i64| pad + (t as f64 - t0) / (t1 - t0) * (w - 2.0 * pad);
        let y = |v: f64| h - pad - (ly(v) - lo) / (hi - lo) * (h - 2.0 * pad);
        let mut line = String::new();
        let mut thr = String::new();
        for p in &pts {
            let _ = write!(line, "{:.1},{:.1} ", x(p.0), y(p.1));
            if let Some(t) = p.3 {
                let _ = write!(thr, "{:.1},{:.1} ", x(p.0), y(t));
            }
        }
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1" points="{line}"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="#ff7f0e" stroke-dasharray="4 3" points="{thr}"/>"##
        );
        for p in pts.iter().filter(|p| p.2) {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="red"/>"#,
                x(p.0),
                y(p.1)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{pad}" y="20">round score (log scale, blue), threshold (orange), anomalies (red)</text>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{pad}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            h - 15.0,
            format_micros(pts[0].0),
            w - pad,
            h - 15.0,
            format_micros(pts[pts.len() - 1].0)
        );
        let _ = writeln!(svg, "</svg>");
    }
    write_atomic(out, svg.as_bytes())?;
    Ok(pts.len())
}

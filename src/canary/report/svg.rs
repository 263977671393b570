//! Inline SVG charts for `report.html`: per-arm CDF, per-arm values over time, per-arm rate bars.
//! Pure functions from judged data to SVG text; no scripts, no external assets, every label escaped.

use std::fmt::Write;

use crate::canary::judge::series::{Bin, Timeline};
use crate::canary::judge::{num, MetricKind, MetricResult};

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 44.0;
/// Colours of the two arms (baseline blue, canary orange; distinguishable with common colour blindness).
pub const BASELINE_COLOUR: &str = "#1f77b4";
pub const CANARY_COLOUR: &str = "#e66100";

/// Escapes text for SVG/HTML content and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A linear or logarithmic axis mapping data values to pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    log: bool,
    px_lo: f64,
    px_hi: f64,
}

impl Scale {
    fn new(lo: f64, hi: f64, log: bool, px_lo: f64, px_hi: f64) -> Self {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else if log {
            (lo / 2.0, hi * 2.0)
        } else {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo - pad, hi + pad)
        };
        Scale {
            lo,
            hi,
            log,
            px_lo,
            px_hi,
        }
    }

    fn map(&self, v: f64) -> f64 {
        let t = if self.log {
            (v.max(self.lo).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        self.px_lo + t.clamp(0.0, 1.0) * (self.px_hi - self.px_lo)
    }

    /// About five round tick values inside the range.
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut out = Vec::new();
            let (a, b) = (
                self.lo.log10().floor() as i32,
                self.hi.log10().ceil() as i32,
            );
            let mults: &[f64] = if b - a <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            for e in a..=b {
                for m in mults {
                    let v = m * 10f64.powi(e);
                    if v >= self.lo && v <= self.hi {
                        out.push(v);
                    }
                }
            }
            if out.len() >= 2 {
                return out;
            }
        }
        let raw = (self.hi - self.lo) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let mut v = (self.lo / step).ceil() * step;
        let mut out = Vec::new();
        while v <= self.hi + step * 1e-9 && out.len() < 12 {
            out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
            v += step;
        }
        out
    }
}

/// Frame with axes, ticks, labels and title; returns the SVG opening and the axes.
fn frame(
    out: &mut String,
    title: &str,
    x: &Scale,
    y: &Scale,
    x_label: &str,
    y_label: &str,
    y_fmt: fn(f64) -> String,
) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}"><title>{t}</title><text class="title" x="{LEFT}" y="16">{t}</text>"#,
        t = escape(title)
    );
    for v in y.ticks() {
        let py = y.map(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{py:.1}" y2="{py:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{l}</text>"#,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = py + 4.0,
            l = escape(&y_fmt(v))
        );
    }
    for v in x.ticks() {
        let px = x.map(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{y2}"/><text class="tick" x="{px:.1}" y="{ty}" text-anchor="middle">{l}</text>"#,
            y2 = H - BOTTOM,
            ty = H - BOTTOM + 16.0,
            l = escape(&num(v))
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{yb}"/><line class="axis" x1="{LEFT}" x2="{xr}" y1="{yb}" y2="{yb}"/><text class="label" x="{xm}" y="{H2}" text-anchor="middle">{xl}</text><text class="label" transform="translate(14 {ym}) rotate(-90)" text-anchor="middle">{yl}</text>"#,
        yb = H - BOTTOM,
        xr = W - RIGHT,
        xm = (LEFT + W - RIGHT) / 2.0,
        H2 = H - 8.0,
        ym = (TOP + H - BOTTOM) / 2.0,
        xl = escape(x_label),
        yl = escape(y_label)
    );
    legend(out);
}

fn legend(out: &mut String) {
    let x = W - RIGHT - 150.0;
    let _ = write!(
        out,
        r#"<g class="legend"><rect x="{x}" y="24" width="12" height="4" fill="{BASELINE_COLOUR}"/><text x="{x1}" y="30">baseline</text><rect x="{x2}" y="24" width="12" height="4" fill="{CANARY_COLOUR}"/><text x="{x3}" y="30">canary</text></g>"#,
        x1 = x + 16.0,
        x2 = x + 86.0,
        x3 = x + 102.0
    );
}

/// An SVG path through points, breaking at `None` (empty bins).
fn path(points: impl Iterator<Item = Option<(f64, f64)>>, colour: &str, class: &str) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for p in points {
        match p {
            Some((x, y)) => {
                let _ = write!(d, "{}{x:.1},{y:.1}", if pen_down { 'L' } else { 'M' });
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if d.is_empty() {
        return d;
    }
    format!(r#"<path class="{class}" d="{d}" stroke="{colour}"/>"#)
}

fn unit_label(m: &MetricResult) -> String {
    match &m.unit {
        Some(u) => format!("{} ({u})", m.name),
        None => m.name.clone(),
    }
}

/// Cumulative distribution of both arms (log x axis for positive values spanning ≥ 20×).
pub fn cdf_chart(m: &MetricResult) -> Option<String> {
    let cdf = m.series.cdf.as_ref()?;
    let all = cdf.baseline.iter().chain(&cdf.canary);
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
        (a.min(v), b.max(v))
    });
    let log = lo > 0.0 && hi / lo >= 20.0;
    let x = Scale::new(lo, hi, log, LEFT, W - RIGHT);
    let y = Scale::new(0.0, 1.0, false, H - BOTTOM, TOP);
    let mut out = String::new();
    let title = format!(
        "{}: distribution (CDF){}",
        m.name,
        if log { ", log scale" } else { "" }
    );
    frame(
        &mut out,
        &title,
        &x,
        &y,
        &unit_label(m),
        "share of samples ≤ x",
        |v| format!("{}%", num(v * 100.0)),
    );
    for (values, colour) in [
        (&cdf.baseline, BASELINE_COLOUR),
        (&cdf.canary, CANARY_COLOUR),
    ] {
        let pts = values
            .iter()
            .zip(&cdf.probabilities)
            .map(|(&v, &p)| Some((x.map(v), y.map(p))));
        out.push_str(&path(pts, colour, "line"));
    }
    out.push_str("</svg>");
    Some(out)
}

/// Values over time per arm: median (solid) and p99 (dashed), or the rate for 0/1 metrics.
pub fn timeline_chart(m: &MetricResult) -> Option<String> {
    let t: &Timeline = m.series.timeline.as_ref()?;
    let proportion = m.kind == MetricKind::Proportion;
    type Line<'a> = (&'a [Bin], &'a str, fn(&Bin) -> Option<f64>, &'a str);
    let lines: Vec<Line> = if proportion {
        vec![
            (&t.baseline, BASELINE_COLOUR, |b| b.rate, "line"),
            (&t.canary, CANARY_COLOUR, |b| b.rate, "line"),
        ]
    } else {
        vec![
            (&t.baseline, BASELINE_COLOUR, |b| b.p50, "line"),
            (&t.canary, CANARY_COLOUR, |b| b.p50, "line"),
            (&t.baseline, BASELINE_COLOUR, |b| b.p99, "line dashed"),
            (&t.canary, CANARY_COLOUR, |b| b.p99, "line dashed"),
        ]
    };
    let values = lines
        .iter()
        .flat_map(|(bins, _, get, _)| bins.iter().filter_map(get));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return None;
    }
    let bins = t.baseline.len();
    let x = Scale::new(
        t.start_s,
        t.start_s + t.bin_s * bins as f64,
        false,
        LEFT,
        W - RIGHT,
    );
    let y = Scale::new(
        if proportion { 0.0 } else { lo.min(0.0) },
        hi,
        false,
        H - BOTTOM,
        TOP,
    );
    let mut out = String::new();
    let (title, y_label, y_fmt): (String, String, fn(f64) -> String) = if proportion {
        (format!("{}: rate over time", m.name), "rate".into(), |v| {
            format!("{}%", num(v * 100.0))
        })
    } else {
        (
            format!("{}: median (solid) and p99 (dashed) over time", m.name),
            unit_label(m),
            num,
        )
    };
    frame(
        &mut out,
        &title,
        &x,
        &y,
        "seconds since start",
        &y_label,
        y_fmt,
    );
    for (arm, colour, get, class) in lines {
        let pts = arm.iter().enumerate().map(|(i, b)| {
            get(b).map(|v| (x.map(t.start_s + t.bin_s * (i as f64 + 0.5)), y.map(v)))
        });
        out.push_str(&path(pts, colour, class));
    }
    out.push_str("</svg>");
    Some(out)
}

/// Wilson score interval of a proportion at normal quantile `z`.
fn wilson(events: f64, n: f64, z: f64) -> (f64, f64) {
    let p = events / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Rate per arm (0/1 metrics) as bars with their Wilson interval at the judgement's confidence.
pub fn rate_chart(m: &MetricResult) -> Option<String> {
    if m.kind != MetricKind::Proportion || m.baseline.n == 0 || m.canary.n == 0 {
        return None;
    }
    let z = crate::canary::judge::stats::normal_quantile(1.0 - (1.0 - m.ci_level) / 2.0);
    let arms = [
        ("baseline", &m.baseline, BASELINE_COLOUR),
        ("canary", &m.canary, CANARY_COLOUR),
    ];
    type Arm<'a> = (&'a str, f64, (f64, f64), usize, &'a str);
    let stats: Vec<Arm> = arms
        .iter()
        .map(|(label, s, colour)| {
            let rate = s.mean.unwrap_or(0.0);
            let n = s.n as f64;
            (*label, rate, wilson((rate * n).round(), n, z), s.n, *colour)
        })
        .collect();
    let top = stats
        .iter()
        .map(|s| s.2 .1)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let y = Scale::new(0.0, top * 1.15, false, H - BOTTOM, TOP);
    let mut out = String::new();
    let title = format!(
        "{}: rate per arm with {}% interval",
        m.name,
        num(m.ci_level * 100.0)
    );
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {W} {H}" width="{W}" height="{H}"><title>{t}</title><text class="title" x="{LEFT}" y="16">{t}</text>"#,
        t = escape(&title)
    );
    for v in y.ticks() {
        let py = y.map(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{py:.1}" y2="{py:.1}"/><text class="tick" x="{tx}" y="{ty:.1}" text-anchor="end">{l}%</text>"#,
            x2 = W - RIGHT,
            tx = LEFT - 6.0,
            ty = py + 4.0,
            l = num(v * 100.0)
        );
    }
    let slot = (W - RIGHT - LEFT) / 2.0;
    for (i, (label, rate, (lo, hi), n, colour)) in stats.into_iter().enumerate() {
        let cx = LEFT + slot * (i as f64 + 0.5);
        let (bar_w, y0) = (slot * 0.4, y.map(0.0));
        let yr = y.map(rate);
        let _ = write!(
            out,
            r#"<rect class="bar" x="{bx:.1}" y="{yr:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{colour}"><title>{label}: {r}% of {n}</title></rect><path class="whisker" d="M{cx:.1},{ylo:.1}V{yhi:.1}M{a:.1},{ylo:.1}H{b:.1}M{a:.1},{yhi:.1}H{b:.1}"/><text class="tick" x="{cx:.1}" y="{ty}" text-anchor="middle">{label}: {r}% of {n}</text>"#,
            bx = cx - bar_w / 2.0,
            h = (y0 - yr).max(0.5),
            r = num(rate * 100.0),
            ylo = y.map(lo),
            yhi = y.map(hi),
            a = cx - 8.0,
            b = cx + 8.0,
            ty = H - BOTTOM + 18.0
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{yb}"/><line class="axis" x1="{LEFT}" x2="{xr}" y1="{yb}" y2="{yb}"/></svg>"#,
        yb = H - BOTTOM,
        xr = W - RIGHT
    );
    Some(out)
}

/// Every chart of a metric, in display order.
pub fn charts(m: &MetricResult) -> Vec<String> {
    [cdf_chart(m), rate_chart(m), timeline_chart(m)]
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn linear_ticks_are_round_and_inside_the_range() {
        let s = Scale::new(3.0, 97.0, false, 0.0, 100.0);
        assert_eq!(s.ticks(), vec![20.0, 40.0, 60.0, 80.0]);
        assert_eq!(s.map(3.0), 0.0);
        assert_eq!(s.map(97.0), 100.0);
    }

    #[test]
    fn log_ticks_are_powers_of_ten() {
        let s = Scale::new(0.5, 5000.0, true, 0.0, 100.0);
        assert_eq!(s.ticks(), vec![1.0, 10.0, 100.0, 1000.0]);
    }

    #[test]
    fn path_breaks_at_gaps() {
        let p = path(
            [Some((1.0, 2.0)), None, Some((3.0, 4.0)), Some((5.0, 6.0))].into_iter(),
            "#000",
            "line",
        );
        assert!(p.contains(r#"d="M1.0,2.0M3.0,4.0L5.0,6.0""#), "{p}");
    }

    #[test]
    fn wilson_interval_contains_the_rate_and_stays_in_unit_range() {
        let (lo, hi) = wilson(0.0, 100.0, 2.326);
        assert!(lo.abs() < 1e-12);
        assert!(hi > 0.0 && hi < 0.1);
        let (lo, hi) = wilson(30.0, 1000.0, 2.326);
        assert!(lo < 0.03 && hi > 0.03);
    }
}

//! Numbers as the judge's messages and the reports print them.

/// A number with up to 4 significant digits, for messages and tables.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return "out of the f64 range".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A p-value for messages: 4 significant digits, scientific below 1e-4.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        num(p)
    }
}

/// A signed relative change as a percentage, e.g. `+10.2%`.
pub fn pct(v: f64) -> String {
    let s = num(v * 100.0);
    if v > 0.0 {
        format!("+{s}%")
    } else {
        format!("{s}%")
    }
}

pub(super) fn pct_plain(v: f64) -> String {
    format!("{}%", num(v * 100.0))
}

/// `0.99` → `99`, `0.999` → `99.9`, `0.01` → `1`.
pub fn quantile_label(q: f64) -> String {
    num(q * 100.0)
}

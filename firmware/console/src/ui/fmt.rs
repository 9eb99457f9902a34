//! Number and time formatting for narrow screens: every value fits in a few cells.

use kuroko_model::Timestamp;

/// `1.2k`, `35.0M`, `999`.
pub fn format_count(v: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)];
    for (u, m) in UNITS {
        if v as f64 >= m {
            return format!("{:.1}{u}", v as f64 / m);
        }
    }
    v.to_string()
}

/// Bits per second: `950 b/s`, `1.2 Mb/s`, `9.4 Gb/s`.
pub fn format_bits(bps: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)];
    for (u, m) in UNITS {
        if bps as f64 >= m {
            return format!("{:.1} {u}", bps as f64 / m);
        }
    }
    format!("{bps} b/s")
}

/// `45s`, `12m`, `3h05m`, `6d04h`.
pub fn format_duration_s(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".into();
    }
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `s` padded with spaces to `width` terminal cells (wide characters count two), so
/// Japanese labels line up with English ones.
pub fn pad(s: &str, width: usize) -> String {
    let w = unicode_width::UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// `11-18 09:30:05` in the given zone.
pub fn format_time(t: Timestamp, tz: &chrono_tz::Tz) -> String {
    t.to_datetime()
        .with_timezone(tz)
        .format("%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1250), "1.2k");
        assert_eq!(format_count(35_000_000), "35.0M");
        assert_eq!(format_bits(9_400_000_000), "9.4 Gb/s");
        assert_eq!(format_bits(12), "12 b/s");
        assert_eq!(format_duration_s(45.0), "45s");
        assert_eq!(format_duration_s(3.0 * 3600.0 + 300.0), "3h05m");
        assert_eq!(format_duration_s(6.0 * 86400.0 + 4.0 * 3600.0), "6d04h");
        assert_eq!(format_duration_s(f64::NAN), "-");
        let t = Timestamp(1_763_425_805_000_000_000); // 2025-11-18T00:30:05Z
        assert_eq!(format_time(t, &chrono_tz::Asia::Tokyo), "11-18 09:30:05");
        assert_eq!(pad("使用率", 8), "使用率  ");
        assert_eq!(pad("Ring", 6), "Ring  ");
        assert_eq!(pad("longer than", 4), "longer than");
    }
}

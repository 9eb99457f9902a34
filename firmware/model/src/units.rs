//! Byte sizes as people write them in config and queries: `100MB`, `64MiB`, `2GiB`, `1.5G`.
//!
//! Decimal units (kB, MB, GB, TB) are powers of 1000, binary units (KiB, MiB, GiB, TiB) powers
//! of 1024, and the bare letters (K, M, G, T) are binary, as `dd` and `ls -h` read them.

/// Parses a byte size. Returns a message that says what was expected.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(format!(
            "`{text}` is not a size; write e.g. 100MB, 64MiB or 2GiB"
        ));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a size; write e.g. 100MB, 64MiB or 2GiB"))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}`; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// A size for people: `1.5 GiB`, `300 MiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// `1234567` → `1,234,567`: counters a technician reads digit by digit.
pub fn group_digits(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in decimal units (`12.3 TB`), as drive makers rate endurance (TBW).
pub fn format_decimal_bytes(b: u128) -> String {
    const UNITS: [&str; 8] = ["kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    if b < 1000 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_decimal_sizes() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(5123), "5,123");
        assert_eq!(group_digits(1_000_000), "1,000,000");
        assert_eq!(group_digits(u64::MAX as u128), "18,446,744,073,709,551,615");
        assert_eq!(format_decimal_bytes(0), "0 B");
        assert_eq!(format_decimal_bytes(999), "999 B");
        assert_eq!(format_decimal_bytes(1000), "1.0 kB");
        assert_eq!(format_decimal_bytes(12_300_000_000_000), "12.3 TB");
        assert_eq!(format_decimal_bytes(999_960_000), "1.0 GB");
        assert_eq!(format_decimal_bytes(u64::MAX as u128), "18.4 EB");
        assert_eq!(format_decimal_bytes(u128::MAX), "340282366920938.4 YB");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_bytes(" 512 ").unwrap(), 512);
        assert!(parse_bytes("MB").is_err());
        assert!(parse_bytes("10 parsecs").is_err());
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
    }
}

/// Parses a duration: `90s`, `5m`, `1h`, `24h`, `7d`, or plain seconds.
/// A duration that may also be given in milliseconds (`250ms`), else as
/// [`parse_duration_secs`] reads it.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    match text.trim().strip_suffix("ms") {
        Some(n) => n
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("`{text}` is not a duration; write e.g. 250ms, 1s or 5m")),
        None => parse_duration_secs(text)?
            .checked_mul(1000)
            .ok_or_else(|| format!("`{text}` is out of range")),
    }
}

pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 90s, 5m, 1h or 7d"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86400,
        other => {
            return Err(format!(
                "`{text}` has an unknown unit `{other}`; use s, m, h or d"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{text}` is out of range"))
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("90s").unwrap(), 90);
        assert_eq!(parse_duration_secs("5m").unwrap(), 300);
        assert_eq!(parse_duration_secs("24h").unwrap(), 86400);
        assert_eq!(parse_duration_secs("30").unwrap(), 30);
        assert!(parse_duration_secs("soon").is_err());
        assert!(parse_duration_secs("5 fortnights").is_err());
    }
}

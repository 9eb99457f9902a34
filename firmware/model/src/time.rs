//! Nanosecond timestamps.
//!
//! Everything inside Kuroko counts nanoseconds since the Unix epoch in a `u64`-sized `i64`
//! (packets carry them from the capture ring). Only at the edges (JSON, tables, reports) do
//! they become RFC 3339 text, always UTC with nine fraction digits in records so that
//! sorting the text sorts the time.
//!
//! Times for people and for spreadsheets are formatted here too, so every output says the
//! same thing the same way: [`Timestamp::local`] (`2026-11-18 09:00:00 JST`, the site's
//! time zone and its label) for text a person reads, [`Timestamp::rfc3339_in`]
//! (`2026-11-18T09:00:00+09:00`, machine-readable with the offset) for CSV cells.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_nanos(ns: i64) -> Self {
        Timestamp(ns)
    }
    pub const fn nanos(self) -> i64 {
        self.0
    }
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_nanos_opt().unwrap_or(0))
    }
    /// The time as a chrono UTC value (for time-zone arithmetic).
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_nanos(self.0)
    }
    pub fn from_datetime<Tz: TimeZone>(dt: &DateTime<Tz>) -> Self {
        Timestamp(dt.timestamp_nanos_opt().unwrap_or(0))
    }
    /// RFC 3339, UTC, nanoseconds: `2026-11-18T00:30:00.123456789Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Nanos, true)
    }
    /// RFC 3339 in the time zone `tz`, whole seconds, with its offset:
    /// `2026-11-18T09:00:00+09:00`. For machine formats a person also opens (CSV).
    pub fn rfc3339_in(self, tz: &chrono_tz::Tz) -> String {
        self.to_datetime()
            .with_timezone(tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }
    /// For people: in the time zone `tz`, labelled with its abbreviation,
    /// `2026-11-18 09:00:00 JST`.
    pub fn local(self, tz: &chrono_tz::Tz) -> String {
        self.local_fmt(tz, "%Y-%m-%d %H:%M:%S %Z")
    }
    /// In the time zone `tz` with a chrono `format`; keep `%Z` in any format a person
    /// reads without other context (`%H:%M %Z`).
    pub fn local_fmt(self, tz: &chrono_tz::Tz, format: &str) -> String {
        self.to_datetime()
            .with_timezone(tz)
            .format(format)
            .to_string()
    }
    /// Parses RFC 3339 with any offset (`2026-11-18T09:30:00+09:00`).
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(|dt| Timestamp::from_datetime(&dt))
            .map_err(|e| {
                format!("`{s}` is not an RFC 3339 time ({e}); write e.g. 2026-11-18T09:30:00+09:00")
            })
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_nanoseconds() {
        let t = Timestamp(1_763_425_800_123_456_789);
        let s = t.to_rfc3339();
        assert_eq!(s, "2025-11-18T00:30:00.123456789Z");
        assert_eq!(Timestamp::parse_rfc3339(&s).unwrap(), t);
        assert_eq!(
            Timestamp::parse_rfc3339("2025-11-18T09:30:00.123456789+09:00").unwrap(),
            t
        );
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn local_times_are_labelled_and_machine_times_keep_the_offset() {
        let t = Timestamp::parse_rfc3339("2026-11-18T00:00:00Z").unwrap();
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(t.local(&tokyo), "2026-11-18 09:00:00 JST");
        assert_eq!(t.rfc3339_in(&tokyo), "2026-11-18T09:00:00+09:00");
        assert_eq!(t.rfc3339_in(&chrono_tz::UTC), "2026-11-18T00:00:00+00:00");
        assert_eq!(Timestamp::parse_rfc3339(&t.rfc3339_in(&tokyo)).unwrap(), t);
    }
}

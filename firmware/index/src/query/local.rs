//! Times as a person at the site writes them.
//!
//! `time:[2026-11-18T09:00 TO 2026-11-18T18:00]` (no offset) means the site's wall clock,
//! and `time:business` / `time:night` mean the site's business hours (`[site]
//! business_hours`) and everything outside them. Both are rewritten here into ordinary
//! RFC 3339 ranges with the site's offset, so the index, the record matcher and the
//! printed query only ever see absolute times. The business-hours windows are those of
//! `span` (the stored data's time range), at most [`MAX_DAYS`] days of it.

use super::ast::{Expr, Value};
use super::fields::{Field, Kind};
use chrono::TimeZone;
use kuroko_model::Timestamp;
use kuroko_model::config::BusinessHours;

/// Most local days whose business hours one `time:business` expands to (one range each).
pub const MAX_DAYS: u32 = 400;

/// The site's clock: time zone, business hours, and the time range the data covers.
#[derive(Clone, Debug)]
pub struct SiteTime {
    pub tz: chrono_tz::Tz,
    pub business_hours: BusinessHours,
    pub span: (Timestamp, Timestamp),
}

/// A local time without offset: `2026-11-18T09:00`, `…T09:00:30`, `2026-11-18 09:00`,
/// or a date (`2026-11-18`, midnight).
pub fn naive_time(v: &str) -> Option<chrono::NaiveDateTime> {
    let v = v.trim();
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Some(t);
        }
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// `v` as RFC 3339 with the site's offset when it is a local time; as written otherwise.
fn absolute(v: &str, site: &SiteTime) -> String {
    if Timestamp::parse_rfc3339(v).is_ok() {
        return v.to_string();
    }
    match naive_time(v).and_then(|n| site.tz.from_local_datetime(&n).earliest()) {
        Some(dt) => dt.to_rfc3339(),
        None => v.to_string(),
    }
}

fn range(a: Timestamp, b: Timestamp) -> Value {
    Value::Range {
        lo: Some(a.to_rfc3339()),
        hi: Some(b.to_rfc3339()),
        lo_inclusive: true,
        hi_inclusive: false,
    }
}

/// The intervals of `time:business` (`night == false`) or `time:night` within the span.
pub fn intervals(site: &SiteTime, night: bool) -> Vec<(Timestamp, Timestamp)> {
    let (from, to) = site.span;
    let business = site.business_hours.windows(from, to, &site.tz, MAX_DAYS);
    if !night {
        return business;
    }
    let mut out = Vec::new();
    let mut cur = from;
    for (a, b) in business {
        if a > cur {
            out.push((cur, a));
        }
        cur = cur.max(b);
    }
    if cur <= to {
        // Inclusive of the last session's start: one nanosecond past the span.
        out.push((cur, Timestamp(to.nanos().saturating_add(1))));
    }
    out
}

/// `e` with local times made absolute and `time:business` / `time:night` expanded.
pub fn localize(e: &Expr, site: &SiteTime) -> Expr {
    let value = |v: &Value| -> Value {
        match v {
            Value::Cmp(c, x) => Value::Cmp(*c, absolute(x, site)),
            Value::Range {
                lo,
                hi,
                lo_inclusive,
                hi_inclusive,
            } => Value::Range {
                lo: lo.as_ref().map(|x| absolute(x, site)),
                hi: hi.as_ref().map(|x| absolute(x, site)),
                lo_inclusive: *lo_inclusive,
                hi_inclusive: *hi_inclusive,
            },
            other => other.clone(),
        }
    };
    let term = |field: Field, v: &Value| -> Expr {
        if let Value::Word(w) = v {
            let night = w.eq_ignore_ascii_case("night");
            if night || w.eq_ignore_ascii_case("business") {
                let parts: Vec<Expr> = intervals(site, night)
                    .into_iter()
                    .map(|(a, b)| Expr::Term {
                        field: Some(field),
                        value: range(a, b),
                    })
                    .collect();
                return if parts.is_empty() {
                    Expr::Not(Box::new(Expr::All))
                } else {
                    Expr::or(parts)
                };
            }
        }
        Expr::Term {
            field: Some(field),
            value: value(v),
        }
    };
    match e {
        Expr::And(p) => Expr::And(p.iter().map(|x| localize(x, site)).collect()),
        Expr::Or(p) => Expr::Or(p.iter().map(|x| localize(x, site)).collect()),
        Expr::Not(i) => Expr::Not(Box::new(localize(i, site))),
        Expr::Term {
            field: Some(f),
            value: v,
        } if f.kind() == Kind::Time => term(*f, v),
        Expr::AnyOf { field, values } if field.kind() == Kind::Time => {
            Expr::or(values.iter().map(|v| term(*field, v)).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Plan, Pred, Query};

    fn site() -> SiteTime {
        let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        let at =
            |d, h| Timestamp::from_datetime(&tz.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap());
        SiteTime {
            tz,
            business_hours: BusinessHours::parse("mon-fri 09:00-18:00").unwrap(),
            // Wed 11-18 08:00 .. Thu 11-19 10:00 JST
            span: (at(18, 8), at(19, 10)),
        }
    }

    #[test]
    fn local_times_are_the_sites_wall_clock() {
        let s = site();
        let q = Query::parse_local("time:[2026-11-18T09:00 TO 2026-11-18T18:00]", &s).unwrap();
        assert_eq!(
            q.to_string(),
            "time:[2026-11-18T09:00:00+09:00 TO 2026-11-18T18:00:00+09:00]"
        );
        // Without the site, a local time is still an error that says how to write it.
        assert!(Query::parse("time:[2026-11-18T09:00 TO *]").is_err());
        assert!(
            Query::parse("time:business")
                .unwrap_err()
                .message
                .contains("business_hours")
        );
    }

    #[test]
    fn business_and_night_split_the_span() {
        let s = site();
        let day =
            |h| Timestamp::from_datetime(&s.tz.with_ymd_and_hms(2026, 11, 18, h, 0, 0).unwrap());
        let next =
            |h| Timestamp::from_datetime(&s.tz.with_ymd_and_hms(2026, 11, 19, h, 0, 0).unwrap());
        assert_eq!(
            intervals(&s, false),
            vec![(day(9), day(18)), (next(9), next(18))]
        );
        let night = intervals(&s, true);
        assert_eq!(night[0], (day(8), day(9)));
        assert_eq!(night[1], (day(18), next(9)));
        assert_eq!(night.len(), 2, "{night:?}");
        let q = Query::parse_local("time:business AND protocol:ftp", &s).unwrap();
        let Plan::And(parts) = &q.plan else {
            panic!("{:?}", q.plan)
        };
        assert!(
            matches!(&parts[0], Plan::Or(r) if r.len() == 2 && matches!(r[0], Plan::Pred(Pred::Time(..)))),
            "{:?}",
            q.plan
        );
    }
}

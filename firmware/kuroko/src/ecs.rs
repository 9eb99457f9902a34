//! Elastic Common Schema (ECS 8.11) documents for `kuroko search --format ecs` and
//! `kuroko findings --format ecs`: one JSON object a line, nested objects (not dotted
//! keys), what Malcolm, Security Onion, Arkime 6 and any Elasticsearch/OpenSearch ingest
//! take. The field-by-field mapping is `docs/ECS.md`; keep the two in step.
//!
//! Only ECS fields are used at the top level, except `kuroko.*` (what ECS has no field for:
//! the full file list with YARA matches, SSH banners, FTP commands, the finding's levels,
//! signals and countermeasures). Absent values are left out, never written as null.

use kuroko_model::SessionRecord;
use kuroko_model::finding::{Finding, Risk};
use serde_json::{Map, Value, json};

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// Sets `path` (`a.b.c`) in `m`, creating the nested objects; `Null`, empty strings and
/// empty arrays are skipped.
fn put(m: &mut Map<String, Value>, path: &str, v: impl Into<Value>) {
    let v = v.into();
    let empty = match &v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if empty {
        return;
    }
    let mut cur = m;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), v);
            return;
        }
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(obj) = next else { return };
        cur = obj;
    }
}

/// ECS MAC notation: upper case, hyphen separated.
fn mac(m: &Option<String>) -> Option<String> {
    m.as_ref().map(|m| m.replace(':', "-").to_ascii_uppercase())
}

/// `TLSv1.3` → (`tls`, `1.3`); `SSLv3` → (`ssl`, `3`).
fn tls_version(v: &str) -> (String, String) {
    let lower = v.to_ascii_lowercase();
    for p in ["tls", "ssl"] {
        if let Some(rest) = lower.strip_prefix(p) {
            return (
                p.to_string(),
                rest.trim_start_matches('v').trim().to_string(),
            );
        }
    }
    (String::new(), v.to_string())
}

fn observer(m: &mut Map<String, Value>) {
    put(m, "ecs.version", ECS_VERSION);
    put(m, "observer.vendor", "Kuroko");
    put(m, "observer.product", "Kuroko");
    put(m, "observer.type", "sensor");
}

/// One session as an ECS event (`event.kind: event`, `event.category: network`).
pub fn session(s: &SessionRecord) -> Value {
    let mut m = Map::new();
    put(&mut m, "@timestamp", s.start.to_rfc3339());
    observer(&mut m);
    put(&mut m, "event.kind", "event");
    put(&mut m, "event.category", json!(["network"]));
    put(
        &mut m,
        "event.type",
        if s.open {
            json!(["connection", "start"])
        } else {
            json!(["connection", "end"])
        },
    );
    put(&mut m, "event.id", s.id.as_str());
    put(&mut m, "event.module", "kuroko");
    put(&mut m, "event.dataset", "kuroko.session");
    put(&mut m, "event.start", s.start.to_rfc3339());
    put(&mut m, "event.end", s.end.to_rfc3339());
    put(
        &mut m,
        "event.duration",
        (s.end.nanos() - s.start.nanos()).max(0),
    );
    for (side, ep, bytes, packets) in [
        ("source", &s.client, s.bytes_up, s.packets_up),
        ("destination", &s.server, s.bytes_down, s.packets_down),
    ] {
        put(&mut m, &format!("{side}.ip"), ep.ip.to_string());
        put(&mut m, &format!("{side}.port"), ep.port);
        put(&mut m, &format!("{side}.mac"), mac(&ep.mac));
        put(&mut m, &format!("{side}.bytes"), bytes);
        put(&mut m, &format!("{side}.packets"), packets);
    }
    put(&mut m, "client.ip", s.client.ip.to_string());
    put(&mut m, "client.port", s.client.port);
    put(&mut m, "server.ip", s.server.ip.to_string());
    put(&mut m, "server.port", s.server.port);
    put(
        &mut m,
        "network.type",
        if s.client.ip.is_ipv4() {
            "ipv4"
        } else {
            "ipv6"
        },
    );
    put(
        &mut m,
        "network.transport",
        s.transport.to_ascii_lowercase(),
    );
    put(&mut m, "network.protocol", s.protocol.to_ascii_lowercase());
    put(&mut m, "network.community_id", s.community_id.as_str());
    put(&mut m, "network.bytes", s.bytes_up + s.bytes_down);
    put(&mut m, "network.packets", s.packets);
    put(&mut m, "network.direction", Value::Null);
    if let Some(v) = s.vlan {
        put(&mut m, "network.vlan.id", v.to_string());
    }
    put(&mut m, "user.name", s.user().map(str::to_string));

    if let Some(h) = &s.http {
        put(&mut m, "http.request.method", h.method.clone());
        put(
            &mut m,
            "http.response.status_code",
            h.status.map(Value::from),
        );
        put(&mut m, "http.response.mime_type", h.content_type.clone());
        put(&mut m, "url.domain", h.host.clone());
        put(&mut m, "url.original", h.url.clone());
        put(&mut m, "url.query", h.query.clone());
        put(&mut m, "user_agent.original", h.user_agent.clone());
    }
    if let Some(d) = &s.dns {
        put(&mut m, "dns.question.name", d.query.clone());
        put(&mut m, "dns.question.type", d.qtype.clone());
        put(&mut m, "dns.response_code", d.rcode.clone());
        put(
            &mut m,
            "dns.answers",
            d.answers
                .iter()
                .map(|a| json!({"data": a}))
                .collect::<Vec<_>>(),
        );
        put(
            &mut m,
            "dns.resolved_ip",
            d.answers
                .iter()
                .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
                .cloned()
                .collect::<Vec<_>>(),
        );
        if d.query.is_some() {
            put(
                &mut m,
                "dns.type",
                if d.rcode.is_some() { "answer" } else { "query" },
            );
        }
    }
    if let Some(t) = &s.tls {
        if let Some(v) = &t.version {
            let (proto, ver) = tls_version(v);
            put(&mut m, "tls.version_protocol", proto);
            put(&mut m, "tls.version", ver);
        }
        put(&mut m, "tls.cipher", t.cipher.clone());
        put(&mut m, "tls.client.server_name", t.sni.clone());
        put(&mut m, "tls.client.ja3", t.ja3.clone());
        put(&mut m, "tls.client.ja4", t.ja4.clone());
        put(
            &mut m,
            "tls.server.x509.subject.distinguished_name",
            t.cert_subject.clone(),
        );
        put(
            &mut m,
            "tls.server.x509.issuer.distinguished_name",
            t.cert_issuer.clone(),
        );
        if let Some(c) = t.certs.first() {
            put(&mut m, "tls.server.hash.sha1", c.sha1.to_ascii_uppercase());
            put(
                &mut m,
                "tls.server.hash.sha256",
                c.sha256.to_ascii_uppercase(),
            );
            put(
                &mut m,
                "tls.server.x509.serial_number",
                c.serial.to_ascii_uppercase(),
            );
            put(&mut m, "tls.server.x509.not_before", c.not_before.as_str());
            put(&mut m, "tls.server.x509.not_after", c.not_after.as_str());
            put(&mut m, "tls.server.x509.alternative_names", c.san.clone());
            put(&mut m, "tls.server.not_after", c.not_after.as_str());
            put(&mut m, "tls.server.not_before", c.not_before.as_str());
        }
    }
    if let Some(mail) = &s.mail {
        put(
            &mut m,
            "email.from.address",
            mail.from.clone().map(|f| json!([f])),
        );
        put(&mut m, "email.to.address", mail.to.clone());
        put(&mut m, "email.subject", mail.subject.clone());
        put(&mut m, "email.message_id", mail.message_id.clone());
        put(
            &mut m,
            "email.reply_to.address",
            mail.reply_to.clone().map(|f| json!([f])),
        );
        put(&mut m, "email.direction", Value::Null);
        put(
            &mut m,
            "email.attachments",
            mail.attachments
                .iter()
                .map(|a| {
                    let mut f = Map::new();
                    put(&mut f, "file.name", a.name.as_str());
                    put(&mut f, "file.size", a.bytes);
                    put(&mut f, "file.hash.sha256", a.sha256.clone());
                    put(&mut f, "file.mime_type", a.content_type.clone());
                    Value::Object(f)
                })
                .collect::<Vec<_>>(),
        );
    }
    // ECS has one `file`: the first reconstructed object; all of them in `kuroko.files`.
    if let Some(f) = s.files.first() {
        put(&mut m, "file.name", f.name.clone());
        put(&mut m, "file.size", f.bytes);
        put(&mut m, "file.hash.sha256", f.sha256.as_str());
        put(&mut m, "file.mime_type", f.content_type.clone());
    }
    // An FTP control session carries its transfers' matches in `ftp.files[].yara`.
    let yara: Vec<String> = s
        .files
        .iter()
        .flat_map(|f| f.yara.clone())
        .chain(
            s.ftp
                .iter()
                .flat_map(|x| &x.files)
                .flat_map(|f| f.yara.clone()),
        )
        .collect();
    if !yara.is_empty() {
        put(&mut m, "tags", json!(["yara_match"]));
        put(&mut m, "kuroko.yara", yara);
    }
    put(
        &mut m,
        "kuroko.files",
        serde_json::to_value(&s.files).unwrap_or(Value::Null),
    );
    if let Some(ssh) = &s.ssh {
        put(
            &mut m,
            "kuroko.ssh",
            serde_json::to_value(ssh).unwrap_or(Value::Null),
        );
    }
    if let Some(ftp) = &s.ftp {
        put(
            &mut m,
            "kuroko.ftp",
            serde_json::to_value(ftp).unwrap_or(Value::Null),
        );
    }
    put(&mut m, "kuroko.flags", s.flags.clone());

    let mut hosts: Vec<String> = Vec::new();
    if let Some(h) = s.host() {
        hosts.push(h.to_string());
    }
    put(
        &mut m,
        "related.ip",
        json!([s.client.ip.to_string(), s.server.ip.to_string()]),
    );
    put(&mut m, "related.hosts", hosts);
    let mut hashes: Vec<String> = s.files.iter().map(|f| f.sha256.clone()).collect();
    hashes.dedup();
    put(&mut m, "related.hash", hashes);
    put(&mut m, "related.user", s.user().map(|u| json!([u])));
    Value::Object(m)
}

/// ECS `event.severity` for a risk (A highest).
fn severity(r: Risk) -> u8 {
    match r {
        Risk::A => 5,
        Risk::B => 4,
        Risk::C => 3,
        Risk::D => 2,
        Risk::E => 1,
    }
}

/// One finding as an ECS alert (`event.kind: alert`), `rule.*` naming the Kuroko rule.
pub fn finding(f: &Finding) -> Value {
    let mut m = Map::new();
    put(&mut m, "@timestamp", f.first_seen.to_rfc3339());
    observer(&mut m);
    put(&mut m, "event.kind", "alert");
    put(&mut m, "event.category", json!(["intrusion_detection"]));
    put(&mut m, "event.type", json!(["indicator"]));
    put(&mut m, "event.id", f.id.as_str());
    put(&mut m, "event.module", "kuroko");
    put(&mut m, "event.dataset", "kuroko.finding");
    put(&mut m, "event.start", f.first_seen.to_rfc3339());
    put(&mut m, "event.end", f.last_seen.to_rfc3339());
    put(&mut m, "event.severity", severity(f.risk));
    put(
        &mut m,
        "event.risk_score",
        (f.vulnerability as f64 * f.threat as f64 / 9.0 * 100.0).round(),
    );
    put(&mut m, "event.count", f.count);
    put(&mut m, "message", f.title.as_str());
    put(&mut m, "rule.id", f.rule.as_str());
    put(&mut m, "rule.name", f.rule.as_str());
    put(&mut m, "rule.description", f.title.as_str());
    put(&mut m, "rule.category", f.category.as_str());
    put(&mut m, "rule.ruleset", "kuroko");
    put(&mut m, "rule.author", json!(["Kuroko"]));
    if !f.attack.is_empty() {
        put(&mut m, "threat.framework", "MITRE ATT&CK");
        put(&mut m, "threat.technique.id", f.attack.clone());
    }
    put(&mut m, "source.ip", f.client.clone());
    put(&mut m, "destination.ip", f.server.clone());
    let related: Vec<String> = f.client.iter().chain(f.server.iter()).cloned().collect();
    put(&mut m, "related.ip", related);
    put(&mut m, "kuroko.risk", f.risk.to_string());
    put(&mut m, "kuroko.vulnerability", f.vulnerability);
    put(&mut m, "kuroko.threat", f.threat);
    put(&mut m, "kuroko.evidence", f.evidence.clone());
    put(&mut m, "kuroko.signals", f.signals.clone());
    put(&mut m, "kuroko.countermeasures", f.countermeasures.clone());
    put(&mut m, "kuroko.override_reason", f.override_reason.clone());
    put(&mut m, "kuroko.note", f.note.clone());
    Value::Object(m)
}

/// Writes `docs` one a line.
pub fn write_lines(
    out: &mut dyn std::io::Write,
    docs: impl Iterator<Item = Value>,
) -> std::io::Result<()> {
    for d in docs {
        serde_json::to_writer(&mut *out, &d).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::Timestamp;
    use kuroko_model::session::{Cert, Dns, Endpoint, Tls};

    fn record(proto: &str, transport: &str) -> SessionRecord {
        let mut s = SessionRecord::new(
            "0-1-2".into(),
            Timestamp(1_794_963_600_000_000_000),
            transport,
            Endpoint::new("2001:db8::5".parse().unwrap(), 50_000),
            Endpoint::new("2001:db8::53".parse().unwrap(), 443),
        );
        s.protocol = proto.into();
        s.end = Timestamp(1_794_963_601_500_000_000);
        s
    }

    #[test]
    fn tls_and_dns_land_in_their_ecs_fields() {
        let mut s = record("tls", "tcp");
        s.tls = Some(Tls {
            sni: Some("mail.example.jp".into()),
            version: Some("TLSv1.2".into()),
            ja3: Some("e7d705a3286e19ea42f587b344ee6865".into()),
            certs: vec![Cert {
                subject: "CN=mail.example.jp".into(),
                sha1: "ab12".into(),
                sha256: "cd34".into(),
                serial: "0a1b".into(),
                not_after: "2027-01-01T00:00:00Z".into(),
                san: vec!["mail.example.jp".into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        let e = session(&s);
        assert_eq!(e["tls"]["version_protocol"], "tls");
        assert_eq!(e["tls"]["version"], "1.2");
        assert_eq!(e["tls"]["client"]["server_name"], "mail.example.jp");
        assert_eq!(
            e["tls"]["client"]["ja3"],
            "e7d705a3286e19ea42f587b344ee6865"
        );
        assert_eq!(e["tls"]["server"]["hash"]["sha256"], "CD34");
        assert_eq!(e["tls"]["server"]["x509"]["serial_number"], "0A1B");
        assert_eq!(e["network"]["type"], "ipv6");
        assert_eq!(e["event"]["duration"], 1_500_000_000i64);
        assert_eq!(e["related"]["hosts"], json!(["mail.example.jp"]));
        assert!(e.get("dns").is_none() && e.get("http").is_none());

        let mut d = record("dns", "udp");
        d.dns = Some(Dns {
            query: Some("evil.example".into()),
            qtype: Some("A".into()),
            rcode: Some("NOERROR".into()),
            answers: vec!["192.0.2.7".into(), "cname.example".into()],
            ..Default::default()
        });
        let e = session(&d);
        assert_eq!(e["dns"]["question"]["name"], "evil.example");
        assert_eq!(e["dns"]["question"]["type"], "A");
        assert_eq!(e["dns"]["response_code"], "NOERROR");
        assert_eq!(e["dns"]["resolved_ip"], json!(["192.0.2.7"]));
        assert_eq!(e["dns"]["answers"][1]["data"], "cname.example");
        assert_eq!(e["network"]["transport"], "udp");
    }

    #[test]
    fn put_skips_empty_values_and_nests_paths() {
        let mut m = Map::new();
        put(&mut m, "a.b.c", 1);
        put(&mut m, "a.b.d", "");
        put(&mut m, "a.e", Value::Null);
        put(&mut m, "a.f", json!([]));
        assert_eq!(Value::Object(m), json!({"a": {"b": {"c": 1}}}));
        assert_eq!(
            mac(&Some("02:00:0a:0a:01:0a".into())).unwrap(),
            "02-00-0A-0A-01-0A"
        );
    }
}

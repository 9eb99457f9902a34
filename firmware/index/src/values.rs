//! Which values of a session record each query field holds.
//!
//! The index writes exactly these values and the alert matcher tests exactly these values,
//! so a field means the same thing in a search and in an alert condition. A field can hold
//! several values (every HTTP transaction's URL, every mail recipient); a term matches when
//! any value does.

use crate::query::Field;
use kuroko_model::SessionRecord;
use std::net::IpAddr;

/// Text values (keyword and text fields), as recorded (not lower-cased). Empty values are
/// left out.
pub fn text_values(r: &SessionRecord, field: Field) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: Option<&str>| {
        if let Some(v) = v
            && !v.is_empty()
            && !out.iter().any(|x| x == v)
        {
            out.push(v.to_string());
        }
    };
    match field {
        Field::Protocol => {
            push(Some(&r.protocol));
            // The inner protocol of a tunnel or STARTTLS (`protocol:tls AND
            // tunnel:http-connect`). The aggregates take a session's smallest protocol
            // value: the outer label for http/smtp/imap/pop3/ftp/ldap/postgresql carrying
            // tls; an inner label that sorts first (ftp inside CONNECT) is counted instead.
            push(r.tunnel.as_ref().and_then(|t| t.inner.as_deref()));
        }
        Field::CertSubject
        | Field::CertIssuer
        | Field::CertSha1
        | Field::CertSha256
        | Field::San => {
            if let Some(t) = &r.tls {
                if field == Field::CertSubject {
                    push(t.cert_subject.as_deref());
                }
                if field == Field::CertIssuer {
                    push(t.cert_issuer.as_deref());
                }
                for c in &t.certs {
                    match field {
                        Field::CertSubject => push(Some(&c.subject)),
                        Field::CertIssuer => push(Some(&c.issuer)),
                        Field::CertSha1 => push(Some(&c.sha1)),
                        Field::CertSha256 => push(Some(&c.sha256)),
                        _ => c.san.iter().for_each(|n| push(Some(n))),
                    }
                }
            }
        }
        Field::Tunnel => {
            push(r.tunnel.as_ref().map(|t| t.kind.as_str()));
            r.flags
                .iter()
                .filter_map(|f| f.strip_prefix("tunnel:"))
                .for_each(|k| push(Some(k)));
        }
        Field::Transport => push(Some(&r.transport)),
        Field::Id => push(Some(&r.id)),
        Field::Flags => r.flags.iter().for_each(|f| push(Some(f))),
        Field::Open => push(Some(if r.open { "true" } else { "false" })),
        Field::State => push(Some(if r.open { "open" } else { "closed" })),
        Field::Mac => {
            push(r.client.mac.as_deref());
            push(r.server.mac.as_deref());
        }
        Field::Host => {
            if let Some(h) = &r.http {
                push(h.host.as_deref());
                h.transactions.iter().for_each(|t| push(t.host.as_deref()));
            }
            if let Some(t) = &r.tls {
                push(t.sni.as_deref());
            }
            if let Some(d) = &r.dns {
                push(d.query.as_deref());
                d.more_queries.iter().for_each(|q| push(Some(q)));
            }
        }
        Field::Url => {
            if let Some(h) = &r.http {
                push(h.url.as_deref());
                for t in &h.transactions {
                    push(Some(&transaction_url(t.host.as_deref(), &t.uri)));
                }
            }
        }
        Field::Method => {
            if let Some(h) = &r.http {
                push(h.method.as_deref());
                h.transactions.iter().for_each(|t| push(Some(&t.method)));
            }
        }
        Field::Query => {
            if let Some(h) = &r.http {
                push(h.query.as_deref());
            }
            if let Some(d) = &r.dns {
                push(d.query.as_deref());
                d.more_queries.iter().for_each(|q| push(Some(q)));
            }
        }
        Field::ContentType => {
            if let Some(h) = &r.http {
                push(h.content_type.as_deref());
                h.transactions
                    .iter()
                    .for_each(|t| push(t.content_type.as_deref()));
            }
        }
        Field::UserAgent => {
            if let Some(h) = &r.http {
                push(h.user_agent.as_deref());
                h.transactions
                    .iter()
                    .for_each(|t| push(t.user_agent.as_deref()));
            }
        }
        Field::From => {
            if let Some(m) = &r.mail {
                push(m.from.as_deref());
                push(m.mail_from.as_deref());
                push(m.from_display.as_deref());
                for msg in &m.messages {
                    push(msg.from.as_deref());
                    push(msg.from_display.as_deref());
                }
            }
        }
        Field::To => {
            if let Some(m) = &r.mail {
                m.to.iter().for_each(|t| push(Some(t)));
                m.messages
                    .iter()
                    .flat_map(|x| &x.to)
                    .for_each(|t| push(Some(t)));
            }
        }
        Field::Subject => {
            if let Some(m) = &r.mail {
                push(m.subject.as_deref());
                m.messages.iter().for_each(|x| push(x.subject.as_deref()));
            }
        }
        Field::Attachment => {
            if let Some(m) = &r.mail {
                m.attachments.iter().for_each(|a| push(Some(&a.name)));
                m.messages
                    .iter()
                    .flat_map(|x| &x.attachments)
                    .for_each(|a| push(Some(&a.name)));
            }
        }
        Field::File => {
            r.files.iter().for_each(|f| push(f.name.as_deref()));
            if let Some(f) = &r.ftp {
                f.files.iter().for_each(|x| push(Some(&x.name)));
            }
            if let Some(m) = &r.mail {
                m.attachments.iter().for_each(|a| push(Some(&a.name)));
                m.messages
                    .iter()
                    .flat_map(|x| &x.attachments)
                    .for_each(|a| push(Some(&a.name)));
            }
        }
        Field::Sha256 => {
            r.files.iter().for_each(|f| push(Some(&f.sha256)));
            if let Some(f) = &r.ftp {
                f.files.iter().for_each(|x| push(x.sha256.as_deref()));
            }
            if let Some(m) = &r.mail {
                m.attachments.iter().for_each(|a| push(a.sha256.as_deref()));
                push(m.eml_sha256.as_deref());
                for msg in &m.messages {
                    msg.attachments
                        .iter()
                        .for_each(|a| push(a.sha256.as_deref()));
                    push(msg.eml_sha256.as_deref());
                }
            }
        }
        Field::FileType => {
            r.files
                .iter()
                .flat_map(|f| file_types(f.content_type.as_deref(), f.name.as_deref()))
                .for_each(|t| push(Some(&t)));
            if let Some(f) = &r.ftp {
                f.files
                    .iter()
                    .flat_map(|x| file_types(None, Some(&x.name)))
                    .for_each(|t| push(Some(&t)));
            }
            if let Some(m) = &r.mail {
                m.attachments
                    .iter()
                    .chain(m.messages.iter().flat_map(|x| &x.attachments))
                    .flat_map(|a| file_types(a.content_type.as_deref(), Some(&a.name)))
                    .for_each(|t| push(Some(&t)));
            }
        }
        Field::Yara => r
            .files
            .iter()
            .flat_map(|f| &f.yara)
            .chain(r.ftp.iter().flat_map(|x| &x.files).flat_map(|f| &f.yara))
            .for_each(|y| push(Some(y))),
        Field::User => {
            push(r.ftp.as_ref().and_then(|x| x.user.as_deref()));
            push(r.telnet.as_ref().and_then(|x| x.user.as_deref()));
            push(r.mail.as_ref().and_then(|x| x.user.as_deref()));
            push(r.http.as_ref().and_then(|x| x.user.as_deref()));
            push(r.oracle.as_ref().and_then(|x| x.user.as_deref()));
        }
        Field::Sni => push(r.tls.as_ref().and_then(|t| t.sni.as_deref())),
        Field::Ja3 => push(r.tls.as_ref().and_then(|t| t.ja3.as_deref())),
        Field::Ja4 => push(r.tls.as_ref().and_then(|t| t.ja4.as_deref())),
        Field::CommunityId => push(Some(r.community_id.as_str()).filter(|c| !c.is_empty())),
        Field::Intel => r.intel.iter().for_each(|h| {
            push(Some(&h.feed));
            push(Some(&h.pack));
            push(Some(&h.kind));
        }),
        Field::Version => {
            if let Some(s) = &r.ssh {
                push(s.client_version.as_deref());
                push(s.server_version.as_deref());
            }
            push(r.tls.as_ref().and_then(|t| t.version.as_deref()));
            push(r.ftp.as_ref().and_then(|f| f.banner.as_deref()));
            push(r.mail.as_ref().and_then(|m| m.banner.as_deref()));
            if let Some(h) = &r.http {
                push(h.server.as_deref());
                h.transactions
                    .iter()
                    .for_each(|t| push(t.server.as_deref()));
            }
        }
        _ => {}
    }
    out
}

/// The URL of a transaction as NetRAPTOR shows it: host + path, or the CONNECT authority.
pub fn transaction_url(host: Option<&str>, uri: &str) -> String {
    if let Some(rest) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    {
        return rest.to_string();
    }
    match host {
        Some(h) if uri.starts_with('/') => format!("{h}{uri}"),
        _ => uri.to_string(),
    }
}

/// Number values (ports, status, sizes, counts).
pub fn u64_values(r: &SessionRecord, field: Field) -> Vec<u64> {
    match field {
        Field::ClientPort => vec![r.client.port.into()],
        Field::ServerPort => vec![r.server.port.into()],
        Field::Bytes => vec![r.bytes_up.saturating_add(r.bytes_down)],
        Field::BytesUp => vec![r.bytes_up],
        Field::BytesDown => vec![r.bytes_down],
        Field::CapturedBytes => vec![r.captured_bytes],
        Field::MissingBytes => vec![r.missing_bytes],
        Field::Packets => vec![r.packets],
        Field::Vlan => r.vlan.map(u64::from).into_iter().collect(),
        Field::Status => {
            let mut v: Vec<u64> = Vec::new();
            if let Some(h) = &r.http {
                for s in h
                    .status
                    .iter()
                    .chain(h.transactions.iter().filter_map(|t| t.status.as_ref()))
                {
                    let s = u64::from(*s);
                    if !v.contains(&s) {
                        v.push(s);
                    }
                }
            }
            v
        }
        Field::FileSize => {
            let mut v: Vec<u64> = r.files.iter().map(|f| f.bytes).collect();
            if let Some(f) = &r.ftp {
                v.extend(f.files.iter().map(|x| x.bytes));
            }
            if let Some(m) = &r.mail {
                v.extend(
                    m.attachments
                        .iter()
                        .chain(m.messages.iter().flat_map(|x| &x.attachments))
                        .map(|a| a.bytes),
                );
            }
            v.sort_unstable();
            v.dedup();
            v
        }
        _ => Vec::new(),
    }
}

/// The `file_type` values of a file: its content type without parameters, lower-cased
/// (`application/pdf`), and its name's extension (`pdf`), when it has these.
pub fn file_types(content_type: Option<&str>, name: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(ct) = content_type {
        let ct = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !ct.is_empty() {
            out.push(ct);
        }
    }
    if let Some((_, ext)) = name.and_then(|n| n.rsplit_once('.'))
        && (1..=10).contains(&ext.len())
        && ext.chars().all(|c| c.is_ascii_alphanumeric())
    {
        out.push(ext.to_ascii_lowercase());
    }
    out
}

/// Address values.
pub fn ip_values(r: &SessionRecord, field: Field) -> Vec<IpAddr> {
    match field {
        Field::Client => vec![r.client.ip],
        Field::Server => vec![r.server.ip],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_model::Timestamp;
    use kuroko_model::session::{Endpoint, Ftp, Mail};

    /// `version:` reaches the software a server announced in its FTP or mail greeting
    /// (vsftpd, Exim, …), like SSH banners and HTTP `Server`.
    #[test]
    fn version_holds_ftp_and_mail_greetings() {
        let mut r = SessionRecord::new(
            "s".into(),
            Timestamp(0),
            "tcp",
            Endpoint::new("10.0.0.5".parse().unwrap(), 40000),
            Endpoint::new("10.0.0.9".parse().unwrap(), 21),
        );
        r.ftp = Some(Ftp {
            banner: Some("220 (vsFTPd 3.0.3)".into()),
            ..Default::default()
        });
        r.mail = Some(Mail {
            banner: Some("220 mx ESMTP Exim 4.96".into()),
            ..Default::default()
        });
        assert_eq!(
            text_values(&r, Field::Version),
            ["220 (vsFTPd 3.0.3)", "220 mx ESMTP Exim 4.96"]
        );
    }
}

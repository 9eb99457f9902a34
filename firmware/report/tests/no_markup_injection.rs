//! Property: no string from a session, a finding, a mail or `site.toml` can add markup to
//! the report. The same data rendered with hostile strings and with a plain word in every
//! text field must give exactly the same sequence of tags.

use kuroko_model::config::Config;
use kuroko_model::finding::{Category, Finding, Risk};
use kuroko_model::session::{Attachment, Cert, Endpoint, FileRef, Http, Link, Mail, Tls};
use kuroko_model::{SessionRecord, Timestamp};
use kuroko_report::data::{Inputs, StoreSummary};
use kuroko_report::objects::ObjectStore;
use kuroko_report::site::{RuleOverride, SiteFile};
use kuroko_report::{Lang, ReportData, html};
use proptest::prelude::*;

fn build(s: &str) -> ReportData {
    let t = Timestamp(1_794_960_000_000_000_000);
    let mut sess = SessionRecord::new(
        s.to_string(),
        t,
        "tcp",
        Endpoint::new("10.0.0.1".parse().unwrap(), 1),
        Endpoint::new("192.0.2.1".parse().unwrap(), 25),
    );
    sess.protocol = s.to_string();
    sess.bytes_up = 10;
    sess.http = Some(Http {
        method: Some(s.into()),
        url: Some(s.into()),
        ..Default::default()
    });
    sess.mail = Some(Mail {
        from: Some(s.into()),
        from_display: Some(s.into()),
        to: vec![s.into()],
        subject: Some(s.into()),
        reply_to: Some(s.into()),
        mail_from: Some(s.into()),
        links: vec![Link {
            text: s.into(),
            href: s.into(),
        }],
        attachments: vec![Attachment {
            name: s.into(),
            bytes: 1,
            sha256: Some(s.into()),
            content_type: Some(s.into()),
        }],
        ..Default::default()
    });
    // The certificate section (§3.7) quotes the server's certificate.
    sess.tls = Some(Tls {
        sni: Some(s.into()),
        certs: vec![Cert {
            subject: s.into(),
            issuer: s.into(),
            not_before: s.into(),
            not_after: s.into(),
            sha256: s.into(),
            self_signed: true,
            ..Default::default()
        }],
        ..Default::default()
    });
    sess.files.push(FileRef {
        sha256: s.into(),
        name: Some(s.into()),
        content_type: Some(s.into()),
        bytes: 1,
        direction: s.into(),
        kind: s.into(),
        partial: false,
        ..Default::default()
    });
    let f = Finding {
        id: s.into(),
        rule: s.into(),
        title: s.into(),
        category: Category::InitialAccess,
        attack: vec![s.into()],
        client: Some(s.into()),
        server: Some(s.into()),
        first_seen: t,
        last_seen: t,
        count: 1,
        vulnerability: 3,
        threat: 3,
        risk: Risk::A,
        countermeasures: vec![s.into()],
        evidence: vec![s.into()],
        signals: vec![s.into()],
        override_reason: None,
        override_source: None,
        note: None,
        volume: Default::default(),
    };
    let mut site = SiteFile::default();
    site.site.name = s.into();
    site.site.customer = s.into();
    site.site.analyst = s.into();
    site.notes.insert(s.into(), s.into());
    site.overrides.insert(
        s.into(),
        RuleOverride {
            vulnerability: Some(2),
            threat: None,
            reason: s.into(),
            note: None,
        },
    );
    let dir = std::env::temp_dir();
    ReportData::build(Inputs {
        config: &Config::default(),
        site: &site,
        findings: vec![f],
        sessions: vec![sess].into_iter(),
        store: StoreSummary::default(),
        objects: &ObjectStore::new(&dir),
        generated: t,
    })
}

/// Every `<…>` of the document, in order.
fn tags(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        let Some(j) = rest[i..].find('>') else { break };
        out.push(&rest[i..i + j + 1]);
        rest = &rest[i + j + 1..];
    }
    out
}

fn hostile() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "'",
        "\"",
        "&amp;",
        "<!--",
        "-->",
        "]]>",
        "<svg onload=x>",
        "</td></tr></table>",
        "javascript:alert(1)",
        "<a href=\"http://evil\">",
        "\u{0}",
        "\u{1b}[31m",
        "日本語",
        "<",
        ">",
        "&",
        "<style>*{display:none}</style>",
        "</section>",
        "<meta http-equiv=refresh content=0>",
    ]);
    (prop::collection::vec(pieces, 1..6), "[ -~]{0,12}")
        .prop_map(|(v, tail)| format!("h{}{tail}", v.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn hostile_strings_add_no_markup(s in hostile()) {
        let plain = build("x");
        let evil = build(&s);
        for lang in [Lang::Ja, Lang::En] {
            let a = html::render(&plain, lang);
            let b = html::render(&evil, lang);
            prop_assert_eq!(tags(&a), tags(&b));
            prop_assert!(!b.contains("<script"));
        }
    }
}

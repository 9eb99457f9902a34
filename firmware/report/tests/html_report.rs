//! The HTML report of a data directory holding several findings: every chapter present,
//! numbers consistent with the inputs, both languages, and nothing from the traffic able
//! to inject markup.

mod common;

use kuroko_model::config::Config;
use kuroko_report::data::StoreSummary;
use kuroko_report::inputs;
use kuroko_report::{Lang, html};

fn config() -> Config {
    let mut c = Config::default();
    c.site.name = "本社データセンター".into();
    c.site.customer = "株式会社サンプル".into();
    c
}

#[test]
fn every_chapter_in_both_languages_with_consistent_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let findings = common::build(dir.path());
    let (data, warn) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    assert!(warn.site_created);
    assert_eq!(warn.bad_findings, 0);
    assert_eq!(data.findings.len(), findings.len());
    assert_eq!(data.env.sessions, 240 + 9);
    assert_eq!(data.missing_evidence, 1);

    for lang in [Lang::Ja, Lang::En] {
        let html = html::render(&data, lang);
        for id in [
            "overview",
            "summary",
            "environment",
            "threats",
            "scenarios",
            "details",
        ] {
            assert!(
                html.contains(&format!("<section class=\"chapter\" id=\"{id}\">")),
                "{lang:?}: no {id}"
            );
        }
        // Grade cards agree with the findings' grades.
        for r in kuroko_model::Risk::ALL {
            let n = findings.iter().filter(|f| f.risk == r).count();
            assert!(
                html.contains(&format!("data-grade=\"{r}\">{n}</div>")),
                "{lang:?} grade {r} should be {n}"
            );
        }
        // One detail block per finding, one threat-table row per finding.
        assert_eq!(
            html.matches("<div class=\"finding\" id=\"f-").count(),
            findings.len()
        );
        assert!(html.contains("id=\"total-sessions\"><b>249</b>"));
        // The hostile mail: no script, no live link, no remote image; text and href shown.
        assert!(!html.to_lowercase().contains("<script"), "{lang:?}");
        assert!(!html.contains("<img") && !html.contains("<a href=\"http"));
        assert!(html.contains("resona-secure.example/login&quot;&gt;&lt;script&gt;"));
        assert!(html.contains("https://www.resonabank.co.jp/"));
        assert!(html.contains("パスワード入力相違が繰り返されたため口座を凍結しました"));
        assert!(html.contains("本人確認.exe"));
        assert!(html.contains(&common::sha(common::MALWARE)));
        // Nothing fetched.
        assert!(
            !html.contains("src=\"http") && !html.contains("url(http") && !html.contains("@import")
        );
    }
    let ja = html::render(&data, Lang::Ja);
    // The detected-threats list is numbered 1..n by risk, in that order.
    let table = &ja[ja.find("<table class=\"threats\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let mut at = 0;
    for no in 1..=findings.len() {
        let pos = table[at..]
            .find(&format!("<tr><td class=\"num\">{no}</td>"))
            .unwrap_or_else(|| panic!("No. {no} out of order"));
        at += pos + 1;
    }
    assert!(
        ja.contains("実施概要")
            && ja.contains("イベント検知ステータス")
            && ja.contains("株式会社サンプル 御中")
    );
    assert!(ja.contains("初期アクセスに繋がる脅威・脆弱性"));
    let en = html::render(&data, Lang::En);
    assert!(
        en.contains("Event detection status")
            && en.contains("Threats and weaknesses leading to initial access")
    );
}

#[test]
fn site_file_overrides_change_grades_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    std::fs::write(
        dir.path().join("site.toml"),
        "[site]\nname = \"DC\"\ncustomer = \"ACME\"\nanalyst = \"K. Consultant\"\n[notes]\n\"f-telnet\" = \"管理者に確認済み\"\n[overrides.telnet_use]\nvulnerability = 3\nthreat = 3\nreason = \"管理 VLAN が全社に開放されている\"\n",
    )
    .unwrap();
    let (data, warn) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    assert!(!warn.site_created);
    let t = data
        .findings
        .iter()
        .find(|f| f.finding.id == "f-telnet")
        .unwrap();
    assert_eq!(t.finding.risk, kuroko_model::Risk::A);
    assert_eq!(t.original_risk, kuroko_model::Risk::C);
    assert_eq!(data.customer, "ACME");
    let html = html::render(&data, Lang::Ja);
    assert!(html.contains("管理 VLAN が全社に開放されている"));
    assert!(html.contains("管理者に確認済み"));
    assert!(html.contains("data-grade=\"A\">2</div>"));
    assert!(html.contains("K. Consultant"));

    std::fs::write(
        dir.path().join("site.toml"),
        "[overrides.telnet_use]\nthreat = 7\nreason = \"x\"\n",
    )
    .unwrap();
    let e = inputs::gather(dir.path(), &config(), StoreSummary::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("site.toml:2") && e.contains("overrides.telnet_use.threat"),
        "{e}"
    );
}

#[test]
fn an_empty_data_directory_still_gives_every_chapter() {
    let dir = tempfile::tempdir().unwrap();
    let (data, warn) =
        inputs::gather(dir.path(), &Config::default(), StoreSummary::default()).unwrap();
    assert!(warn.site_created);
    assert!(data.findings.is_empty() && data.env.sessions == 0 && data.period.is_none());
    for lang in [Lang::Ja, Lang::En] {
        let html = html::render(&data, lang);
        for id in [
            "overview",
            "summary",
            "environment",
            "threats",
            "scenarios",
            "details",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(html.contains("data-grade=\"A\">0</div>"));
    }
    let ja = html::render(&data, Lang::Ja);
    assert!(ja.contains("検出された脅威はありません。") && ja.contains("(お客様名未設定)"));
    let font = kuroko_report::pdf::find_font(None).expect("install fonts-ipaexfont-gothic");
    let pdf = kuroko_report::pdf::render(&data, Lang::En, &font).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
}

#[test]
fn config_overrides_applied_by_detections_show_the_catalog_defaults_as_before() {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    // A finding as detections store it after `[detect.overrides.telnet_use]` (default 3 × 2).
    let path = dir.path().join("findings/findings.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut f: kuroko_model::Finding = serde_json::from_str(line).unwrap();
        if f.rule == "telnet_use" {
            f.vulnerability = 1;
            f.threat = 1;
            f.risk = kuroko_model::Risk::E;
            f.override_reason = Some("閉域の保守網のみ".into());
        }
        out.push_str(&serde_json::to_string(&f).unwrap());
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
    let (data, _) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    let t = data
        .findings
        .iter()
        .find(|f| f.finding.rule == "telnet_use")
        .unwrap();
    assert_eq!((t.original_vulnerability, t.original_threat), (3, 2));
    assert_eq!(t.finding.risk, kuroko_model::Risk::E);
    let html = html::render(&data, Lang::Ja);
    assert!(
        html.contains("脆弱性 3 × 脅威 2 = B → 脆弱性 1 × 脅威 1 = E。理由: 閉域の保守網のみ"),
        "override line"
    );
}

/// 総評 is written from the findings, and 主要なリスク (2.2) lists every A and B finding,
/// numbered by risk (No. 1 the worst), and nothing below B when there are A or B ones.
#[test]
fn assessment_and_top_risks_follow_the_grades() {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    let (data, _) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    let ja = html::render(&data, Lang::Ja);
    let worst = &data.by_risk()[0];
    assert_eq!(worst.no, 1, "No. 1 is the worst finding");
    let summary = &ja[ja.find("id=\"summary\"").unwrap()..];
    let assessment = &summary[summary.find("総評").expect("総評")..summary.find("2.1").unwrap()];
    assert!(
        assessment.contains(&format!(
            "「{}」(No.1, A)",
            worst.title(Lang::Ja).replace('>', "&gt;")
        )),
        "{assessment}"
    );
    let top = &summary[summary.find("主要なリスク").unwrap()..summary.find("2.3").unwrap()];
    for f in &data.findings {
        let listed = top.contains(&f.title(Lang::Ja).replace('>', "&gt;"));
        assert_eq!(
            listed,
            f.finding.risk <= kuroko_model::Risk::B,
            "{} ({}) in 主要なリスク: {listed}",
            f.finding.id,
            f.finding.risk
        );
    }
}

/// §3.5: top sources, destinations and domains, and business hours vs the rest, add up
/// to the session log's totals.
#[test]
fn top_talkers_and_business_hours_add_up() {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    let (data, _) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    let env = &data.env;
    assert_eq!(env.hours.sessions(), env.sessions);
    assert_eq!(env.hours.bytes(), env.bytes);
    let sources: u64 = env.sources.values().map(|t| t.sessions()).sum();
    assert_eq!(sources, env.sessions);
    let top = kuroko_report::EnvStats::top(&env.sources, 1);
    assert_eq!(top[0].0, "10.1.0.21", "the TLS client moved the most bytes");
    let ja = html::render(&data, Lang::Ja);
    let part = &ja[ja
        .find("通信量の多いホスト・ドメインと時間帯")
        .expect("3.5")..];
    assert!(part.contains("業務時間外") && part.contains("142.250.196.110"));
}

/// Issue 15: a long session appears in the log as provisional (`open`) records before its
/// final one, and a session still open when the report is made as provisional records
/// only. The report counts each session once, with the bytes of the record that replaced
/// the others (the final one, else the latest provisional one).
#[test]
fn a_session_with_provisional_records_counts_once_in_the_report() {
    use kuroko_model::sessionlog::SessionLogWriter;
    let dir = tempfile::tempdir().unwrap();
    let mut log = SessionLogWriter::open(&dir.path().join("sessions")).unwrap();
    let ssh = |id: &str, up: u64, open: bool| {
        let mut s = common::session(
            id,
            0,
            "ssh",
            ("10.1.0.20", 50000),
            ("198.51.100.7", 22),
            up,
            0,
        );
        s.open = open;
        s
    };
    let other = common::session(
        "short",
        1,
        "http",
        ("10.1.0.21", 50001),
        ("198.51.100.8", 80),
        10,
        0,
    );
    for s in [
        ssh("long", 100, true),
        other,
        ssh("long", 200, true),
        ssh("still-open", 7, true),
        ssh("long", 300, false),
        ssh("still-open", 9, true),
    ] {
        log.append(&s).unwrap();
    }
    log.sync().unwrap();
    let (data, _) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    assert_eq!(
        data.env.sessions, 3,
        "long, short and still-open, once each"
    );
    assert_eq!(data.env.protocols["ssh"].sessions, 2);
    assert_eq!(data.env.protocols["ssh"].bytes, 300 + 9);
    assert_eq!(data.env.bytes, 300 + 9 + 10);
    let html = html::render(&data, Lang::En);
    assert!(html.contains("id=\"total-sessions\"><b>3</b>"));
}

#[test]
fn vpn_pool_hosts_are_labelled_as_such_in_top_talkers_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    let mut cfg = config();
    // The fixture's busiest client, as if it were a remote user's address.
    cfg.site.vpn_pools = vec!["10.1.0.21/32".into()];
    let (data, _) = inputs::gather(dir.path(), &cfg, StoreSummary::default()).unwrap();
    assert_eq!(
        data.endpoint_label(Some("10.1.0.21"), Lang::Ja),
        "10.1.0.21 (VPN プール)"
    );
    assert_eq!(
        data.endpoint_label(Some("10.1.0.22"), Lang::En),
        "10.1.0.22 (internal)"
    );
    let ja = html::render(&data, Lang::Ja);
    let part = &ja[ja
        .find("通信量の多いホスト・ドメインと時間帯")
        .expect("3.5")..];
    assert!(part.contains("10.1.0.21 (VPN プール)"), "top talkers");
    let (plain, _) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    assert!(!html::render(&plain, Lang::Ja).contains("VPN プール"));
}

#[test]
fn the_phishing_mail_is_quoted_at_its_lure_passages() {
    // The fixture's phishing mail (HTML) says 「パスワード入力相違が繰り返されたため口座を凍結
    // しました。」 and shows the bank's real address as the text of a link elsewhere.
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    let (data, _) = inputs::gather(dir.path(), &config(), StoreSummary::default()).unwrap();
    let ja = html::render(&data, Lang::Ja);
    let quote = "<b>該当箇所:</b> 「パスワード入力相違が繰り返されたため口座を凍結しました。」(口座、凍結、パスワード)";
    assert!(ja.contains(quote), "no quote of the lure passage");
    assert!(
        ja.contains("(https://www.resonabank.co.jp/)</div>"),
        "the passage showing the deceptive link text is quoted with it as its term"
    );
    // Only in the phishing finding's details, once per passage.
    assert_eq!(ja.matches("該当箇所:").count(), 2);
    let en = html::render(&data, Lang::En);
    assert!(en.contains(
        "<b>Matching passage:</b> “パスワード入力相違が繰り返されたため口座を凍結しました。” (口座, 凍結, パスワード)"
    ));
}

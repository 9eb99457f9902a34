//! `yara_match`: a reconstructed file, mail or attachment matched a YARA rule (the
//! analyzer scans every stored object; `FileRef.yara` holds the rule names). Kept per
//! (client, server); one signal per matching file.
//!
//! Levels: the highest level any matched rule's metadata asks for (`kuroko_level`, then
//! `severity`; `FileRef.yara_level`, read by `kuroko_yara::levels`), else the catalog's
//! default (B). The level travels as the hit's metric (A = 5 … E = 1) because the
//! aggregate keeps the maximum metric, which is exactly "the highest level seen".

use super::Hit;
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use kuroko_model::SessionRecord;

/// Files quoted per session (the rest still count in the finding).
const MAX_FILES_QUOTED: usize = 4;
/// Rule names quoted per file.
const MAX_RULES_QUOTED: usize = 8;

pub fn check(_ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    let matched: Vec<_> = s.files.iter().filter(|f| !f.yara.is_empty()).collect();
    // An FTP control session: the files its data connections moved, with the verdict the
    // analyzer linked back (`ftp.files[].yara`). This is the session that names the file
    // (STOR/RETR) and the user, the one an analyst opens.
    let ftp: Vec<_> = s
        .ftp
        .iter()
        .flat_map(|x| &x.files)
        .filter(|f| !f.yara.is_empty())
        .collect();
    if matched.is_empty() && ftp.is_empty() {
        return;
    }
    let mut hit = Hit::pair(RuleId::YaraMatch, s);
    let mut rank = 0u64;
    for f in &matched {
        rank = rank.max(level_rank(f.yara_level.as_deref()));
    }
    for f in &ftp {
        rank = rank.max(level_rank(f.yara_level.as_deref()));
    }
    for f in ftp.iter().take(MAX_FILES_QUOTED) {
        let verb = if f.direction == "upload" {
            "STOR"
        } else {
            "RETR"
        };
        let rules: Vec<&str> = f
            .yara
            .iter()
            .take(MAX_RULES_QUOTED)
            .map(String::as_str)
            .collect();
        hit = hit.signal(encode(
            Msg::YaraFtpFileMatched,
            &[&verb, &f.name, &f.bytes, &rules.join(", ")],
        ));
    }
    for f in matched.iter().take(MAX_FILES_QUOTED) {
        let name = f
            .name
            .clone()
            .unwrap_or_else(|| format!("sha256:{}", &f.sha256[..f.sha256.len().min(16)]));
        let rules: Vec<&str> = f
            .yara
            .iter()
            .take(MAX_RULES_QUOTED)
            .map(String::as_str)
            .collect();
        hit = hit.signal(encode(
            Msg::YaraFileMatched,
            &[&name, &f.bytes, &f.kind, &rules.join(", ")],
        ));
    }
    if rank > 0 {
        hit.metric = Some(rank);
    }
    out.push(hit);
}

/// A = 5 … E = 1; 0 for no level.
fn level_rank(level: Option<&str>) -> u64 {
    match level.map(|l| l.trim().to_ascii_uppercase()).as_deref() {
        Some("A") => 5,
        Some("B") => 4,
        Some("C") => 3,
        Some("D") => 2,
        Some("E") => 1,
        _ => 0,
    }
}

/// (vulnerability, threat) for the highest level rank of a finding, so that
/// `Risk::from_levels` gives back that letter; `None` for rank 0 (use the default).
pub fn levels(rank: u64) -> Option<(u8, u8)> {
    match rank {
        5 => Some((3, 3)),
        4 => Some((2, 3)),
        3 => Some((2, 2)),
        2 => Some((1, 2)),
        1 => Some((1, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::finding::Risk;
    use kuroko_model::session::FileRef;

    #[test]
    fn each_level_rank_gives_back_its_risk_letter() {
        for (letter, risk) in [
            ("A", Risk::A),
            ("B", Risk::B),
            ("C", Risk::C),
            ("D", Risk::D),
            ("E", Risk::E),
        ] {
            let (v, t) = levels(level_rank(Some(letter))).unwrap();
            assert_eq!(Risk::from_levels(v, t), risk, "{letter}");
        }
        assert_eq!(levels(level_rank(None)), None);
    }

    #[test]
    fn fires_on_a_matched_file_only_with_its_rules_quoted() {
        let ctx = ctx();
        let mut s = session("http", "10.0.0.5", 40000, "203.0.113.7", 80);
        s.files.push(FileRef {
            sha256: "ab".repeat(32),
            name: Some("invoice.doc".into()),
            bytes: 1234,
            direction: "download".into(),
            kind: "http-body".into(),
            ..Default::default()
        });
        assert!(run(&ctx, &s).iter().all(|h| h.rule != RuleId::YaraMatch));
        s.files[0].yara = vec!["Evil_Doc".into()];
        s.files[0].yara_level = Some("A".into());
        let h: Vec<_> = run(&ctx, &s)
            .into_iter()
            .filter(|h| h.rule == RuleId::YaraMatch)
            .collect();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].metric, Some(5));
        assert_eq!(
            h[0].signals,
            vec!["file `invoice.doc` (1234 bytes, `http-body`) matched YARA rules `Evil_Doc`"]
        );
    }

    #[test]
    fn fires_on_an_ftp_control_session_naming_the_stor_or_retr_file() {
        use kuroko_model::session::{Ftp, FtpFile};
        let ctx = ctx();
        let mut s = session("ftp", "10.0.0.5", 40000, "203.0.113.7", 21);
        s.ftp = Some(Ftp {
            files: vec![
                FtpFile {
                    name: "tool.bin".into(),
                    direction: "download".into(),
                    bytes: 80_000,
                    sha256: Some("ab".repeat(32)),
                    ..Default::default()
                },
                FtpFile {
                    name: "notes.txt".into(),
                    direction: "upload".into(),
                    bytes: 10,
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        assert!(run(&ctx, &s).iter().all(|h| h.rule != RuleId::YaraMatch));
        s.ftp.as_mut().unwrap().files[0].yara = vec!["Dropper".into()];
        s.ftp.as_mut().unwrap().files[0].yara_level = Some("C".into());
        let h: Vec<_> = run(&ctx, &s)
            .into_iter()
            .filter(|h| h.rule == RuleId::YaraMatch)
            .collect();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].metric, Some(3));
        assert_eq!(
            h[0].signals,
            vec![
                "FTP RETR `tool.bin` (80000 bytes, moved over the data connection) matched YARA rules `Dropper`"
            ]
        );
    }
}

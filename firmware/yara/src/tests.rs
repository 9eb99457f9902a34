use super::*;
use std::io::Write as _;

fn rule_file(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

#[test]
fn compiles_scans_and_reads_metadata_through_the_4_2_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let f = rule_file(
        dir.path(),
        "a.yar",
        "rule Kuroko_Test_Marker {\n meta:\n  author = \"x\"\n  score = 3\n  kuroko_level = \"A\"\n strings:\n  $a = \"KUROKO-YARA-MARKER\"\n condition:\n  $a\n}\nrule Other { meta: severity = \"low\" condition: filesize == 3 }\n",
    );
    let rules = compile(std::slice::from_ref(&f)).unwrap();
    let m = rules.scan(b"xx KUROKO-YARA-MARKER yy", 5).unwrap();
    assert_eq!(
        m,
        vec![Match {
            rule: "Kuroko_Test_Marker".into(),
            level: Some('A')
        }]
    );
    let m = rules.scan(b"abc", 5).unwrap();
    assert_eq!(m[0].rule, "Other");
    assert_eq!(m[0].level, Some('D'));
    assert!(rules.scan(b"nothing here", 5).unwrap().is_empty());
    assert_eq!(rules.names(), vec!["Kuroko_Test_Marker", "Other"]);
}

#[test]
fn a_broken_rule_file_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = rule_file(dir.path(), "good.yar", "rule Good { condition: true }\n");
    let bad = rule_file(
        dir.path(),
        "bad.yar",
        "rule Fine { condition: true }\n\nrule Broken {\n strings: $a = \"x\"\n condition: $b }\n",
    );
    let err = compile(&[good, bad.clone()]).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(err.0[0].file, bad);
    assert_eq!(err.0[0].line, 5, "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("{}:5:", bad.display())), "{text}");
    assert!(text.contains("$b"), "{text}");
}

#[test]
fn scanner_keeps_the_last_good_set_when_a_change_breaks_it() {
    let dir = tempfile::tempdir().unwrap();
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).unwrap();
    let f = rule_file(
        &rules_dir,
        "r.yar",
        "rule M { strings: $a = \"MARK\" condition: $a }\n",
    );
    let data = dir.path().join("data");
    let mut s = Scanner::new(
        vec![rules_dir.clone()],
        Some(data.clone()),
        Limits::default(),
    );
    assert!(s.has_rules());
    assert!(
        matches!(s.scan("aa", b"MARK"), Outcome::Scanned { ref matches, .. } if matches.len() == 1)
    );
    // Broken: the old set stays in force and the state says why.
    std::fs::write(&f, "rule M { strings: $a = \"MARK\" condition: $zz }\n").unwrap();
    assert!(!s.reload());
    assert!(s.has_rules());
    let st = scanner::read_state(&data).unwrap();
    assert!(st.error.as_deref().unwrap().contains("r.yar:1:"), "{st:?}");
    assert_eq!(st.files, vec![f.clone()]);
    // A pack's rules join the set.
    let pack = data.join("intel/feodo/yara");
    std::fs::create_dir_all(&pack).unwrap();
    rule_file(
        &pack,
        "p.yara",
        "rule P { strings: $a = \"PACK\" condition: $a }\n",
    );
    std::fs::write(&f, "rule M { strings: $a = \"MARK\" condition: $a }\n").unwrap();
    assert!(s.reload());
    assert!(
        matches!(s.scan("bb", b"PACK MARK"), Outcome::Scanned { ref matches, .. } if matches.len() == 2)
    );
    assert_eq!(scanner::read_state(&data).unwrap().error, None);
    // Limits are counted by the caller from the outcome.
    let mut small = Scanner::new(
        vec![rules_dir],
        None,
        Limits {
            max_bytes: 3,
            timeout_secs: 1,
        },
    );
    assert_eq!(small.scan("cc", b"MARK"), Outcome::TooLarge);
}

//! The USB export: the bundle verifies (also with `sha256sum -c`), one corrupted byte on the
//! "stick" is detected, a target without the space is refused before anything is written,
//! the files zip opens with `unzip -P infected`, and an encrypted bundle decrypts with the
//! Debian `age` CLI.

mod common;

use kuroko_model::config::Config;
use kuroko_report::data::StoreSummary;
use kuroko_report::export::{self, ExportRequest};
use kuroko_report::{ReportData, inputs, pdf};
use std::path::{Path, PathBuf};
use std::process::Command;

fn need_tool(name: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "this test needs `{name}` (Debian package listed in .ci/packages.txt); install it"
    );
}

fn fixture() -> (tempfile::TempDir, ReportData) {
    let dir = tempfile::tempdir().unwrap();
    common::build(dir.path());
    // One finding has its evidence pcap stored by detections.
    std::fs::create_dir_all(dir.path().join("evidence")).unwrap();
    // Its manifest has committed 19 bytes: the tail after them is an append that a crash
    // interrupted, and must not leave the box.
    std::fs::write(
        dir.path().join("evidence/f-telnet.pcap"),
        b"\xd4\xc3\xb2\xa1stored-evidenceTORN-TAIL",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("evidence/manifest.json"),
        r#"{"format":1,"files":{"f-telnet":{"len":19,"sessions":["ev-telnet-1"]}}}"#,
    )
    .unwrap();
    let mut c = Config::default();
    c.site.name = "Tokyo HQ".into();
    c.site.customer = "株式会社サンプル".into();
    let (data, _) = inputs::gather(dir.path(), &c, StoreSummary::default()).unwrap();
    (dir, data)
}

fn request<'a>(
    data: &'a ReportData,
    data_dir: &'a Path,
    to: &'a Path,
    font: &'a Path,
    recipient: Option<&'a str>,
    pcaps: &'a export::PcapExtractor<'a>,
) -> ExportRequest<'a> {
    ExportRequest {
        report: data,
        data_dir,
        to,
        font,
        recipient,
        pcaps,
        damaged_slots: &[],
        progress: false,
        now: common::ts(86_400),
    }
}

fn extractor(
    f: &kuroko_report::GradedFinding,
    source: export::PcapSource,
) -> Result<export::EvidencePcap, String> {
    // Stands in for the store's pcap export: one pcap per finding that still has sessions.
    let cut = source == export::PcapSource::Store && f.finding.id != "f-missing";
    Ok(export::EvidencePcap {
        pcap: cut.then(|| format!("pcap-of-{}", f.finding.id).into_bytes()),
        damage: Vec::new(),
    })
}

#[test]
fn bundle_verifies_and_detects_one_corrupted_byte() {
    need_tool("sha256sum");
    need_tool("unzip");
    let (dir, data) = fixture();
    let stick = tempfile::tempdir().unwrap();
    let font = pdf::find_font(None).expect("fonts-ipaexfont-gothic must be installed");
    let sum = export::export(&request(
        &data,
        dir.path(),
        stick.path(),
        &font,
        None,
        &extractor,
    ))
    .unwrap();
    assert!(
        sum.bundle
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("kuroko-tokyo-hq-20261119T000000Z")
    );
    assert_eq!(sum.findings_without_pcap, 1);
    // Only the final directory is left: no .partial.
    let names: Vec<String> = std::fs::read_dir(stick.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let b = &sum.bundle;
    for f in [
        "README.txt",
        "report/report-ja.html",
        "report/report-en.html",
        "report/report-ja.pdf",
        "report/report-en.pdf",
        "findings/findings.jsonl",
        "findings/findings.csv",
        "sessions/evidence-sessions.jsonl",
        "sessions/evidence-sessions.csv",
        "files/reconstructed-files.zip",
        "files/reconstructed-files.csv",
        "MANIFEST.sha256",
    ] {
        assert!(b.join(f).is_file(), "missing {f}");
    }
    // The stored pcap is copied, the others come from the extractor.
    let pcaps: Vec<PathBuf> = std::fs::read_dir(b.join("pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pcaps.len(), 5);
    let telnet = pcaps
        .iter()
        .find(|p| p.to_string_lossy().ends_with("f-telnet.pcap"))
        .unwrap();
    assert_eq!(
        std::fs::read(telnet).unwrap(),
        b"\xd4\xc3\xb2\xa1stored-evidence"
    );
    // Findings JSONL round-trips and matches the report's grades.
    let text = std::fs::read_to_string(b.join("findings/findings.jsonl")).unwrap();
    let back: Vec<kuroko_model::Finding> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back.len(), data.findings.len());
    assert_eq!(back[0].risk, kuroko_model::Risk::A);
    assert!(
        std::fs::read(b.join("report/report-ja.pdf"))
            .unwrap()
            .starts_with(b"%PDF")
    );

    // Verifies with our verifier and with sha256sum.
    assert!(export::verify_bundle(b).unwrap().is_empty());
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg("--quiet")
        .arg("MANIFEST.sha256")
        .current_dir(b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The zip is encrypted: no password, no content; with `infected`, the malware sample.
    let zip = b.join("files/reconstructed-files.zip");
    let out = Command::new("unzip")
        .args(["-P", "wrong", "-p"])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pretends to be an executable"));
    let out = Command::new("unzip")
        .args(["-P", "infected", "-p"])
        .arg(&zip)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout
            .windows(common::MALWARE.len())
            .any(|w| w == common::MALWARE)
    );
    // Raw bytes of the sample never appear in the zip in clear.
    let raw = std::fs::read(&zip).unwrap();
    assert!(!raw.windows(20).any(|w| w == &common::MALWARE[..20]));

    // One flipped byte on the stick is detected.
    let victim = b.join("sessions/evidence-sessions.csv");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let problems = export::verify_bundle(b).unwrap();
    assert_eq!(
        problems.mismatched,
        vec!["sessions/evidence-sessions.csv".to_string()]
    );
    // A file slipped in afterwards is reported too.
    std::fs::write(b.join("report/extra.html"), "x").unwrap();
    assert_eq!(
        export::verify_bundle(b).unwrap().unlisted,
        vec!["report/extra.html".to_string()]
    );
}

#[test]
fn incomplete_bundles_never_look_whole() {
    let d = tempfile::tempdir().unwrap();
    let partial = d.path().join("kuroko-x-20261119T000000Z.partial");
    std::fs::create_dir_all(partial.join("report")).unwrap();
    std::fs::write(partial.join("report/report-ja.html"), "half").unwrap();
    let e = export::verify_bundle(&partial).unwrap_err().to_string();
    assert!(e.contains("incomplete"), "{e}");
    let no_manifest = d.path().join("kuroko-y");
    std::fs::create_dir_all(&no_manifest).unwrap();
    let e = export::verify_bundle(&no_manifest).unwrap_err().to_string();
    assert!(
        e.contains("MANIFEST.sha256") && e.contains("incomplete"),
        "{e}"
    );
}

/// A 1 MiB tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);
impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_target_is_refused_before_anything_is_written() {
    need_tool("mount");
    let (dir, data) = fixture();
    let mnt = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "kuroko-report-test"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "mounting a tmpfs needs root (CI runs as root): mount -t tmpfs failed"
    );
    let guard = Tmpfs(mnt.path().to_path_buf());
    let font = pdf::find_font(None).expect("fonts-ipaexfont-gothic must be installed");
    let e = export::export(&request(
        &data,
        dir.path(),
        mnt.path(),
        &font,
        None,
        &extractor,
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("not enough space") && e.contains("nothing was written"),
        "{e}"
    );
    assert_eq!(
        std::fs::read_dir(mnt.path()).unwrap().count(),
        0,
        "something was written"
    );
    drop(guard);
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle)
            {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_failed_export_leaves_nothing_readable_on_the_stick() {
    need_tool("mount");
    let (dir, data) = fixture();
    let mnt = tempfile::tempdir().unwrap();
    // Room enough for the space check, but only a few inodes: the stick "fills up" midway.
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64m,nr_inodes=6",
            "kuroko-report-full",
        ])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(
        st.success(),
        "mounting a tmpfs needs root (CI runs as root): mount -t tmpfs failed"
    );
    let guard = Tmpfs(mnt.path().to_path_buf());
    let font = pdf::find_font(None).expect("fonts-ipaexfont-gothic must be installed");
    let e = export::export(&request(
        &data,
        dir.path(),
        mnt.path(),
        &font,
        None,
        &extractor,
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("removed"), "{e}");
    for known in [
        "株式会社サンプル".as_bytes(),
        b"stored-evidence",
        b"Tokyo HQ",
    ] {
        let found = files_containing(mnt.path(), known);
        assert!(
            found.is_empty(),
            "{} left on the stick in clear: {found:?}",
            String::from_utf8_lossy(known)
        );
    }
    assert_eq!(
        std::fs::read_dir(mnt.path()).unwrap().count(),
        0,
        "a .partial stayed"
    );
    drop(guard);
}

#[test]
fn encrypted_bundle_decrypts_with_the_age_cli() {
    need_tool("age");
    need_tool("age-keygen");
    need_tool("tar");
    need_tool("sha256sum");
    let (dir, data) = fixture();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    assert!(
        Command::new("age-keygen")
            .arg("-o")
            .arg(&key)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let stick = tempfile::tempdir().unwrap();
    let font = pdf::find_font(None).unwrap();
    let sum = export::export(&request(
        &data,
        dir.path(),
        stick.path(),
        &font,
        Some(&recipient),
        &extractor,
    ))
    .unwrap();
    assert!(sum.encrypted);
    let b = &sum.bundle;
    let mut names: Vec<String> = std::fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["MANIFEST.sha256", "README.txt", "bundle.tar.age"]);
    assert!(export::verify_bundle(b).unwrap().is_empty());
    // Nothing readable: the customer name is not in the ciphertext.
    let ct = std::fs::read(b.join("bundle.tar.age")).unwrap();
    assert!(ct.starts_with(b"age-encryption.org/v1"));
    assert!(
        !ct.windows("株式会社サンプル".len())
            .any(|w| w == "株式会社サンプル".as_bytes())
    );

    let out_dir = tempfile::tempdir().unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' | tar x -C '{}'",
            key.display(),
            b.join("bundle.tar.age").display(),
            out_dir.path().display()
        ))
        .status()
        .unwrap();
    assert!(st.success(), "age -d | tar x failed");
    assert!(out_dir.path().join("report/report-ja.html").is_file());
    let out = Command::new("sha256sum")
        .args(["-c", "--quiet", "MANIFEST.sha256"])
        .current_dir(out_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inner manifest: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let html = std::fs::read_to_string(out_dir.path().join("report/report-ja.html")).unwrap();
    assert!(html.contains("株式会社サンプル"));

    // A bad key is refused with a message saying what a key looks like.
    let e = export::export(&request(
        &data,
        dir.path(),
        stick.path(),
        &font,
        Some("ssh-rsa AAAA"),
        &extractor,
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("age1"), "{e}");
}

/// Store damage the extractor reports for `f-telnet` (kept copy) and `f-missing` (nothing
/// left): segment seq 7, a failed fdatasync, 2 damaged places.
fn damaged_extractor(
    f: &kuroko_report::GradedFinding,
    source: export::PcapSource,
) -> Result<export::EvidencePcap, String> {
    let mut e = extractor(f, source)?;
    if ["f-telnet", "f-missing"].contains(&f.finding.id.as_str()) {
        e.damage.push(export::StoreDamage {
            file: "/data/segments/seg-00007.kseg".into(),
            seq: 7,
            first: common::ts(100),
            last: common::ts(200),
            write_error: true,
            damaged_places: 2,
            packets_lost: 5,
        });
    }
    Ok(e)
}

/// Issue 22: store damage in a finding's evidence time range is listed in the bundle's
/// README next to the pcap it concerns (or as "no pcap" when nothing was left), in English
/// and Japanese, and the summary is partial (the command exits 3). Beside an encrypted
/// bundle the clear README only counts the pcaps concerned: no segment, no finding id.
#[test]
fn store_damage_is_listed_in_the_readme_and_only_counted_in_clear() {
    need_tool("age-keygen");
    let (dir, data) = fixture();
    let stick = tempfile::tempdir().unwrap();
    let font = pdf::find_font(None).unwrap();
    let slots = [3u32];
    let mut req = request(
        &data,
        dir.path(),
        stick.path(),
        &font,
        None,
        &damaged_extractor,
    );
    req.damaged_slots = &slots;
    let sum = export::export(&req).unwrap();
    assert!(sum.is_partial());
    assert_eq!(sum.evidence_damage.len(), 2, "{:?}", sum.evidence_damage);
    let readme = std::fs::read_to_string(sum.bundle.join("README.txt")).unwrap();
    for must in [
        "Store damage / 保存データの損傷",
        "-f-telnet.pcap  (finding",
        "(no pcap / pcap なし)  (finding",
        "/data/segments/seg-00007.kseg (segment seq 7,",
        "2 damaged place(s), 5 packets lost; the disk failed a write or fdatasync",
        "損傷箇所 2、失われたパケット 5",
        "Slots [3] of the store have an unreadable header",
    ] {
        assert!(readme.contains(must), "README lacks `{must}`:\n{readme}");
    }
    assert!(export::verify_bundle(&sum.bundle).unwrap().is_empty());
    // A sound store: nothing said, not partial.
    let clean = export::export(&request(
        &data,
        dir.path(),
        tempfile::tempdir().unwrap().path(),
        &font,
        None,
        &extractor,
    ))
    .unwrap();
    assert!(!clean.is_partial());

    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("key.txt");
    assert!(
        Command::new("age-keygen")
            .arg("-o")
            .arg(&key)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let stick = tempfile::tempdir().unwrap();
    let mut req = request(
        &data,
        dir.path(),
        stick.path(),
        &font,
        Some(&recipient),
        &damaged_extractor,
    );
    req.damaged_slots = &slots;
    let sum = export::export(&req).unwrap();
    assert!(sum.is_partial());
    let outer = std::fs::read_to_string(sum.bundle.join("README.txt")).unwrap();
    assert!(
        outer.contains("2 evidence pcap(s) may lack packets"),
        "{outer}"
    );
    for never in ["seg-00007", "f-telnet", "f-missing"] {
        assert!(!outer.contains(never), "`{never}` in clear:\n{outer}");
    }
}

//! The findings bundle for a USB stick.
//!
//! Layout of `kuroko-<site>-<UTC time>/`:
//!
//! ```text
//! README.txt                          what is inside, the zip password, how to verify
//! report/report-ja.html  report-en.html  report-ja.pdf  report-en.pdf
//! findings/findings.jsonl  findings.csv
//! sessions/evidence-sessions.jsonl  evidence-sessions.csv
//! pcap/<finding>.pcap                 the packets of each finding's evidence sessions
//! files/reconstructed-files.zip       ZipCrypto, password `infected` (see `zipfiles`)
//! files/reconstructed-files.csv       SHA-256, name, type, size, session of each object
//! MANIFEST.sha256                     `sha256sum -c` format, written last
//! ```
//!
//! With a recipient (an age X25519 public key) the same tree goes into one
//! `bundle.tar.age` beside a plain `README.txt` and the outer `MANIFEST.sha256`; nothing
//! of the customer's data is ever written to the stick in clear. Decrypt with the `age`
//! CLI: `age -d -i key.txt bundle.tar.age | tar x`.
//!
//! Crash safety: the free space is checked before anything is written; the bundle is
//! written under `<name>.partial/`, every file and directory is fsynced, the manifest is
//! written last, the files are re-read (after dropping them from the page cache) and
//! checked against it, and only then is the directory renamed to its final name. A stick
//! pulled mid-write leaves a `.partial` directory without a valid manifest: visibly
//! incomplete, never one that looks whole. An export that fails (stick full, I/O error)
//! removes its `.partial` before it reports the error. `kuroko export` requires the
//! recipient (set in `kuroko setup` with `set recipient`); a bundle in clear needs its
//! explicit `--plaintext` flag.
//!
//! Damage is never silent: for every finding the caller says which damaged store data its
//! evidence sessions' time range touches ([`EvidencePcap::damage`]: damaged blocks, segments
//! whose write or fdatasync the disk failed) and which slots are unreadable
//! ([`ExportRequest::damaged_slots`], times unknown). The README inside the bundle lists
//! them under "Store damage / 保存データの損傷", next to the pcap each concerns; the clear
//! README beside an encrypted bundle says only how many pcaps are concerned. The summary
//! carries them ([`ExportSummary::is_partial`]) so that `kuroko export` names them on
//! stderr and exits 3, as `kuroko pcap` does.

pub mod flowmatch;
pub mod manifest;
pub mod progress;
pub mod records;
pub mod space;
pub mod usb;
pub mod zipfiles;

use crate::data::{GradedFinding, ReportData};
use crate::error::ReportError;
use crate::objects::ObjectStore;
use kuroko_model::Timestamp;
use kuroko_model::finding::Lang;
use manifest::MANIFEST_NAME;
use progress::Progress;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use zipfiles::ZipEntry;

/// Where a bundle file's bytes come from.
pub enum Payload {
    Bytes(Vec<u8>),
    File(PathBuf),
    Zip(Vec<ZipEntry>),
}

struct Item {
    rel: String,
    payload: Payload,
    size: u64,
}

/// Where a finding's evidence pcap comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcapSource {
    /// The copy detections kept (`DIR/evidence/<id>.pcap`) goes into the bundle: the
    /// extractor only says what store damage lies in the evidence sessions' time range
    /// (the copy was cut from that data).
    Kept,
    /// No copy was kept: the extractor cuts the packets out of the segment store.
    Store,
}

/// Damaged store data in the time range of a finding's evidence sessions (one segment).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreDamage {
    /// The segment file on the appliance.
    pub file: String,
    pub seq: u64,
    /// The segment's packet times.
    pub first: Timestamp,
    pub last: Timestamp,
    /// The disk failed a write or fdatasync of the segment: blocks may be missing and what
    /// read back may not have survived a power cut.
    pub write_error: bool,
    /// Damaged blocks or places (checksums that fail, no valid block header).
    pub damaged_places: u64,
    /// Packets lost there, where the places say.
    pub packets_lost: u64,
}

impl StoreDamage {
    /// One line in `lang` (the README carries both).
    pub fn describe(&self, d: &ReportData, lang: Lang) -> String {
        let mut what = Vec::new();
        if self.damaged_places > 0 {
            what.push(match (lang, self.packets_lost) {
                (Lang::Ja, 0) => format!("損傷箇所 {}", self.damaged_places),
                (Lang::Ja, n) => format!("損傷箇所 {}、失われたパケット {n}", self.damaged_places),
                (Lang::En, 0) => format!("{} damaged place(s)", self.damaged_places),
                (Lang::En, n) => {
                    format!("{} damaged place(s), {n} packets lost", self.damaged_places)
                }
            });
        }
        if self.write_error {
            what.push(match lang {
                Lang::Ja => "ディスクの書込み/fdatasync が失敗 (電源断で失われる可能性)".into(),
                Lang::En => "the disk failed a write or fdatasync of it (its packets may not survive a power cut)".into(),
            });
        }
        let (seg, sep) = match lang {
            Lang::Ja => ("セグメント seq", "、"),
            Lang::En => ("segment seq", "; "),
        };
        format!(
            "{} ({seg} {}, {} .. {}): {}",
            self.file,
            self.seq,
            d.local_time(self.first),
            d.local_time(self.last),
            what.join(sep)
        )
    }
}

/// A finding's evidence packets as the store gave them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvidencePcap {
    /// The packets ([`PcapSource::Store`]); `None` when there are none, and always for
    /// [`PcapSource::Kept`].
    pub pcap: Option<Vec<u8>>,
    /// Damaged store data in the evidence sessions' time range: the pcap may lack packets.
    pub damage: Vec<StoreDamage>,
}

/// The packets of a finding's evidence sessions and the store damage in their time range
/// (see [`PcapSource`]).
pub type PcapExtractor<'a> =
    dyn Fn(&GradedFinding, PcapSource) -> Result<EvidencePcap, String> + 'a;

/// A finding whose evidence touches damaged store data.
#[derive(Clone, Debug, PartialEq)]
pub struct EvidenceDamage {
    /// The finding's number in the report, and its id.
    pub no: usize,
    pub finding: String,
    /// The pcap in the bundle (`pcap/001-….pcap`); `None` when no packet was left.
    pub pcap: Option<String>,
    pub damage: Vec<StoreDamage>,
}

pub struct ExportRequest<'a> {
    pub report: &'a ReportData,
    pub data_dir: &'a Path,
    /// The mount point (or any directory) the bundle goes into.
    pub to: &'a Path,
    /// Japanese font for the PDFs.
    pub font: &'a Path,
    /// age X25519 public key (`age1…`) to encrypt the whole bundle to.
    pub recipient: Option<&'a str>,
    pub pcaps: &'a PcapExtractor<'a>,
    /// Slots of the store whose header cannot be read: their times are unknown, so any
    /// evidence pcap may lack packets they held.
    pub damaged_slots: &'a [u32],
    pub progress: bool,
    pub now: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    pub bundle: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub encrypted: bool,
    /// Findings without any evidence pcap (nothing stored any more).
    pub findings_without_pcap: usize,
    /// Findings whose evidence touches damaged store data (in the README too).
    pub evidence_damage: Vec<EvidenceDamage>,
    /// Unreadable slots of the store (in the README too).
    pub damaged_slots: Vec<u32>,
}

impl ExportSummary {
    /// Whether an evidence pcap may lack packets lost to damage, or hold packets of a
    /// segment the disk failed to write: `kuroko export` exits 3 then.
    pub fn is_partial(&self) -> bool {
        !self.evidence_damage.is_empty() || !self.damaged_slots.is_empty()
    }
}

fn ioerr(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// `kuroko-<site>-<20261118T093000Z>`: ASCII letters, digits and `-` only.
pub fn bundle_name(site: &str, now: Timestamp) -> String {
    let mut slug: String = site
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while slug.contains("--") {
        slug = slug.replace("--", "-");
    }
    let slug = slug.trim_matches('-');
    let slug = if slug.is_empty() { "site" } else { slug };
    let slug: String = slug.chars().take(40).collect();
    format!(
        "kuroko-{slug}-{}",
        now.to_datetime().format("%Y%m%dT%H%M%SZ")
    )
}

fn safe_file_stem(id: &str) -> String {
    zipfiles::safe_name(id)
}

/// What the README says about store damage (see the module docs).
struct DamageNote<'a> {
    evidence: &'a [EvidenceDamage],
    slots: &'a [u32],
}

fn readme(d: &ReportData, encrypted: bool, damage: &DamageNote<'_>) -> String {
    let mut s = String::new();
    s.push_str("Kuroko findings bundle / Kuroko 検出脅威エクスポート\n");
    s.push_str("================================================\n\n");
    s.push_str(&format!(
        "Customer / お客様: {}\nSite / 診断対象: {}\nGenerated / 作成: {}\n\n",
        d.customer, d.site_name, d.generated
    ));
    if encrypted {
        s.push_str("The bundle is encrypted to the consultant's age key. Decrypt with:\n");
        s.push_str("本バンドルはコンサルタントの age 公開鍵で暗号化されています。復号方法:\n\n");
        s.push_str("    age -d -i key.txt bundle.tar.age | tar x\n\n");
    }
    s.push_str("report/    diagnosis report, HTML and PDF, Japanese and English / 診断レポート (HTML・PDF、日本語・英語)\n");
    s.push_str("findings/  findings as JSONL and CSV / 検出脅威 (JSONL・CSV)\n");
    s.push_str("sessions/  evidence sessions as JSONL and CSV / 証跡セッション (JSONL・CSV)\n");
    s.push_str("pcap/      packets of each finding's evidence sessions / 脅威ごとの証跡パケット\n");
    s.push_str("files/     reconstructed files in a zip, password: infected / 再構築ファイル (ZIP パスワード: infected)\n\n");
    s.push_str("The reconstructed files may be malicious: open them only in an isolated analysis environment.\n");
    s.push_str("再構築ファイルはマルウェアの可能性があります。隔離された解析環境でのみ展開してください。\n\n");
    s.push_str("Check the bundle / 改ざん・破損の確認:  sha256sum -c MANIFEST.sha256   (or: kuroko export --verify DIR)\n");
    if !damage.evidence.is_empty() || !damage.slots.is_empty() {
        s.push_str("\nStore damage / 保存データの損傷\n------------------------------\n");
        if damage.evidence.is_empty() {
            // Only unreadable slots (below).
        } else if encrypted {
            // Nothing of the customer's data in clear: how many, not which.
            s.push_str(&format!(
                "{} evidence pcap(s) may lack packets (damaged store data on the appliance); README.txt inside the encrypted bundle names them.\n",
                damage.evidence.len()
            ));
            s.push_str(&format!(
                "証跡 pcap {} 件にパケットの欠けの可能性があります (機器の保存データの損傷)。詳細は暗号化バンドル内の README.txt に記載しています。\n",
                damage.evidence.len()
            ));
        } else {
            s.push_str("The appliance's packet store is damaged in the time range of these findings' evidence sessions: their pcaps may lack packets, and packets of a segment whose write or fdatasync the disk failed may not be on the appliance's disk any more after a power cut. `kuroko status` and kuroko-inspect on the appliance show the damage.\n");
            s.push_str("以下の検出脅威の証跡セッションの時間帯に、機器の保存データの損傷があります。証跡 pcap のパケットが欠けている可能性があります。書込み/fdatasync が失敗したセグメントのパケットは、電源断の後には機器のディスクに残っていない可能性があります。機器の kuroko status と kuroko-inspect で確認できます。\n\n");
            for e in damage.evidence {
                let pcap = e.pcap.as_deref().unwrap_or("(no pcap / pcap なし)");
                s.push_str(&format!(
                    "{pcap}  (finding {} / 検出脅威 {}: {})\n",
                    e.no, e.no, e.finding
                ));
                for g in &e.damage {
                    s.push_str(&format!("  - {}\n", g.describe(d, Lang::En)));
                    s.push_str(&format!("    {}\n", g.describe(d, Lang::Ja)));
                }
            }
        }
        if !damage.slots.is_empty() {
            s.push_str(&format!(
                "Slots {:?} of the store have an unreadable header: their times are unknown, so any evidence pcap may lack packets they held.\n",
                damage.slots
            ));
            s.push_str(&format!(
                "保存領域のスロット {:?} はヘッダを読めません (時刻不明): どの証跡 pcap にも、これらのスロットにあったパケットが欠けている可能性があります。\n",
                damage.slots
            ));
        }
    }
    s
}

/// Objects of the evidence sessions that are present in `files/`, plus their index CSV.
fn object_entries(
    d: &ReportData,
    objects: &ObjectStore,
) -> Result<(Vec<ZipEntry>, Vec<u8>), ReportError> {
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::new();
    let mut w = csv::Writer::from_writer(Vec::new());
    let cerr = |e: csv::Error| ReportError::Export(format!("cannot write CSV: {e}"));
    w.write_record([
        "sha256",
        "name_in_zip",
        "original_name",
        "content_type",
        "bytes",
        "kind",
        "direction",
        "session",
    ])
    .map_err(cerr)?;
    let mut add = |sha: &str,
                   name: Option<&str>,
                   ctype: Option<&str>,
                   kind: &str,
                   direction: &str,
                   session: &str,
                   w: &mut csv::Writer<Vec<u8>>|
     -> Result<(), ReportError> {
        let Some(path) = objects.content_path(sha) else {
            return Ok(());
        };
        if !seen.insert(sha.to_ascii_lowercase()) {
            return Ok(());
        }
        let bytes = std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|source| ReportError::Read {
                path: path.clone(),
                source,
            })?;
        let ext = if path.extension().is_some_and(|e| e == "eml") {
            ".eml"
        } else {
            ".bin"
        };
        let base = zipfiles::safe_name(name.unwrap_or(kind));
        // `.bin` / `.eml` last, so nothing opens on a double click even after unzipping;
        // not doubled when the name already ends so.
        let ext = if base.ends_with(ext) { "" } else { ext };
        let zip_name = format!("{}_{base}{ext}", &sha[..16.min(sha.len())]);
        let row = [
            sha,
            &zip_name,
            name.unwrap_or(""),
            ctype.unwrap_or(""),
            &bytes.to_string(),
            kind,
            direction,
            session,
        ];
        w.write_record(row.iter().map(|s| records::defuse_cell(s)))
            .map_err(|e| ReportError::Export(format!("cannot write CSV: {e}")))?;
        entries.push(ZipEntry {
            name: zip_name,
            source: path,
            bytes,
        });
        Ok(())
    };
    for s in d.evidence.values() {
        for f in &s.files {
            add(
                &f.sha256,
                f.name.as_deref(),
                f.content_type.as_deref(),
                &f.kind,
                &f.direction,
                &s.id,
                &mut w,
            )?;
        }
        if let Some(m) = &s.mail {
            for sha in m
                .eml_sha256
                .iter()
                .chain(m.messages.iter().filter_map(|x| x.eml_sha256.as_ref()))
            {
                add(
                    sha,
                    Some("mail.eml"),
                    Some("message/rfc822"),
                    "mail",
                    "",
                    &s.id,
                    &mut w,
                )?;
            }
            for a in m
                .attachments
                .iter()
                .chain(m.messages.iter().flat_map(|x| x.attachments.iter()))
            {
                if let Some(sha) = &a.sha256 {
                    add(
                        sha,
                        Some(&a.name),
                        a.content_type.as_deref(),
                        "attachment",
                        "",
                        &s.id,
                        &mut w,
                    )?;
                }
            }
        }
    }
    Ok((
        entries,
        w.into_inner()
            .map_err(|e| ReportError::Export(format!("cannot write CSV: {e}")))?,
    ))
}

/// What [`plan`] found.
struct Plan {
    items: Vec<Item>,
    without_pcap: usize,
    damage: Vec<EvidenceDamage>,
}

fn plan(req: &ExportRequest<'_>) -> Result<Plan, ReportError> {
    let d = req.report;
    let mut items = Vec::new();
    fn bytes_item(rel: &str, bytes: Vec<u8>) -> Item {
        Item {
            rel: rel.to_string(),
            size: bytes.len() as u64,
            payload: Payload::Bytes(bytes),
        }
    }
    let push =
        |items: &mut Vec<Item>, rel: &str, bytes: Vec<u8>| items.push(bytes_item(rel, bytes));
    for (lang, code) in [(Lang::Ja, "ja"), (Lang::En, "en")] {
        push(
            &mut items,
            &format!("report/report-{code}.html"),
            crate::html::render(d, lang).into_bytes(),
        );
        push(
            &mut items,
            &format!("report/report-{code}.pdf"),
            crate::pdf::render(d, lang, req.font)?,
        );
    }
    push(
        &mut items,
        "findings/findings.jsonl",
        records::findings_jsonl(d)?,
    );
    push(
        &mut items,
        "findings/findings.csv",
        records::findings_csv(d, Lang::Ja)?,
    );
    push(
        &mut items,
        "sessions/evidence-sessions.jsonl",
        records::sessions_jsonl(d)?,
    );
    push(
        &mut items,
        "sessions/evidence-sessions.csv",
        records::sessions_csv(d)?,
    );
    let mut without_pcap = 0;
    let mut damage = Vec::new();
    let committed = evidence_committed_lengths(req.data_dir);
    for f in &d.findings {
        let stem = safe_file_stem(&f.finding.id);
        let stored = req
            .data_dir
            .join("evidence")
            .join(format!("{}.pcap", f.finding.id));
        let rel = format!("pcap/{:03}-{stem}.pcap", f.no);
        let kept = f.finding.id == stem && stored.is_file();
        let source = if kept {
            PcapSource::Kept
        } else {
            PcapSource::Store
        };
        let got = (req.pcaps)(f, source).map_err(|m| {
            ReportError::Export(format!(
                "cannot extract the evidence packets of finding {}: {m}",
                f.finding.id
            ))
        })?;
        let mut in_bundle = None;
        if kept {
            let on_disk = std::fs::metadata(&stored)
                .map_err(|source| ReportError::Read {
                    path: stored.clone(),
                    source,
                })?
                .len();
            // Only the part the evidence manifest has committed: a tail past it is an
            // append interrupted by a crash, cut back on the next evidence run.
            let size = committed
                .get(&f.finding.id)
                .copied()
                .map_or(on_disk, |c| c.min(on_disk));
            items.push(Item {
                rel: rel.clone(),
                payload: Payload::File(stored),
                size,
            });
            in_bundle = Some(rel);
        } else if let Some(bytes) = got.pcap {
            push(&mut items, &rel, bytes);
            in_bundle = Some(rel);
        } else {
            without_pcap += 1;
        }
        if !got.damage.is_empty() {
            damage.push(EvidenceDamage {
                no: f.no,
                finding: f.finding.id.clone(),
                pcap: in_bundle,
                damage: got.damage,
            });
        }
    }
    let (entries, index) = object_entries(d, &ObjectStore::new(req.data_dir))?;
    push(&mut items, "files/reconstructed-files.csv", index);
    if !entries.is_empty() {
        let size = zipfiles::size_bound(&entries);
        items.push(Item {
            rel: "files/reconstructed-files.zip".into(),
            payload: Payload::Zip(entries),
            size,
        });
    }
    let note = DamageNote {
        evidence: &damage,
        slots: req.damaged_slots,
    };
    items.insert(
        0,
        bytes_item("README.txt", readme(d, false, &note).into_bytes()),
    );
    Ok(Plan {
        items,
        without_pcap,
        damage,
    })
}

/// Committed lengths of `DIR/evidence/<id>.pcap` from the evidence area's `manifest.json`
/// (`{"files": {"<id>": {"len": N, …}}}`); empty when there is none or it is unreadable.
fn evidence_committed_lengths(data_dir: &Path) -> std::collections::HashMap<String, u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(text) = std::fs::read_to_string(data_dir.join("evidence").join("manifest.json")) else {
        return out;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return out;
    };
    if let Some(files) = v.get("files").and_then(|f| f.as_object()) {
        for (k, e) in files {
            if let Some(len) = e.get("len").and_then(|l| l.as_u64()) {
                let id = k.strip_suffix(".pcap").unwrap_or(k);
                out.insert(id.to_string(), len);
            }
        }
    }
    out
}

/// A writer that hashes what passes through.
struct Hashing<W: Write> {
    inner: W,
    h: Sha256,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.h.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn sync_dir(dir: &Path) -> Result<(), ReportError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(ioerr(dir))
}

/// Writes one item into `root`, fsynced; returns its SHA-256.
fn write_item(root: &Path, item: &Item, p: &mut Progress) -> Result<String, ReportError> {
    let path = root.join(&item.rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(ioerr(parent))?;
    }
    let file = std::fs::File::create(&path).map_err(ioerr(&path))?;
    let digest = match &item.payload {
        Payload::Bytes(b) => {
            let mut w = Hashing {
                inner: std::io::BufWriter::new(&file),
                h: Sha256::new(),
                n: 0,
            };
            for chunk in b.chunks(1 << 20) {
                w.write_all(chunk).map_err(ioerr(&path))?;
                p.add(chunk.len() as u64, &item.rel);
            }
            w.flush().map_err(ioerr(&path))?;
            hex::encode(w.h.finalize())
        }
        Payload::File(src) => {
            let f = std::fs::File::open(src).map_err(|source| ReportError::Read {
                path: src.clone(),
                source,
            })?;
            let mut r = std::io::Read::take(f, item.size);
            let mut w = Hashing {
                inner: std::io::BufWriter::new(&file),
                h: Sha256::new(),
                n: 0,
            };
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n =
                    std::io::Read::read(&mut r, &mut buf).map_err(|source| ReportError::Read {
                        path: src.clone(),
                        source,
                    })?;
                if n == 0 {
                    break;
                }
                w.write_all(&buf[..n]).map_err(ioerr(&path))?;
                p.add(n as u64, &item.rel);
            }
            w.flush().map_err(ioerr(&path))?;
            hex::encode(w.h.finalize())
        }
        Payload::Zip(entries) => {
            let f2 = file.try_clone().map_err(ioerr(&path))?;
            zipfiles::write_zip(std::io::BufWriter::new(f2), entries, &mut |n| {
                p.add(n, &item.rel)
            })?
            .flush()
            .map_err(ioerr(&path))?;
            file.sync_all().map_err(ioerr(&path))?;
            manifest::sha256_file(&path).map_err(ioerr(&path))?
        }
    };
    file.sync_all().map_err(ioerr(&path))?;
    Ok(digest)
}

/// Drops a file's pages from the cache so the verification re-reads the device.
fn drop_cache(path: &Path) {
    if let Ok(f) = std::fs::File::open(path) {
        let _ = nix::fcntl::posix_fadvise(
            &f,
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
    }
}

/// Writes the bundle. Refuses before writing anything when the target lacks the space.
pub fn export(req: &ExportRequest<'_>) -> Result<ExportSummary, ReportError> {
    if !req.to.is_dir() {
        return Err(ReportError::Export(format!(
            "{} is not a directory; pass the USB stick's mount point",
            req.to.display()
        )));
    }
    let recipient = match req.recipient {
        Some(r) => Some(r.trim().parse::<age::x25519::Recipient>().map_err(|e| {
            ReportError::Export(format!("`{r}` is not an age X25519 public key ({e}); it looks like age1… (age-keygen -y key.txt prints it)"))
        })?),
        None => None,
    };
    let Plan {
        items,
        without_pcap: findings_without_pcap,
        damage: evidence_damage,
    } = plan(req)?;
    let name = bundle_name(
        if req.report.site_name.is_empty() {
            &req.report.customer
        } else {
            &req.report.site_name
        },
        req.now,
    );
    let final_dir = req.to.join(&name);
    let partial = req.to.join(format!("{name}.partial"));
    if final_dir.exists() || partial.exists() {
        return Err(ReportError::Export(format!(
            "{} already exists; wait a second and export again",
            final_dir.display()
        )));
    }
    let payload_bytes: u64 = items.iter().map(|i| i.size).sum();
    let needed = match recipient {
        None => space::needed(payload_bytes, items.len() as u64 + 1),
        // tar headers and padding, age's 16-byte tag per 64 KiB chunk and its header.
        Some(_) => space::needed(
            payload_bytes + items.len() as u64 * 1536 + 4096 + payload_bytes / 4096 + 4096,
            3,
        ),
    };
    let free = space::free_bytes(req.to).map_err(ioerr(req.to))?;
    if free < needed {
        return Err(ReportError::Export(format!(
            "not enough space on {}: the bundle needs {} (with margin), {} is free; nothing was written. Use a larger stick or free some space",
            req.to.display(),
            kuroko_model::units::format_bytes(needed),
            kuroko_model::units::format_bytes(free)
        )));
    }

    let note = DamageNote {
        evidence: &evidence_damage,
        slots: req.damaged_slots,
    };
    let encrypted_readme = readme(req.report, true, &note).into_bytes();
    let file_count = write_and_seal(&Bundle {
        to: req.to,
        partial: &partial,
        final_dir: &final_dir,
        items,
        recipient: recipient.as_ref(),
        encrypted_readme,
        progress: req.progress,
    })
    .map_err(|e| {
        // Nothing incomplete stays on the stick: a half-written bundle in clear would be
        // the customer's data on a stick nobody meant to fill.
        if partial.exists() {
            match std::fs::remove_dir_all(&partial) {
                Ok(()) => ReportError::Export(format!(
                    "{e}. The export stopped and its incomplete bundle was removed from {}; nothing of it is left. Export again",
                    req.to.display()
                )),
                Err(rm) => ReportError::Export(format!(
                    "{e}. The export stopped; its incomplete bundle {} could not be removed ({rm}): delete it (or wipe the stick) before the stick leaves",
                    partial.display()
                )),
            }
        } else {
            e
        }
    })?;
    Ok(ExportSummary {
        bundle: final_dir,
        files: file_count,
        bytes: payload_bytes,
        encrypted: recipient.is_some(),
        findings_without_pcap,
        evidence_damage,
        damaged_slots: req.damaged_slots.to_vec(),
    })
}

/// What [`write_and_seal`] writes.
struct Bundle<'a> {
    to: &'a Path,
    partial: &'a Path,
    final_dir: &'a Path,
    items: Vec<Item>,
    recipient: Option<&'a age::x25519::Recipient>,
    /// The README written in clear beside an encrypted bundle.
    encrypted_readme: Vec<u8>,
    progress: bool,
}

/// Writes the items under `partial`, fsyncs, writes the manifest last, re-reads and
/// checks everything, then renames to `final_dir`. Any failure leaves `partial` without
/// a valid manifest. Returns the number of files in the bundle.
fn write_and_seal(b: &Bundle<'_>) -> Result<usize, ReportError> {
    std::fs::create_dir(b.partial).map_err(ioerr(b.partial))?;
    let payload_bytes: u64 = b.items.iter().map(|i| i.size).sum();
    let mut p = Progress::new(payload_bytes, b.progress);
    let mut items: Vec<&Item> = b.items.iter().collect();
    let mut manifest_entries = Vec::new();
    let file_count = match b.recipient {
        None => {
            for item in &items {
                let digest = write_item(b.partial, item, &mut p)?;
                manifest_entries.push((item.rel.clone(), digest));
            }
            items.len() + 1
        }
        Some(r) => {
            // README in clear, everything else only inside the encrypted tar.
            let readme_item = Item {
                rel: "README.txt".into(),
                size: b.encrypted_readme.len() as u64,
                payload: Payload::Bytes(b.encrypted_readme.clone()),
            };
            items.retain(|i| i.rel != "README.txt");
            let digest = write_item(b.partial, &readme_item, &mut p)?;
            manifest_entries.push((readme_item.rel.clone(), digest));
            let digest = write_encrypted(b.partial, &items, r, &mut p)?;
            manifest_entries.push(("bundle.tar.age".into(), digest));
            3
        }
    };
    p.finish();
    // Directories first, then the manifest, then the manifest's directory.
    sync_tree(b.partial)?;
    let mpath = b.partial.join(MANIFEST_NAME);
    {
        let mut f = std::fs::File::create(&mpath).map_err(ioerr(&mpath))?;
        f.write_all(manifest::render(&manifest_entries).as_bytes())
            .map_err(ioerr(&mpath))?;
        f.sync_all().map_err(ioerr(&mpath))?;
    }
    sync_dir(b.partial)?;
    for (rel, _) in &manifest_entries {
        drop_cache(&b.partial.join(rel));
    }
    match manifest::verify(b.partial).map_err(|source| ReportError::Read {
        path: b.partial.to_path_buf(),
        source,
    })? {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => {
            // Without its manifest the directory cannot pass for a bundle.
            let _ = std::fs::remove_file(&mpath);
            return Err(ReportError::Export(format!(
                "the bundle read back differs from what was written ({problems:?}); the stick may be failing"
            )));
        }
        Err(m) => return Err(ReportError::Export(m)),
    }
    std::fs::rename(b.partial, b.final_dir).map_err(ioerr(b.final_dir))?;
    sync_dir(b.to)?;
    Ok(file_count)
}

fn sync_tree(dir: &Path) -> Result<(), ReportError> {
    for e in std::fs::read_dir(dir).map_err(ioerr(dir))?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            sync_tree(&e.path())?;
        }
    }
    sync_dir(dir)
}

/// The tree as one tar stream encrypted to `r`, with an inner manifest; returns the
/// SHA-256 of `bundle.tar.age`.
fn write_encrypted(
    root: &Path,
    items: &[&Item],
    r: &age::x25519::Recipient,
    p: &mut Progress,
) -> Result<String, ReportError> {
    let path = root.join("bundle.tar.age");
    let file = std::fs::File::create(&path).map_err(ioerr(&path))?;
    let hashing = Hashing {
        inner: std::io::BufWriter::new(file),
        h: Sha256::new(),
        n: 0,
    };
    let enc = age::Encryptor::with_recipients(std::iter::once(r as &dyn age::Recipient))
        .map_err(|e| ReportError::Export(format!("cannot encrypt: {e}")))?;
    let stream = enc.wrap_output(hashing).map_err(ioerr(&path))?;
    let mut tar = tar::Builder::new(stream);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut inner_manifest = Vec::new();
    for item in items {
        let (digest, ()) = match &item.payload {
            Payload::Bytes(b) => {
                append_bytes(&mut tar, &item.rel, b).map_err(ioerr(&path))?;
                p.add(b.len() as u64, &item.rel);
                (hex::encode(Sha256::digest(b)), ())
            }
            Payload::File(src) => {
                let rerr = |source| ReportError::Read {
                    path: src.clone(),
                    source,
                };
                let mut h = Hashing {
                    inner: std::io::sink(),
                    h: Sha256::new(),
                    n: 0,
                };
                let f = std::fs::File::open(src).map_err(rerr)?;
                std::io::copy(&mut std::io::Read::take(f, item.size), &mut h).map_err(rerr)?;
                let digest = hex::encode(h.h.finalize());
                let f = std::fs::File::open(src).map_err(rerr)?;
                let mut hd = tar_header(item.size);
                tar.append_data(&mut hd, &item.rel, std::io::Read::take(f, item.size))
                    .map_err(ioerr(&path))?;
                p.add(item.size, &item.rel);
                (digest, ())
            }
            Payload::Zip(entries) => {
                // Built in an unlinked temporary file (never on the stick in clear).
                let tmp = tempfile::tempfile().map_err(ioerr(Path::new("temporary file")))?;
                let mut tmp = zipfiles::write_zip(tmp, entries, &mut |n| p.add(n, &item.rel))?;
                use std::io::{Read, Seek};
                let len = tmp.seek(std::io::SeekFrom::End(0)).map_err(ioerr(&path))?;
                tmp.rewind().map_err(ioerr(&path))?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = tmp.read(&mut buf).map_err(ioerr(&path))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                tmp.rewind().map_err(ioerr(&path))?;
                let mut hd = tar_header(len);
                tar.append_data(&mut hd, &item.rel, &mut tmp)
                    .map_err(ioerr(&path))?;
                (hex::encode(h.finalize()), ())
            }
        };
        inner_manifest.push((item.rel.clone(), digest));
    }
    append_bytes(
        &mut tar,
        MANIFEST_NAME,
        manifest::render(&inner_manifest).as_bytes(),
    )
    .map_err(ioerr(&path))?;
    let stream = tar.into_inner().map_err(ioerr(&path))?;
    let mut hashing = stream.finish().map_err(ioerr(&path))?;
    hashing.flush().map_err(ioerr(&path))?;
    let digest = hex::encode(hashing.h.clone().finalize());
    let file = hashing.inner.into_inner().map_err(|e| ReportError::Write {
        path: path.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(ioerr(&path))?;
    Ok(digest)
}

fn tar_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, b: &[u8]) -> std::io::Result<()> {
    let mut h = tar_header(b.len() as u64);
    tar.append_data(&mut h, name, b)
}

/// Re-checks a bundle directory against its manifest (`kuroko export --verify`).
pub fn verify_bundle(dir: &Path) -> Result<manifest::Problems, ReportError> {
    if dir.extension().is_some_and(|e| e == "partial") {
        return Err(ReportError::Export(format!(
            "{} is an incomplete bundle (the export did not finish); export again",
            dir.display()
        )));
    }
    match manifest::verify(dir).map_err(|source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    })? {
        Ok(p) => Ok(p),
        Err(m) => Err(ReportError::Export(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(rel: &str, b: &[u8]) -> Item {
        Item {
            rel: rel.into(),
            size: b.len() as u64,
            payload: Payload::Bytes(b.to_vec()),
        }
    }

    #[test]
    fn a_write_that_fails_midway_leaves_a_visibly_incomplete_bundle() {
        let to = tempfile::tempdir().unwrap();
        let partial = to.path().join("kuroko-x-1.partial");
        let final_dir = to.path().join("kuroko-x-1");
        // The second file's source vanishes between planning and writing, as when the
        // stick (or a source disk) goes away mid-export.
        let items = vec![
            bytes("README.txt", b"readme"),
            bytes("report/report-ja.html", b"<html></html>"),
            Item {
                rel: "pcap/001-f.pcap".into(),
                size: 10,
                payload: Payload::File(to.path().join("gone.pcap")),
            },
            bytes("findings/findings.jsonl", b"{}\n"),
        ];
        let b = Bundle {
            to: to.path(),
            partial: &partial,
            final_dir: &final_dir,
            items,
            recipient: None,
            encrypted_readme: Vec::new(),
            progress: false,
        };
        assert!(write_and_seal(&b).is_err());
        assert!(
            !final_dir.exists(),
            "a failed export must not leave a final-looking bundle"
        );
        assert!(partial.join("report/report-ja.html").is_file());
        assert!(!partial.join(MANIFEST_NAME).exists());
        let e = verify_bundle(&partial).unwrap_err().to_string();
        assert!(e.contains("incomplete"), "{e}");

        // The same items with the source present seal and verify.
        std::fs::write(to.path().join("gone.pcap"), b"0123456789").unwrap();
        let partial2 = to.path().join("kuroko-x-2.partial");
        let final2 = to.path().join("kuroko-x-2");
        let b2 = Bundle {
            partial: &partial2,
            final_dir: &final2,
            ..b
        };
        assert_eq!(write_and_seal(&b2).unwrap(), 5);
        assert!(!partial2.exists() && final2.join(MANIFEST_NAME).is_file());
        assert!(verify_bundle(&final2).unwrap().is_empty());
    }

    #[test]
    fn bundle_names_are_plain_ascii() {
        let t = Timestamp(1_794_960_000_000_000_000);
        assert_eq!(
            bundle_name("Tokyo HQ / 本社", t),
            "kuroko-tokyo-hq-20261118T000000Z"
        );
        assert_eq!(bundle_name("本社", t), "kuroko-site-20261118T000000Z");
        assert_eq!(bundle_name("../../etc", t), "kuroko-etc-20261118T000000Z");
    }
}

//! Intel packs: the consultant's indicator files and YARA rules, imported from a
//! directory or an archive into `DATA/intel/`, listed and removed.
//!
//! # On disk
//!
//! ```text
//! DATA/intel/
//!   state.json              generation counter + the updates (import/remove/recheck) with dates
//!   lock                    held while a pack is imported or removed
//!   <pack>/manifest.json    provenance: per file its feed, format, date, sha256, counts
//!   <pack>/indicators.tsv   kind \t normal form \t feed \t label, one indicator a line
//!   <pack>/src/…            the files as imported
//!   <pack>/yara/…           the pack's YARA rule files (compiled by the YARA scanner)
//! ```
//!
//! # Atomicity
//!
//! A pack is built in `.staging-<pack>-<pid>/` and fsynced; the old pack (if any) is
//! renamed to `.old-<pack>-<pid>`, the staging directory to `<pack>`, then the old one is
//! removed. A crash between the two renames leaves no `<pack>` but an `.old-<pack>-*`:
//! [`recover`] (run under the lock before every change, and read-only by [`list`]) puts
//! it back. Leftover staging directories are removed. So a crash mid-import leaves the
//! old pack or the new one, never half of one. `state.json` is replaced by rename.

use super::archive;
use super::feeds::{self, Format, ParsedFile};
use super::indicator::Kind;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Files per pack at most (a pack is a handful of feeds, not a file system).
const MAX_FILES: usize = 1000;
const STATE_FILE: &str = "state.json";

/// `DATA/intel`.
pub fn intel_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("intel")
}

/// One source file of a pack, with its provenance and what it held.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileReport {
    /// Path inside the pack.
    pub path: String,
    /// `feodo`, `zeek`, `plain:domain`, … or `yara`.
    pub format: String,
    pub feed: String,
    /// The date the file's header gives, else its modification time (RFC 3339).
    pub date: String,
    pub sha256: String,
    pub bytes: u64,
    pub indicators: u64,
    pub bad_lines: u64,
    /// The first malformed lines: `file:line: why`.
    #[serde(default)]
    pub bad: Vec<String>,
    #[serde(default)]
    pub unsupported: u64,
}

/// `manifest.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PackInfo {
    pub name: String,
    /// When it was imported (RFC 3339 UTC).
    pub imported_at: String,
    /// The directory or archive it came from.
    pub source: String,
    /// `state.json` generation of the import.
    pub generation: u64,
    pub indicators: u64,
    pub bad_lines: u64,
    /// Indicators per kind.
    pub kinds: std::collections::BTreeMap<String, u64>,
    pub files: Vec<FileReport>,
    /// Files that were neither a known feed format nor declared in `pack.toml`.
    #[serde(default)]
    pub unrecognised: Vec<String>,
    /// YARA rule files, relative to the pack's `yara/` directory.
    #[serde(default)]
    pub yara_files: Vec<String>,
    /// The pack's directory (filled in by `list`, not stored).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl PackInfo {
    /// `DATA/intel/<pack>/yara/`: the pack's YARA rule files.
    pub fn yara_dir(&self) -> PathBuf {
        self.dir.join("yara")
    }
    pub fn indicators_file(&self) -> PathBuf {
        self.dir.join("indicators.tsv")
    }
}

/// A change to the intel: what a re-check starts from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Update {
    pub generation: u64,
    /// `import`, `remove`, `recheck`.
    pub what: String,
    pub packs: Vec<String>,
    /// RFC 3339 UTC.
    pub date: String,
}

/// `state.json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IntelState {
    pub generation: u64,
    /// The latest updates (at most 64).
    pub updates: Vec<Update>,
}

/// Reads `state.json` (none yet: generation 0).
pub fn state(data_dir: &Path) -> Result<IntelState, String> {
    let p = intel_dir(data_dir).join(STATE_FILE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IntelState::default()),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records an update and returns its generation.
fn bump(data_dir: &Path, what: &str, packs: Vec<String>) -> Result<Update, String> {
    let mut st = state(data_dir)?;
    st.generation += 1;
    let u = Update {
        generation: st.generation,
        what: what.into(),
        packs,
        date: now_rfc3339(),
    };
    st.updates.push(u.clone());
    if st.updates.len() > 64 {
        st.updates.remove(0);
    }
    let dir = intel_dir(data_dir);
    write_atomic(
        &dir.join(STATE_FILE),
        &serde_json::to_vec_pretty(&st).map_err(|e| e.to_string())?,
    )?;
    Ok(u)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

fn sync_dir(dir: &Path) {
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
}

/// Exclusive lock on `DATA/intel/lock` (one import/remove at a time).
fn lock(data_dir: &Path) -> Result<std::fs::File, String> {
    let dir = intel_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let p = dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    f.lock().map_err(|e| format!("{}: {e}", p.display()))?;
    Ok(f)
}

/// Puts back a pack whose replacement a crash interrupted and removes leftover staging
/// directories. Call with the lock held.
fn recover(data_dir: &Path) -> Result<(), String> {
    let dir = intel_dir(data_dir);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".staging-") || name.starts_with(".extract-") {
            let _ = std::fs::remove_dir_all(e.path());
        } else if let Some(rest) = name.strip_prefix(".old-") {
            let pack = rest.rsplit_once('-').map(|(p, _)| p).unwrap_or(rest);
            let live = dir.join(pack);
            if live.join("manifest.json").exists() {
                let _ = std::fs::remove_dir_all(e.path());
            } else {
                let _ = std::fs::remove_dir_all(&live);
                std::fs::rename(e.path(), &live).map_err(|e| format!("{}: {e}", live.display()))?;
            }
        }
    }
    sync_dir(&dir);
    Ok(())
}

/// The installed packs, by name. A pack caught between the two renames of a replacement
/// is listed from its `.old-` directory.
pub fn list(data_dir: &Path) -> Result<Vec<PackInfo>, String> {
    let dir = intel_dir(data_dir);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut out: Vec<PackInfo> = Vec::new();
    let mut old: Vec<PathBuf> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".old-") {
            old.push(e.path());
            continue;
        }
        if name.starts_with('.') || !e.path().join("manifest.json").is_file() {
            continue;
        }
        out.push(read_manifest(&e.path())?);
    }
    for p in old {
        if let Ok(info) = read_manifest(&p)
            && !out.iter().any(|x| x.name == info.name)
        {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn read_manifest(dir: &Path) -> Result<PackInfo, String> {
    let p = dir.join("manifest.json");
    let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut info: PackInfo =
        serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display()))?;
    info.dir = dir.to_path_buf();
    Ok(info)
}

/// `pack.toml`: the pack's name and the declarations of files that do not say what they
/// are (plain lists), or that should carry another feed name.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct PackToml {
    name: Option<String>,
    #[serde(default)]
    file: Vec<FileDecl>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FileDecl {
    path: String,
    format: String,
    kind: Option<String>,
    feed: Option<String>,
}

/// A pack name: letters, digits, `-`, `_`, `.`, not starting with `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a pack name: use 1–64 letters, digits, `-`, `_` or `.` (give one with `name =` in pack.toml or --name)"
        ))
    }
}

/// What `import` did.
#[derive(Serialize, Debug, Clone)]
pub struct ImportSummary {
    pub pack: PackInfo,
    /// The pack this one replaced had this many indicators.
    pub replaced: Option<u64>,
    pub update: Update,
}

/// Imports a pack from a directory or an archive. `name` overrides the pack's name.
pub fn import(data_dir: &Path, source: &Path, name: Option<&str>) -> Result<ImportSummary, String> {
    import_checked(data_dir, source, name, &|_| Ok(()))
}

/// [`import`], with the pack's YARA rule files (as staged, before the pack is swapped in)
/// handed to `check_yara` (the YARA compiler, which this crate does not link): an error
/// refuses the whole pack and leaves the installed one as it was.
pub fn import_checked(
    data_dir: &Path,
    source: &Path,
    name: Option<&str>,
    check_yara: &dyn Fn(&[PathBuf]) -> Result<(), String>,
) -> Result<ImportSummary, String> {
    let meta = std::fs::metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let _lock = lock(data_dir)?;
    recover(data_dir)?;
    let dir = intel_dir(data_dir);
    let pid = std::process::id();
    let extract = dir.join(format!(".extract-{pid}"));
    let root = if meta.is_dir() {
        source.to_path_buf()
    } else if archive::is_archive(source) {
        let _ = std::fs::remove_dir_all(&extract);
        std::fs::create_dir_all(&extract).map_err(|e| format!("{}: {e}", extract.display()))?;
        if let Err(e) = archive::unpack(source, &extract, archive::Limits::default()) {
            let _ = std::fs::remove_dir_all(&extract);
            return Err(format!("{}: {e}; nothing was imported", source.display()));
        }
        extract.clone()
    } else {
        return Err(format!(
            "{} is neither a directory nor an archive (.zip, .tar.gz, .tgz, .tar)",
            source.display()
        ));
    };
    let r = build(data_dir, source, &root, name, check_yara);
    let _ = std::fs::remove_dir_all(&extract);
    r
}

fn stem_of(source: &Path) -> String {
    let n = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = n.to_ascii_lowercase();
    for ext in [".tar.gz", ".tgz", ".zip", ".tar"] {
        if lower.ends_with(ext) {
            return n[..n.len() - ext.len()].to_string();
        }
    }
    n
}

fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let here = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&here)
        .map_err(|e| format!("{}: {e}", here.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ft = e.file_type().map_err(|e| e.to_string())?;
        let r = rel.join(e.file_name());
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if ft.is_dir() && depth < 8 {
            walk(root, &r, depth + 1, out)?;
        } else if ft.is_file() {
            out.push(r);
            if out.len() > MAX_FILES {
                return Err(format!("more than {MAX_FILES} files in the pack"));
            }
        }
        // Symbolic links and special files are not followed.
    }
    Ok(())
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn build(
    data_dir: &Path,
    source: &Path,
    root: &Path,
    name: Option<&str>,
    check_yara: &dyn Fn(&[PathBuf]) -> Result<(), String>,
) -> Result<ImportSummary, String> {
    let toml_path = root.join("pack.toml");
    let decl: PackToml = match std::fs::read_to_string(&toml_path) {
        Ok(t) => toml::from_str(&t).map_err(|e| format!("{}: {e}", toml_path.display()))?,
        Err(_) => PackToml::default(),
    };
    let name = name
        .map(str::to_string)
        .or(decl.name.clone())
        .unwrap_or_else(|| stem_of(source));
    check_name(&name)?;
    let mut files = Vec::new();
    walk(root, Path::new(""), 0, &mut files)?;
    let dir = intel_dir(data_dir);
    let staging = dir.join(format!(".staging-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| format!("{}: {e}", p.display())
    };
    std::fs::create_dir_all(staging.join("src")).map_err(io(&staging))?;
    let result = (|| {
        let tsv_path = staging.join("indicators.tsv");
        let mut tsv =
            std::io::BufWriter::new(std::fs::File::create(&tsv_path).map_err(io(&tsv_path))?);
        let mut info = PackInfo {
            name: name.clone(),
            imported_at: now_rfc3339(),
            source: source.display().to_string(),
            generation: 0,
            indicators: 0,
            bad_lines: 0,
            kinds: Default::default(),
            files: Vec::new(),
            unrecognised: Vec::new(),
            yara_files: Vec::new(),
            dir: PathBuf::new(),
        };
        for rel in &files {
            let rel_s = rel.to_string_lossy().replace('\\', "/");
            if rel_s == "pack.toml" {
                continue;
            }
            let src = root.join(rel);
            let bytes = std::fs::read(&src).map_err(io(&src))?;
            let lower = rel_s.to_ascii_lowercase();
            if lower.ends_with(".yar") || lower.ends_with(".yara") {
                // `yara/x.yar` in the pack is `yara/x.yar` in the store, not `yara/yara/…`.
                let inner = rel.strip_prefix("yara").unwrap_or(rel);
                let dest = staging.join("yara").join(inner);
                std::fs::create_dir_all(dest.parent().unwrap_or(&staging)).map_err(io(&dest))?;
                std::fs::write(&dest, &bytes).map_err(io(&dest))?;
                info.yara_files
                    .push(inner.to_string_lossy().replace('\\', "/"));
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            let declared = decl.file.iter().find(|d| d.path == rel_s);
            let format = match declared {
                Some(d) => {
                    let kind = match &d.kind {
                        Some(k) => Some(Kind::parse(k).ok_or_else(|| {
                            format!(
                                "{}: file `{}`: `kind = \"{k}\"` is not a kind; use one of {}",
                                toml_path.display(),
                                d.path,
                                Kind::ALL.map(|k| k.as_str()).join(", ")
                            )
                        })?),
                        None => None,
                    };
                    Some(Format::parse(&d.format, kind).ok_or_else(|| {
                        format!(
                            "{}: file `{}`: `format = \"{}\"` is not a feed format (sslbl, sslbl_ja3, feodo, urlhaus, threatfox, spamhaus_drop, spamhaus_edrop, spamhaus_dropv6, zeek, or plain with `kind`)",
                            toml_path.display(),
                            d.path,
                            d.format
                        )
                    })?)
                }
                None => feeds::detect(&rel_s, &text),
            };
            let Some(format) = format else {
                info.unrecognised.push(rel_s.clone());
                continue;
            };
            let parsed: ParsedFile = feeds::parse(format, &text);
            let feed = declared
                .and_then(|d| d.feed.clone())
                .or(format.feed().map(str::to_string))
                .unwrap_or_else(|| {
                    let stem = rel
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    stem.to_ascii_lowercase()
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                        .collect()
                });
            let date = parsed.date.clone().unwrap_or_else(|| {
                std::fs::metadata(&src)
                    .and_then(|m| m.modified())
                    .map(|t| {
                        chrono::DateTime::<chrono::Utc>::from(t)
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    })
                    .unwrap_or_default()
            });
            for p in &parsed.indicators {
                let label = p.label.replace(['\t', '\n', '\r'], " ");
                writeln!(tsv, "{}\t{}\t{}\t{}", p.kind.as_str(), p.value, feed, label)
                    .map_err(io(&tsv_path))?;
                *info.kinds.entry(p.kind.as_str().to_string()).or_default() += 1;
            }
            info.indicators += parsed.indicators.len() as u64;
            info.bad_lines += parsed.bad_lines;
            let dest = staging.join("src").join(rel);
            std::fs::create_dir_all(dest.parent().unwrap_or(&staging)).map_err(io(&dest))?;
            std::fs::write(&dest, &bytes).map_err(io(&dest))?;
            info.files.push(FileReport {
                path: rel_s.clone(),
                format: format.name(),
                feed,
                date,
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
                indicators: parsed.indicators.len() as u64,
                bad_lines: parsed.bad_lines,
                bad: parsed
                    .bad
                    .iter()
                    .map(|(n, why)| format!("{rel_s}:{n}: {why}"))
                    .collect(),
                unsupported: parsed.unsupported,
            });
        }
        tsv.into_inner()
            .map_err(|e| format!("{}: {e}", tsv_path.display()))?
            .sync_all()
            .map_err(io(&tsv_path))?;
        if info.indicators == 0 && info.yara_files.is_empty() {
            let mut why = String::from("no indicator and no YARA rule found");
            if !info.unrecognised.is_empty() {
                why += &format!(
                    "; files of no known format: {} (declare plain lists in pack.toml: [[file]] path = \"…\" format = \"plain\" kind = \"domain\")",
                    info.unrecognised.join(", ")
                );
            }
            return Err(format!("{}: {why}; nothing was imported", source.display()));
        }
        if !info.yara_files.is_empty() {
            let files: Vec<PathBuf> = info
                .yara_files
                .iter()
                .map(|f| staging.join("yara").join(f))
                .collect();
            let staged = staging.join("yara").display().to_string();
            check_yara(&files).map_err(|e| {
                // Name the files as the pack names them (`yara/x.yar`), not the staging dir.
                let e = e.replace(&staged, "yara");
                format!(
                    "{}: the YARA rules do not compile ({e}); nothing was imported",
                    source.display()
                )
            })?;
        }
        let update = bump_pending(data_dir, &name)?;
        info.generation = update.generation;
        let mf = staging.join("manifest.json");
        write_atomic(
            &mf,
            &serde_json::to_vec_pretty(&info).map_err(|e| e.to_string())?,
        )?;
        sync_dir(&staging);
        Ok((info, update))
    })();
    let (mut info, update) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // Swap in.
    let live = dir.join(&name);
    let old = dir.join(format!(".old-{name}-{}", std::process::id()));
    let replaced = read_manifest(&live).ok().map(|i| i.indicators);
    if live.exists() {
        std::fs::rename(&live, &old).map_err(io(&live))?;
    }
    std::fs::rename(&staging, &live).map_err(io(&live))?;
    sync_dir(&dir);
    let _ = std::fs::remove_dir_all(&old);
    commit_update(data_dir, &update)?;
    info.dir = live;
    Ok(ImportSummary {
        pack: info,
        replaced,
        update,
    })
}

/// The generation an import will get (written to `state.json` only once the pack is in
/// place, by `commit_update`).
fn bump_pending(data_dir: &Path, name: &str) -> Result<Update, String> {
    let st = state(data_dir)?;
    Ok(Update {
        generation: st.generation + 1,
        what: "import".into(),
        packs: vec![name.to_string()],
        date: now_rfc3339(),
    })
}

fn commit_update(data_dir: &Path, u: &Update) -> Result<(), String> {
    let mut st = state(data_dir)?;
    st.generation = st.generation.max(u.generation);
    st.updates.push(u.clone());
    if st.updates.len() > 64 {
        st.updates.remove(0);
    }
    write_atomic(
        &intel_dir(data_dir).join(STATE_FILE),
        &serde_json::to_vec_pretty(&st).map_err(|e| e.to_string())?,
    )
}

/// Removes a pack.
pub fn remove(data_dir: &Path, name: &str) -> Result<Update, String> {
    check_name(name)?;
    let _lock = lock(data_dir)?;
    recover(data_dir)?;
    let dir = intel_dir(data_dir);
    let live = dir.join(name);
    if !live.join("manifest.json").exists() {
        let names: Vec<String> = list(data_dir)?.into_iter().map(|p| p.name).collect();
        return Err(format!(
            "no intel pack `{name}` (installed: {})",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        ));
    }
    let gone = dir.join(format!(".staging-removed-{name}-{}", std::process::id()));
    std::fs::rename(&live, &gone).map_err(|e| format!("{}: {e}", live.display()))?;
    sync_dir(&dir);
    let _ = std::fs::remove_dir_all(&gone);
    bump(data_dir, "remove", vec![name.to_string()])
}

/// Asks for a re-check of the past against every installed pack.
pub fn request_recheck(data_dir: &Path) -> Result<Update, String> {
    let _lock = lock(data_dir)?;
    let names = list(data_dir)?.into_iter().map(|p| p.name).collect();
    bump(data_dir, "recheck", names)
}

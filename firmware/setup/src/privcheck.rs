//! What the running appliance's processes hold and what its files let others read: the
//! self-test's privilege and file-mode lines.
//!
//! `kuroko run` drops its children to the dedicated user with no capabilities (capture
//! keeps at most the four it needs), NoNewPrivs and a seccomp filter, and every kuroko
//! process creates its files owner-only. Those are promises about a running box, so the
//! technician's `selftest` reads them back from `/proc/PID/status` and the data and config
//! trees, as an auditor would, rather than trusting the code that set them.

use std::path::{Path, PathBuf};

/// The capabilities capture may still hold (CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK,
/// CAP_SYS_NICE; `kuroko::privilege::CAPTURE_CAPS`).
pub const CAPTURE_CAPS: u64 = (1 << 12) | (1 << 13) | (1 << 14) | (1 << 23);

/// The children of `kuroko run` and what each is.
pub const ROLES: &[&str] = &["capture", "analyze", "web"];

/// One running kuroko child, as `/proc/PID/status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// `capture`, `analyze` or `web` (its subcommand).
    pub role: String,
    pub pid: u32,
    /// Real, effective, saved and file-system uid.
    pub uids: [u32; 4],
    pub cap_eff: u64,
    pub cap_prm: u64,
    pub no_new_privs: bool,
    /// 0 none, 1 strict, 2 filter.
    pub seccomp: u8,
}

impl Child {
    /// `Ok(line)` when the child holds no more than its role allows, `Err(line)` naming
    /// what it holds beyond that.
    pub fn judge(&self) -> Result<String, String> {
        let allowed = if self.role == "capture" {
            CAPTURE_CAPS
        } else {
            0
        };
        let mut wrong = Vec::new();
        if self.uids.contains(&0) {
            wrong.push(format!("runs as root (uids {:?})", self.uids));
        }
        let extra = (self.cap_eff | self.cap_prm) & !allowed;
        if extra != 0 {
            wrong.push(format!("holds capabilities {extra:016x}"));
        }
        if !self.no_new_privs {
            wrong.push("may gain privileges (NoNewPrivs 0)".into());
        }
        if self.seccomp != 2 {
            wrong.push(format!("no seccomp filter (Seccomp {})", self.seccomp));
        }
        let who = format!("{} (pid {})", self.role, self.pid);
        if wrong.is_empty() {
            Ok(format!(
                "{who}: uid {}, capabilities {:016x}, NoNewPrivs, seccomp filter",
                self.uids[0], self.cap_eff
            ))
        } else {
            Err(format!("{who}: {}", wrong.join(", ")))
        }
    }
}

/// The kuroko children running now: every process under `proc` whose program is `kuroko`
/// and whose first argument is one of [`ROLES`]. A process that ends while it is read is
/// left out.
pub fn scan(proc: &Path) -> Vec<Child> {
    let Ok(entries) = std::fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let mut argv = cmdline.split(|&b| b == 0);
        let exe = argv.next().unwrap_or_default();
        if !exe.ends_with(b"/kuroko") && exe != b"kuroko" {
            continue;
        }
        let Some(role) = argv
            .next()
            .and_then(|a| std::str::from_utf8(a).ok())
            .filter(|a| ROLES.contains(a))
        else {
            continue;
        };
        if let Ok(status) = std::fs::read_to_string(e.path().join("status"))
            && let Some(c) = parse_status(role, pid, &status)
        {
            out.push(c);
        }
    }
    out.sort_by_key(|c| c.pid);
    out
}

/// A child from the text of its `/proc/PID/status`.
pub fn parse_status(role: &str, pid: u32, status: &str) -> Option<Child> {
    let field = |k: &str| {
        status.lines().find_map(|l| {
            l.strip_prefix(k)
                .and_then(|r| r.strip_prefix(':'))
                .map(str::trim)
        })
    };
    let mut uids = [0u32; 4];
    let u: Vec<u32> = field("Uid")?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if u.len() != 4 {
        return None;
    }
    uids.copy_from_slice(&u);
    let hex = |k: &str| field(k).and_then(|v| u64::from_str_radix(v, 16).ok());
    Some(Child {
        role: role.to_string(),
        pid,
        uids,
        cap_eff: hex("CapEff")?,
        cap_prm: hex("CapPrm")?,
        no_new_privs: field("NoNewPrivs")? == "1",
        seccomp: field("Seccomp")?.parse().ok()?,
    })
}

/// Entries looked at, at most, in one self-test (a week's data directory holds a few
/// thousand files; a damaged one could hold anything).
pub const MODE_CHECK_LIMIT: usize = 200_000;

/// What the file-mode walk found.
#[derive(Debug, Default)]
pub struct Modes {
    /// Files and directories looked at.
    pub checked: usize,
    /// Whether the walk stopped at [`MODE_CHECK_LIMIT`].
    pub truncated: bool,
    /// Regular files another user may read or write, or the group may write; directories
    /// the group or others may write. Path and mode.
    pub open: Vec<(PathBuf, u32)>,
}

/// Walks `roots` (not following symbolic links, not crossing into other file systems'
/// special files) for files and directories that are not the owner's alone. A file may be
/// group-readable (the config is shared read-only with the children's group).
pub fn modes(roots: &[&Path]) -> Modes {
    use std::os::unix::fs::PermissionsExt;
    let mut m = Modes::default();
    // The roots themselves may be links (`/var/lib/kuroko -> /data` on the image).
    let mut stack: Vec<PathBuf> = roots
        .iter()
        .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.to_path_buf()))
        .collect();
    while let Some(p) = stack.pop() {
        if m.checked >= MODE_CHECK_LIMIT {
            m.truncated = true;
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        m.checked += 1;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            if mode & 0o022 != 0 {
                m.open.push((p.clone(), mode));
            }
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() && mode & 0o027 != 0 {
            m.open.push((p, mode));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tkuroko\nUmask:\t0077\nState:\tS (sleeping)\n\
        Uid:\t990\t990\t990\t990\nGid:\t990\t990\t990\t990\nCapInh:\t0000000000000000\n\
        CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n\
        NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";

    #[test]
    fn a_confined_child_passes_and_each_missing_confinement_is_named() {
        let c = parse_status("analyze", 7, STATUS).unwrap();
        assert_eq!(c.uids, [990; 4]);
        let judged = |role: &str, from: &str, to: &str| {
            parse_status(role, 7, &STATUS.replace(from, to))
                .unwrap()
                .judge()
        };
        let ok = judged("analyze", "", "").unwrap();
        assert!(ok.contains("analyze (pid 7): uid 990"), "{ok}");
        for (role, from, to, named) in [
            (
                "analyze",
                "Uid:\t990\t990\t990\t990",
                "Uid:\t0\t0\t0\t0",
                "runs as root",
            ),
            (
                "analyze",
                "CapEff:\t0000000000000000",
                "CapEff:\t000001ffffffffff",
                "holds capabilities",
            ),
            // Capture may keep its four, nothing more; the analyzer none.
            (
                "analyze",
                "CapEff:\t0000000000000000",
                "CapEff:\t0000000000807000",
                "holds capabilities",
            ),
            (
                "capture",
                "CapPrm:\t0000000000000000",
                "CapPrm:\t0000000000a07000",
                "holds capabilities",
            ),
            ("web", "NoNewPrivs:\t1", "NoNewPrivs:\t0", "NoNewPrivs 0"),
            ("web", "Seccomp:\t2", "Seccomp:\t0", "no seccomp filter"),
        ] {
            let e = judged(role, from, to).unwrap_err();
            assert!(e.contains(named), "{role} with {to:?}: {e}");
        }
        assert!(
            judged(
                "capture",
                "CapEff:\t0000000000000000",
                "CapEff:\t0000000000807000"
            )
            .is_ok()
        );
        assert!(parse_status("web", 9, "Name:\tkuroko\n").is_none());
    }

    #[test]
    fn files_others_can_read_are_found_and_owner_only_ones_are_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(d.join("sessions")).unwrap();
        std::fs::set_permissions(d.join("sessions"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        for (name, mode) in [
            ("sessions/a.log", 0o600),
            ("kuroko.toml", 0o640),
            ("sessions/leak.pcap", 0o644),
        ] {
            std::fs::write(d.join(name), "x").unwrap();
            std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        // Reached through a link, as the image's `/var/lib/kuroko -> /data`.
        let via = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(d, via.path().join("kuroko")).unwrap();
        let m = modes(&[&via.path().join("kuroko")]);
        assert_eq!(m.checked, 6);
        let d = std::fs::canonicalize(d).unwrap();
        assert_eq!(m.open, vec![(d.join("sessions/leak.pcap"), 0o644)]);
        assert!(!m.truncated);
    }
}

//! File modes on a real data directory (issue 21): after `kuroko import` and `kuroko
//! analyze` (segments, session log, files, index, evidence, logs), every file kuroko
//! created is owner-only (no group or other bits: 0600 and the like) and every directory
//! 0700, because the binary sets umask 077 before it creates anything. The data directory
//! holds a customer's traffic; the box may leave the site with it.

use kuroko_analyzer::synth::{self, Params};
use kuroko_tests::kuroko::DataDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const CONFIG: &str = "[storage]\nbudget = \"64MiB\"\nsegment_size = \"4MiB\"\n";

fn walk(dir: &Path, out: &mut Vec<(String, u32, bool)>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = std::fs::symlink_metadata(e.path())?;
        if m.file_type().is_symlink() {
            continue;
        }
        out.push((
            e.path().display().to_string(),
            m.permissions().mode() & 0o7777,
            m.is_dir(),
        ));
        if m.is_dir() {
            walk(&e.path(), out)?;
        }
    }
    Ok(())
}

#[test]
fn everything_kuroko_writes_under_the_data_dir_is_owner_only() -> anyhow::Result<()> {
    let d = DataDir::new("modes", CONFIG)?;
    let pcap = d.dir.parent().unwrap().join("mixed.pcap");
    synth::generate(
        std::io::BufWriter::new(std::fs::File::create(&pcap)?),
        &Params {
            target_bytes: 2 << 20,
            concurrency: 16,
            seed: 21,
            ..Params::default()
        },
    )?;
    d.import(&pcap)?;
    d.analyze()?;
    // The data directory itself is kuroko's too (import created it).
    let mut entries = vec![(
        d.dir.display().to_string(),
        std::fs::metadata(&d.dir)?.permissions().mode() & 0o7777,
        true,
    )];
    walk(&d.dir, &mut entries)?;
    assert!(
        entries.iter().filter(|e| !e.2).count() >= 3,
        "too few files to judge: {entries:?}"
    );
    let open: Vec<String> = entries
        .iter()
        .filter(|(_, mode, _)| mode & 0o077 != 0)
        .map(|(p, mode, dir)| format!("{p} {mode:o}{}", if *dir { " (dir)" } else { "" }))
        .collect();
    assert!(
        open.is_empty(),
        "readable by group or others:\n{}",
        open.join("\n")
    );
    Ok(())
}

//! Synthetic intel packs for the benchmarks (`cargo xtask bench intel`, `cargo xtask bench
//! analyze --variants intel`): `n` indicators of every kind in realistic proportions, in
//! plain lists declared in `pack.toml`, deterministic for a given `salt` (domains under
//! `.example`; addresses, CIDRs and hashes spread over their whole space).

use std::fmt::Write as _;
use std::path::Path;

/// A pack directory of `n` indicators, the kinds in realistic proportions.
pub fn write_pack(dir: &Path, n: u64, salt: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let kinds = [
        ("address", 30),
        ("addr_port", 10),
        ("cidr", 5),
        ("domain", 30),
        ("url", 15),
        ("file_sha256", 8),
        ("ja3", 2),
    ];
    let mut toml = String::from("name = \"bench\"\n");
    for (kind, pct) in kinds {
        let count = n * pct / 100;
        let mut text = String::with_capacity(count as usize * 40);
        for i in 0..count {
            let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
            match kind {
                "address" => writeln!(
                    text,
                    "{}.{}.{}.{}",
                    11 + (x % 200),
                    (x >> 8) % 256,
                    (x >> 16) % 256,
                    (x >> 24) % 256
                ),
                "addr_port" => writeln!(
                    text,
                    "{}.{}.{}.{}:{}",
                    11 + (x % 200),
                    (x >> 8) % 256,
                    (x >> 16) % 256,
                    (x >> 24) % 256,
                    1024 + (x >> 32) % 60000
                ),
                "cidr" => writeln!(
                    text,
                    "{}.{}.{}.0/24",
                    11 + (x % 200),
                    (x >> 8) % 256,
                    (x >> 16) % 256
                ),
                "domain" => writeln!(text, "bad{x:x}.example"),
                "url" => writeln!(text, "http://dl{x:x}.example/p/{i}.exe"),
                "file_sha256" => {
                    writeln!(text, "{x:016x}{:016x}{:016x}{:016x}", x ^ 1, x ^ 2, x ^ 3)
                }
                _ => writeln!(text, "{x:016x}{:016x}", !x),
            }
            .expect("string");
        }
        let file = format!("{kind}.txt");
        std::fs::write(dir.join(&file), text)?;
        writeln!(
            toml,
            "[[file]]\npath = \"{file}\"\nformat = \"plain\"\nkind = \"{kind}\"\nfeed = \"bench\"\n"
        )
        .expect("string");
    }
    std::fs::write(dir.join("pack.toml"), toml)
}

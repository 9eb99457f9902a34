//! `cargo xtask bench fulltext [--mails N]`: the content index beside the session index.
//!
//! Builds `kuroko-index`'s `bench_content` example in release and runs it: N synthetic
//! mail sessions (Japanese and English bodies of ~1.5 KB, one object each in `files/`),
//! then, in the same run, the session index catching up (sessions/s: the reference) and
//! the content index catching up over the same log (mails/s and MB/s of text), the index
//! bytes per byte of text, and phrase query latency p50/p99. Default 20,000 mails (a few
//! seconds); `--mails 1000000` for the issue's figure (about 1.5 GB of objects in a
//! temporary directory, removed afterwards). The report goes to
//! `bench-out/fulltext.md`. Nothing here asserts on time.
//!
//! `cargo xtask bench fulltext --tokenizers [--mails N]`: the tokenizer comparison
//! instead (`kuroko-index`'s `bench_tokenizers` example: the content index's character
//! bigrams against MeCab with IPADIC on the same Japanese mail corpus, default 3,000 mails;
//! recall and precision of phrase queries, index size, indexing time). Needs Debian's
//! `mecab` and `mecab-ipadic-utf8`. The report goes to `bench-out/fulltext-tokenizers.md`;
//! the figures and the choice are in docs/FULLTEXT.md.

use crate::util::{cargo, root, run as run_cmd, target_dir};
use anyhow::{Context, bail};
use std::process::Command;

#[derive(clap::Args)]
pub struct Args {
    /// Synthetic mails to index (default 20,000; 3,000 with --tokenizers).
    #[arg(long)]
    pub mails: Option<u64>,
    /// Compare tokenizers (character bigrams against MeCab/IPADIC) instead.
    #[arg(long)]
    pub tokenizers: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (example, mails, file, title) = if args.tokenizers {
        (
            "bench_tokenizers",
            args.mails.unwrap_or(3_000),
            "fulltext-tokenizers.md",
            "tokenizers",
        )
    } else {
        (
            "bench_content",
            args.mails.unwrap_or(20_000),
            "fulltext.md",
            "content index",
        )
    };
    run_cmd(cargo().args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "kuroko-index",
        "--example",
        example,
    ]))?;
    let bin = target_dir().join("release/examples").join(example);
    eprintln!("+ {} {}", bin.display(), mails);
    let out = Command::new(&bin)
        .arg(mails.to_string())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!("{example} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    // The comparison prints markdown tables; the content bench plain lines.
    let fence = if args.tokenizers { "" } else { "```\n" };
    let report = format!(
        "# cargo xtask bench fulltext — {title}, {mails} mails\n\n{fence}{}{fence}\n",
        String::from_utf8_lossy(&out.stdout)
    );
    let dir = root().join("bench-out");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    std::fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{report}");
    eprintln!("written to {}", path.display());
    Ok(())
}

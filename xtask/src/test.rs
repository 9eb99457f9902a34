//! `cargo xtask test`: formatting, lints, every test of the workspace, a two-minute soak of
//! the live path under faults (`cargo xtask soak`), then the appliance end to end
//! (`cargo xtask qemu-test`: the image build, the boots in qemu).
//!
//! End-to-end tests need root (network namespaces, raw sockets, debootstrap) and the Debian
//! packages of `.ci/packages.txt`; they are part of the normal suite, not a separate tier, so
//! CI runs them every time. qemu-test comes after the workspace tests, and runs even when
//! those failed, so one failure does not hide the other's results. `--no-qemu` (or
//! `KUROKO_NO_QEMU=1`) skips it for a quick local run; CI does not set either.

use crate::util::{cargo, run as sh};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    pub no_lint: bool,
    /// Skip the appliance image and qemu-test (also `KUROKO_NO_QEMU=1`); CI runs them.
    #[arg(long)]
    pub no_qemu: bool,
    /// Arguments for `cargo test` instead of `--workspace` (after `--`), e.g.
    /// `cargo xtask test --no-lint -- -p kuroko-board`; CI passes none.
    #[arg(last = true)]
    pub cargo_test_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut stages: Vec<(&str, f64, bool)> = Vec::new();
    let timed = |stages: &mut Vec<(&str, f64, bool)>,
                 name: &'static str,
                 f: &mut dyn FnMut() -> anyhow::Result<()>| {
        let t = Instant::now();
        let r = f();
        stages.push((name, t.elapsed().as_secs_f64(), r.is_ok()));
        r
    };
    timed(&mut stages, "deps", &mut crate::deps::install)?;
    if !args.no_lint {
        timed(&mut stages, "fmt", &mut || {
            sh(cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
        timed(&mut stages, "clippy", &mut || {
            sh(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--quiet",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }
    let tests = timed(&mut stages, "cargo test", &mut || {
        let mut c = cargo();
        c.args(["test", "--no-fail-fast"]);
        if args.cargo_test_args.is_empty() {
            c.arg("--workspace");
        } else {
            c.args(&args.cargo_test_args);
        }
        sh(&mut c)
    });
    // The live path under faults for two minutes (`cargo xtask soak`); a long run is a
    // separate job. Runs even when the workspace tests failed, like qemu-test.
    let soak = timed(&mut stages, "soak", &mut || {
        crate::soak::run(crate::soak::Args {
            minutes: 2,
            seed: 1,
            keep: false,
        })
    });
    let tests = match (tests, soak) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Err(e)) => Err(e.context("the soak failed")),
        (Err(t), Err(s)) => {
            eprintln!("xtask test: the soak failed too: {s:#}");
            Err(t)
        }
    };
    let skip_qemu =
        args.no_qemu || std::env::var("KUROKO_NO_QEMU").is_ok_and(|v| !v.is_empty() && v != "0");
    let qemu = if skip_qemu {
        eprintln!("xtask test: qemu-test skipped (--no-qemu or KUROKO_NO_QEMU)");
        Ok(())
    } else {
        timed(&mut stages, "qemu-test", &mut || {
            crate::qemu_test::run(crate::qemu_test::Args::default())
        })
    };
    eprintln!("xtask test: stage times");
    for (name, secs, ok) in &stages {
        eprintln!(
            "  {name:<11} {:>5.0} s  {}",
            secs,
            if *ok { "ok" } else { "FAILED" }
        );
    }
    match (tests, qemu) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) if skip_qemu => Err(e),
        (Err(e), Ok(())) => Err(e.context("the workspace tests failed (qemu-test passed)")),
        (Ok(()), Err(e)) => Err(e.context("qemu-test failed (the workspace tests passed)")),
        (Err(t), Err(q)) => {
            eprintln!("xtask test: qemu-test failed too: {q:#}");
            Err(t.context("the workspace tests failed, and qemu-test failed too (see above)"))
        }
    }
}

//! `cargo xtask …`: the repeated jobs of the project.
//!
//! `demo` (the README's main job), `test` (what CI runs), `deps` (install the Debian packages
//! the tests need), `bench <store|capture|analyze|intel|search|fulltext|web>`, `fuzz fulltext`, `soak`, `image`, `update-bundle`, `qemu`, `qemu-test`.

mod bench;
mod capture_port_probe;
mod demo;
mod deps;
mod fuzz;
mod image;
mod qemu;
mod qemu_test;
mod rogue_dhcp;
mod soak;
mod test;
mod update_bundle;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make traffic with real clients, capture it live, analyze it and show the findings.
    Demo(demo::Args),
    /// Run the whole test suite (what CI runs).
    Test(test::Args),
    /// Install the Debian packages the tests and the demo need (root).
    Deps,
    /// Benchmarks, reported as ratios against a reference measured in the same run.
    Bench(bench::Args),
    /// Bounded in-tree fuzzing (`fuzz fulltext --runs N`: the content extractors).
    Fuzz(fuzz::Args),
    /// Build the appliance's disk images (Debian minbase + busybox init + kuroko; root).
    Image(image::Args),
    /// A signed A/B update bundle from a built image's root (`--image DIR --out FILE --key`).
    UpdateBundle(update_bundle::Args),
    /// Boot the appliance image in qemu with a capture NIC on a host network namespace (root).
    Qemu(qemu::Args),
    /// The appliance end to end in qemu: setup over serial, a Telnet session, the finding (root).
    QemuTest(qemu_test::Args),
    /// Live capture and analysis of real-client traffic while links flap, the capture
    /// interface is re-created, processes are killed and the disk fills (root).
    Soak(soak::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo(a) => demo::run(a),
        Command::Test(a) => test::run(a),
        Command::Deps => deps::install(),
        Command::Bench(a) => bench::run(a),
        Command::Fuzz(a) => fuzz::run(a),
        Command::Image(a) => image::run_image(a),
        Command::Qemu(a) => qemu::run_qemu(a),
        Command::UpdateBundle(a) => update_bundle::run(a),
        Command::QemuTest(a) => qemu_test::run(a),
        Command::Soak(a) => soak::run(a),
    }
}

//! `cargo xtask bench <what>`: each benchmark measures a reference in the same run (the
//! disk's raw O_DIRECT write speed, tcpdump on the same interface, tshark on the same pcap)
//! and reports ours as a ratio to it. Nothing here asserts on time.

pub mod alert_sinks;
pub mod analyze;
pub mod capture;
pub mod console;
pub mod fulltext;
pub mod intel;
pub mod live;
pub mod search;
pub mod store;
pub mod trafgen;
pub mod web;

use clap::Subcommand;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand)]
pub enum What {
    /// Segment store import throughput vs raw O_DIRECT write speed.
    Store(store::Args),
    /// Live capture vs stenotype, tcpdump and netsniff-ng on a veth pair (CPU per packet,
    /// loss, bytes on disk).
    Capture(capture::Args),
    /// Capture CPU per packet with and without `kuroko console` drawing in a 160x48 tmux
    /// session on the same store, interleaved (the console's cost to capture).
    Console(console::Args),
    /// Threat intel: matcher memory per indicator, tagging cost with 1 M indicators beside
    /// none (same run), a re-check of N sessions against 100 k new indicators.
    Intel(intel::Args),
    /// Analyzer throughput per core and peak RSS on a generated mixed-traffic pcap, beside
    /// tshark on the same pcap.
    Analyze(analyze::Args),
    /// Time-to-query on the mirror port: seconds from a session's last packet until search,
    /// findings and alerts have it (p50/p99/max), beside the pre-issue-15 cadence.
    Live(live::Args),
    /// Session index: indexing rate, bytes per session, query latency p50/p99.
    Search(search::Args),
    /// Content index beside the session index: mails/s, MB/s of text, index bytes per
    /// byte of text, phrase query p50/p99.
    Fulltext(fulltext::Args),
    /// The web console over HTTPS: login, search and session detail requests/s and
    /// p50/p99, beside `kuroko search` on the same data dir and query.
    Web(web::Args),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Capture(a) => capture::run(a),
        What::Console(a) => console::run(a),
        What::Analyze(a) => analyze::run(a),
        What::Intel(a) => intel::run(a),
        What::Live(a) => live::run(a),
        What::Search(a) => search::run(a),
        What::Fulltext(a) => fulltext::run(a),
        What::Store(a) => store::run(a),
        What::Web(a) => web::run(a),
    }
}

//! `kuroko status --data DIR [--format table|json]`.
//!
//! Status is a list of [`Section`]s, each a JSON object under its own key (`"store"`,
//! later `"capture"`, `"analyzer"`, …) plus the rows of its table. To add a section, write a
//! `fn …_section(&Context) -> Section` and list it in [`sections`]; both renderers pick it
//! up. A section that has nothing to say yet (no capture ran) still appears, with
//! `"present": false`, so scripts can rely on its key.

use super::DataArgs;
use anyhow::Context as _;
use kuroko_model::time::Timestamp;
use kuroko_model::units::{format_bytes, format_decimal_bytes, group_digits};
use kuroko_ring::{StoreError, StoreStatus};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Read every stored packet first and check its checksums (reads the whole ring): damage
    /// in sealed segments that nothing has read since it happened is then counted too
    /// (readers record what they find; see `damaged_packets`).
    #[arg(long)]
    pub verify: bool,
}

/// What every section builder gets.
pub struct Context {
    pub data: PathBuf,
    pub config: kuroko_model::config::Config,
}

/// One part of `status`.
pub struct Section {
    /// JSON key.
    pub key: &'static str,
    /// Table heading.
    pub title: &'static str,
    pub json: Value,
    /// (label, value) rows of the table.
    pub rows: Vec<(String, String)>,
}

/// Every section, in table order.
pub fn sections(ctx: &Context) -> anyhow::Result<Vec<Section>> {
    Ok(vec![
        // Alarms first: what an operator must not miss (latched until acknowledged).
        crate::alarms::status_section(&ctx.data),
        store_section(ctx)?,
        writer_section(&ctx.data),
        disks_section(&ctx.data),
        super::capture::status_section(&ctx.data),
        super::analyze::status_section(&ctx.data),
        super::yara::status_section(&ctx.data),
        super::search::status_section(&ctx.data),
        super::content::status_section(&ctx.data),
        super::intel::status_section(&ctx.data),
        super::web::status_section(&ctx.data, &ctx.config),
        alert_delivery_section(&ctx.data),
    ])
}

/// The `alert_delivery` section: what the last attempts on the mail relay and the syslog
/// collector gave (`alerts/delivery.json`, written by the alert engine), with the reason
/// when they fail and the mails waiting in the outbox.
pub fn alert_delivery_section(data: &std::path::Path) -> Section {
    let (json, rows) = match kuroko_index::alerts::delivery_state(data) {
        Ok(st) => {
            let mut rows = Vec::new();
            for (name, d) in [("mail", &st.mail), ("syslog", &st.syslog)] {
                let Some(d) = d else { continue };
                let state = match (&d.failing_since, &d.last_error) {
                    (Some(_), Some(e)) => format!("FAILING: {e}"),
                    _ => "ok".to_string(),
                };
                let mut v = format!("{} (tls {}): {state}", d.target, d.tls);
                if name == "mail" && d.pending > 0 {
                    v.push_str(&format!("; {} in the outbox", d.pending));
                }
                rows.push((name.to_string(), v));
            }
            if rows.is_empty() {
                rows.push(("state".into(), "nothing delivered yet".into()));
            }
            (serde_json::to_value(&st).unwrap_or(Value::Null), rows)
        }
        Err(e) => (
            serde_json::json!({"error": e.to_string()}),
            vec![("state".into(), format!("unreadable: {e}"))],
        ),
    };
    Section {
        key: "alert_delivery",
        title: "Alert delivery",
        json,
        rows,
    }
}

/// Writer gauges older than this are called stale (a running capture publishes them about
/// once per ring block and on every idle turn).
const WRITER_STALE_NS: u64 = 2_000_000_000;

/// The store writer as the running capture publishes it on the stats page: live write
/// counters (the store's own, in `writer.state`, are republished about once a second) and
/// the backlog.
pub fn writer_section(data: &std::path::Path) -> Section {
    let absent = |why: String| Section {
        key: "writer",
        title: "Store writer (live)",
        json: json!({"present": false}),
        rows: vec![("state".into(), why)],
    };
    let snap = match kuroko_capture::StatsReader::open(data) {
        Ok(r) => r.snapshot(),
        Err(kuroko_capture::stats::StatsError::Missing { .. }) => {
            return absent("no capture has run".into());
        }
        Err(e) => return absent(format!("unreadable: {e}")),
    };
    let Some(w) = snap.writer else {
        return absent("not published by this capture".into());
    };
    let now = kuroko_capture::sys::process::realtime_ns();
    let age_ns = now.saturating_sub(w.updated_ns);
    let live = snap.is_live(now);
    let stale = !live || age_ns > WRITER_STALE_NS;
    let since_start_s = w.updated_ns.saturating_sub(snap.started_ns) as f64 / 1e9;
    let avg = (since_start_s > 0.0).then(|| w.bytes_written as f64 / since_start_s);
    let json = json!({
        "present": true,
        "capture_running": live,
        "updated": rfc3339(Some(w.updated_ns)),
        "age_seconds": age_ns as f64 / 1e9,
        "stale": stale,
        "bytes_written": w.bytes_written,
        "packets_written": w.packets_written,
        "average_write_rate_bytes_per_sec": avg,
        "bytes_in_flight": w.bytes_in_flight,
        "blocks_in_flight": w.blocks_in_flight,
        "bytes_buffered": w.bytes_buffered,
        "backlog_bytes": w.backlog_bytes(),
        "pool_bytes": w.pool_bytes,
        "pool_fraction": w.pool_fraction(),
        // Disk write errors (engineer `store`): packets the capture counted as stored that
        // the disk failed to write.
        "disk_write_errors": snap.disk_errors.write_errors,
        "disk_write_error_packets": snap.disk_errors.lost_packets,
        "disk_last_errno": snap.disk_errors.last_errno,
    });
    let state = if !live {
        format!(
            "capture not running; last published {} ago",
            duration(age_ns as f64 / 1e9)
        )
    } else if stale {
        format!(
            "STALE: the capture's writer last published {} ago (stuck in a write?)",
            duration(age_ns as f64 / 1e9)
        )
    } else {
        format!("live (published {} ago)", duration(age_ns as f64 / 1e9))
    };
    let mut backlog = format!(
        "{} ({} block{} / {} in flight, {} buffered)",
        format_bytes(w.backlog_bytes()),
        w.blocks_in_flight,
        if w.blocks_in_flight == 1 { "" } else { "s" },
        format_bytes(w.bytes_in_flight),
        format_bytes(w.bytes_buffered)
    );
    match (w.pool_fraction(), w.pool_bytes) {
        (Some(f), Some(p)) => backlog.push_str(&format!(
            ", {:.0}% of the {} buffer pool",
            f * 100.0,
            format_bytes(p)
        )),
        _ => backlog.push_str(", buffer pool size not published"),
    }
    let mut rows = vec![
        ("state".into(), state),
        ("backlog".into(), backlog),
        (
            "written".into(),
            format!(
                "{} packets, {} since the capture started{}",
                w.packets_written,
                format_bytes(w.bytes_written),
                avg.map_or(String::new(), |r| format!(
                    " (average {}/s)",
                    format_bytes(r as u64)
                ))
            ),
        ),
    ];
    // ---- disk write errors (engineer `store`) ----
    let d = snap.disk_errors;
    if d.write_errors > 0 {
        rows.push((
            "DISK WRITE ERRORS".into(),
            format!(
                "{} failed write(s), {} packets lost (last: {}); check the disk",
                d.write_errors,
                d.lost_packets,
                std::io::Error::from_raw_os_error(d.last_errno as i32)
            ),
        ));
    }
    Section {
        key: "writer",
        title: "Store writer (live)",
        json,
        rows,
    }
}

/// How long `kuroko status` watches the disks' I/O counters for their utilization.
const UTIL_SAMPLE: std::time::Duration = std::time::Duration::from_millis(100);

/// The disks under the data directory, as far as this machine exposes their health.
pub fn disks_section(data: &std::path::Path) -> Section {
    let first = kuroko_board::DataDisks::discover(data);
    std::thread::sleep(UTIL_SAMPLE);
    let found = kuroko_board::DataDisks::discover(data);
    disks_section_of(&first, &found)
}

/// The disks section from two discoveries [`UTIL_SAMPLE`] apart.
fn disks_section_of(first: &kuroko_board::DataDisks, found: &kuroko_board::DataDisks) -> Section {
    let util = |d: &kuroko_board::DiskHealth| {
        let before = first.disks.iter().find(|x| x.name == d.name)?.io?;
        d.io?.utilization_since(&before, UTIL_SAMPLE)
    };
    let not_exposed = "not exposed";
    let mut rows: Vec<(String, String)> = Vec::new();
    match &found.device {
        Some(dev) => rows.push((
            "file system".into(),
            format!(
                "{} on {dev}; errors recorded: {}",
                found.fs_type.as_deref().unwrap_or("?"),
                found
                    .fs_errors
                    .map_or(not_exposed.to_string(), |n| n.to_string())
            ),
        )),
        None => rows.push((
            "file system".into(),
            found
                .note
                .clone()
                .unwrap_or_else(|| "not on a block device".into()),
        )),
    }
    let mut disks_json = Vec::new();
    for d in &found.disks {
        let u = util(d);
        // What it is and how busy, what it reports, what it does not expose.
        let mut missing: Vec<&str> = Vec::new();
        let mut what = Vec::new();
        let mut put = |v: Option<String>, name: &'static str, out: &mut Vec<String>| match v {
            Some(v) => out.push(v),
            None => missing.push(name),
        };
        let flag =
            |v: Option<bool>, yes: &str, no: &str| v.map(|b| if b { yes } else { no }.to_string());
        put(d.size_bytes.map(format_bytes), "size", &mut what);
        put(
            flag(d.rotational, "rotational", "non-rotational"),
            "rotational",
            &mut what,
        );
        put(
            flag(d.read_only, "READ-ONLY", "read-write"),
            "read-only flag",
            &mut what,
        );
        put(
            u.map(|u| {
                format!(
                    "utilization {:.0}% (over {} ms)",
                    u * 100.0,
                    UTIL_SAMPLE.as_millis()
                )
            }),
            "utilization",
            &mut what,
        );
        if let Some(io) = d.io {
            what.push(format!("queue {}", io.in_flight));
        }
        let mut reports = Vec::new();
        put(
            d.model.as_ref().map(|m| format!("model {m}")),
            "model",
            &mut reports,
        );
        put(
            d.state.as_ref().map(|s| format!("state {s}")),
            "state",
            &mut reports,
        );
        put(
            d.io_errors.map(|n| format!("{n} I/O errors")),
            "I/O errors",
            &mut reports,
        );
        put(
            d.io_timeouts.map(|n| format!("{n} I/O timeouts")),
            "timeouts",
            &mut reports,
        );
        put(
            d.temperature_c.map(|c| format!("{c:.0} °C")),
            "temperature",
            &mut reports,
        );
        rows.push((d.name.clone(), what.join("; ")));
        if !reports.is_empty() {
            rows.push((format!("  {} reports", d.name), reports.join("; ")));
        }
        match (&d.smart, &d.smart_error) {
            (Some(log), _) => rows.push((format!("  {} SMART", d.name), smart_summary(log))),
            (None, Some(why)) => rows.push((
                format!("  {} SMART log", d.name),
                format!("{not_exposed}: {why}"),
            )),
            (None, None) => missing.push("SMART log"),
        }
        if !missing.is_empty() {
            rows.push((format!("  {} {not_exposed}", d.name), missing.join(", ")));
        }
        disks_json.push(json!({
            "name": d.name,
            "model": d.model,
            "size_bytes": d.size_bytes,
            "rotational": d.rotational,
            "read_only": d.read_only,
            "state": d.state,
            "state_ok": d.state_ok(),
            "io_errors": d.io_errors,
            "io_timeouts": d.io_timeouts,
            "temperature_c": d.temperature_c,
            "in_flight": d.io.map(|io| io.in_flight),
            "utilization": u,
            "nvme_smart": d.smart.as_ref().map(smart_json),
            "nvme_smart_error": d.smart_error,
        }));
    }
    let problems = found.problems();
    if !problems.is_empty() {
        rows.push(("PROBLEMS".into(), problems.join("; ")));
    }
    Section {
        key: "disks",
        title: "Disks (data directory)",
        json: json!({
            "present": found.device.is_some(),
            "device": found.device,
            "fs_type": found.fs_type,
            "fs_errors": found.fs_errors,
            "note": found.note,
            "disks": disks_json,
            "problems": problems,
        }),
        rows,
    }
}

/// An NVMe SMART log in one line, the way a technician reads it.
fn smart_summary(l: &kuroko_board::SmartLog) -> String {
    let warnings = l.warnings();
    format!(
        "wear {}% used; spare {}% (threshold {}%); media errors {}; unsafe shutdowns {}; \
         written {}; read {}; {} h on; {} power cycles; {} error log entries; critical warning: {}",
        l.percentage_used,
        l.available_spare,
        l.spare_threshold,
        group_digits(l.media_errors),
        group_digits(l.unsafe_shutdowns),
        format_decimal_bytes(l.bytes_written()),
        format_decimal_bytes(l.bytes_read()),
        group_digits(l.power_on_hours),
        group_digits(l.power_cycles),
        group_digits(l.error_log_entries),
        if warnings.is_empty() {
            "none".to_string()
        } else {
            warnings.join(", ")
        }
    )
}

/// The log's fields for scripts. Counters are 128-bit in the log; JSON numbers here are
/// 64-bit, so they saturate (a drive would need 18 EB written to get there).
fn smart_json(l: &kuroko_board::SmartLog) -> Value {
    let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    json!({
        "critical_warning": l.critical_warning,
        "critical_warnings": l.warnings(),
        "temperature_c": l.temperature_c(),
        "available_spare_pct": l.available_spare,
        "spare_threshold_pct": l.spare_threshold,
        "percentage_used": l.percentage_used,
        "bytes_read": sat(l.bytes_read()),
        "bytes_written": sat(l.bytes_written()),
        "power_cycles": sat(l.power_cycles),
        "power_on_hours": sat(l.power_on_hours),
        "unsafe_shutdowns": sat(l.unsafe_shutdowns),
        "media_errors": sat(l.media_errors),
        "error_log_entries": sat(l.error_log_entries),
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    if !args.data.data.is_dir() {
        anyhow::bail!(
            "{} does not exist; import or capture into it first",
            args.data.data.display()
        );
    }
    let ctx = Context {
        data: args.data.data.clone(),
        config,
    };
    if args.verify {
        verify_store(&ctx.data)?;
    }
    let sections = sections(&ctx)?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&to_json(&sections))?),
        Format::Table => print!("{}", to_table(&sections)),
    }
    Ok(())
}

/// `--verify`: one scan of the whole ring, which records the damage it finds in sealed
/// segments for the store section (`kuroko_ring::damage_log`); says what it read.
fn verify_store(data: &std::path::Path) -> anyhow::Result<()> {
    let reader = match kuroko_ring::StoreReader::open(data) {
        Ok(r) => r,
        Err(StoreError::NotAStore { .. }) => return Ok(()),
        Err(e) => return Err(e).context("cannot read the store to verify it"),
    };
    let report = reader
        .scan(kuroko_ring::Position::ORIGIN, |_| {
            std::ops::ControlFlow::Continue(())
        })
        .context("cannot read the store to verify it")?;
    let lost: u64 = report.damage.iter().map(|d| d.packets).sum();
    eprintln!(
        "kuroko: verified {} packets in {} segments: {} damaged place(s){}",
        report.packets,
        reader.segments().len(),
        report.damage.len(),
        if lost > 0 {
            format!(", {lost} packets lost there")
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn to_json(sections: &[Section]) -> Value {
    let mut obj = serde_json::Map::new();
    for s in sections {
        obj.insert(s.key.to_string(), s.json.clone());
    }
    Value::Object(obj)
}

pub fn to_table(sections: &[Section]) -> String {
    let width = sections
        .iter()
        .flat_map(|s| s.rows.iter().map(|(k, _)| k.chars().count()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(s.title);
        out.push('\n');
        for (k, v) in &s.rows {
            out.push_str(&format!("  {k:<width$}  {v}\n"));
        }
    }
    out
}

fn rfc3339(ns: Option<u64>) -> Value {
    ns.map_or(Value::Null, |n| {
        Value::String(Timestamp(n as i64).to_rfc3339())
    })
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86400.0)
    }
}

/// The segment store: disk use, retention window, writes, I/O mode.
pub fn store_section(ctx: &Context) -> anyhow::Result<Section> {
    let st = match kuroko_ring::store_status(&ctx.data) {
        Ok(st) => st,
        Err(StoreError::NotAStore { .. }) => {
            return Ok(Section {
                key: "store",
                title: "Store",
                json: json!({"present": false}),
                rows: vec![("segments".into(), "no segment store yet".into())],
            });
        }
        Err(e) => return Err(e).context("cannot read the store's status"),
    };
    let mut section = store_section_of(&st);
    section.rows.push((
        "scrub".into(),
        scrub_row(&st, ctx.config.storage.scrub_rate),
    ));
    // An existing ring keeps the geometry it was created with; say so when the config
    // now asks for another (resizing would drop data).
    if let Ok(opts) = super::import::store_options(&ctx.config, &ctx.data)
        && (opts.budget != st.budget_bytes || opts.segment_size != st.segment_size)
    {
        section.rows.push((
            "note".into(),
            format!(
                "the config asks for a {} budget of {} segments; this ring keeps the geometry it was created with",
                format_bytes(opts.budget),
                format_bytes(opts.segment_size)
            ),
        ));
    }
    Ok(section)
}

fn store_section_of(st: &StoreStatus) -> Section {
    let mut json = serde_json::to_value(st).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut json {
        m.insert("present".into(), Value::Bool(true));
        m.insert("oldest_packet".into(), rfc3339(st.oldest_packet_ns));
        m.insert("newest_packet".into(), rfc3339(st.newest_packet_ns));
        m.insert("last_write".into(), rfc3339(st.last_write_wall_ns));
        if let (Some(sc), Some(Value::Object(j))) = (&st.scrub, m.get_mut("scrub")) {
            let t = |ns: u64| rfc3339((ns > 0).then_some(ns));
            j.insert("last_full_pass".into(), t(sc.last_full_pass_wall_ns));
            j.insert("pass_started".into(), t(sc.pass_started_wall_ns));
            j.insert("updated".into(), t(sc.updated_wall_ns));
        }
    }
    let time = |ns: Option<u64>| ns.map_or("-".to_string(), |n| Timestamp(n as i64).to_rfc3339());
    let mut rows: Vec<(String, String)> = vec![
        (
            "segments".into(),
            format!(
                "{} used, {} free of {} × {} ({} open)",
                st.segments_used,
                st.segments_free,
                st.segments_total,
                format_bytes(st.segment_size),
                st.segments_open
            ),
        ),
        (
            "disk".into(),
            format!(
                "{} on disk, budget {} ({:.0}% of the ring filled)",
                format_bytes(st.disk_bytes),
                format_bytes(st.budget_bytes),
                st.fill_percent
            ),
        ),
        (
            "stored".into(),
            format!(
                "{} packets, {}",
                st.stored_packets,
                format_bytes(st.stored_bytes)
            ),
        ),
        ("oldest packet".into(), time(st.oldest_packet_ns)),
        ("newest packet".into(), time(st.newest_packet_ns)),
        (
            "retention window".into(),
            st.retention_seconds.map_or("-".into(), duration),
        ),
        (
            "written".into(),
            format!(
                "{} packets, {} since the store was created",
                st.packets_written,
                format_bytes(st.bytes_written)
            ),
        ),
        (
            "fill rate".into(),
            st.write_rate_bytes_per_sec
                .map_or("-".into(), |r| format!("{}/s", format_bytes(r as u64))),
        ),
        ("io".into(), st.io_mode.clone()),
    ];
    for f in &st.io_fallbacks {
        rows.push(("io fallback".into(), f.clone()));
    }
    rows.push((
        "errors".into(),
        format!(
            "{} write errors ({} packets lost to them), {} backpressure drops, {} packets too large, {} damaged blocks ({} packets lost in sealed segments)",
            st.write_errors,
            st.write_error_packets,
            st.backpressure_drops,
            st.rejected_packets,
            st.damaged_blocks,
            st.damaged_packets
        ),
    ));
    if !st.writer_state_detail.is_empty() {
        rows.push(("COUNTERS STALE".into(), st.writer_state_detail.clone()));
    }
    // Damage is never shown as free space or hidden in a total.
    if st.damaged_segments > 0 || st.damaged_slots > 0 {
        rows.push((
            "DAMAGED".into(),
            format!(
                "{} segment(s) with damaged blocks or failed writes, {} slot(s) with an unreadable header; `kuroko-inspect` shows where",
                st.damaged_segments, st.damaged_slots
            ),
        ));
    }
    if st.segments_recovered > 0 {
        rows.push((
            "recovered".into(),
            format!(
                "{} segment(s) sealed by crash recovery",
                st.segments_recovered
            ),
        ));
    }
    rows.push((
        "writer".into(),
        st.writer_pid
            .map_or("not running".into(), |p| format!("running (pid {p})")),
    ));
    Section {
        key: "store",
        title: "Store",
        json,
        rows,
    }
}

/// The background scrub in one line: the last full pass, where the pass under way is, the
/// rate (see `kuroko_ring::scrub`).
fn scrub_row(st: &StoreStatus, configured_mb_s: f64) -> String {
    let time = |ns: u64| Timestamp(ns as i64).to_rfc3339();
    let rate = kuroko_ring::scrub::rate_from_mb_s(configured_mb_s);
    let Some(sc) = &st.scrub else {
        return if rate == 0 {
            "off (storage.scrub_rate = 0): damage in sealed segments is found only when read".into()
        } else {
            format!(
                "not run yet (at {}/s in `analyze --follow`)",
                format_bytes(rate)
            )
        };
    };
    let last = if sc.last_full_pass_wall_ns > 0 {
        format!(
            "last full pass ended {} ({} pass(es))",
            time(sc.last_full_pass_wall_ns),
            sc.passes
        )
    } else {
        "no full pass yet".into()
    };
    let now = if sc.pass_started_wall_ns > 0 {
        format!(
            "; pass since {} at segment seq {} ({} segments, {} checked)",
            time(sc.pass_started_wall_ns),
            sc.next_seq,
            sc.pass_segments,
            format_bytes(sc.pass_bytes)
        )
    } else {
        String::new()
    };
    let behind = match &st.scrub_overdue {
        Some(kuroko_ring::scrub::Behind::Overdue {
            seq,
            sealed_wall_ns,
            bound_secs,
            ..
        }) => format!(
            "; BEHIND: segment seq {seq}, sealed {}, not checked since (bound {}; alarm scrub_behind)",
            time(*sealed_wall_ns),
            duration(*bound_secs as f64)
        ),
        _ => String::new(),
    };
    format!(
        "{last}{now}; {} damaged place(s) found; {}/s{}{behind}",
        sc.damage_found,
        format_bytes(sc.rate_bytes_per_sec),
        if rate == 0 { ", now off" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuroko_board::{DataDisks, DiskHealth, SmartLog};

    fn disks() -> DataDisks {
        DataDisks {
            device: Some("nvme0n1p2".into()),
            fs_type: Some("ext4".into()),
            fs_errors: Some(0),
            disks: vec![
                DiskHealth {
                    name: "nvme0n1".into(),
                    state: Some("live".into()),
                    smart: Some(SmartLog {
                        critical_warning: 0b0000_0101,
                        temperature_k: 318,
                        available_spare: 4,
                        spare_threshold: 10,
                        percentage_used: 91,
                        data_units_read: 7_812_500,
                        data_units_written: 24_023_438,
                        power_cycles: 41,
                        power_on_hours: 5123,
                        unsafe_shutdowns: 2,
                        media_errors: 3,
                        error_log_entries: 1_000_000,
                    }),
                    ..Default::default()
                },
                DiskHealth {
                    name: "nvme1n1".into(),
                    smart_error: Some("/dev/nvme1: Permission denied (os error 13)".into()),
                    ..Default::default()
                },
                DiskHealth {
                    name: "vdb".into(),
                    ..Default::default()
                },
            ],
            note: None,
        }
    }

    #[test]
    fn nvme_smart_rows_json_and_problems() {
        let d = disks();
        let s = disks_section_of(&d, &d);
        let row = |label: &str| {
            s.rows
                .iter()
                .find(|(l, _)| l == label)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no row {label:?} in {:?}", s.rows))
        };
        assert_eq!(
            row("  nvme0n1 SMART"),
            "wear 91% used; spare 4% (threshold 10%); media errors 3; unsafe shutdowns 2; \
             written 12.3 TB; read 4.0 TB; 5,123 h on; 41 power cycles; \
             1,000,000 error log entries; critical warning: spare below threshold, \
             reliability degraded"
        );
        assert_eq!(
            row("  nvme1n1 SMART log"),
            "not exposed: /dev/nvme1: Permission denied (os error 13)"
        );
        assert!(row("  vdb not exposed").ends_with(", SMART log"));
        assert!(!row("  nvme0n1 not exposed").contains("SMART"));
        assert_eq!(
            row("PROBLEMS"),
            "nvme0n1: NVMe critical warning: spare below threshold, reliability degraded; \
             nvme0n1: 91% of rated wear used; nvme0n1: 3 media and data integrity errors"
        );
        let j = &s.json["disks"];
        let n = &j[0]["nvme_smart"];
        assert_eq!(n["percentage_used"], 91);
        assert_eq!(n["bytes_written"], 24_023_438u64 * 512_000);
        assert_eq!(n["power_on_hours"], 5123);
        assert_eq!(n["critical_warnings"][1], "reliability degraded");
        assert!((n["temperature_c"].as_f64().unwrap() - 44.85).abs() < 1e-9);
        assert_eq!(j[1]["nvme_smart"], Value::Null);
        assert_eq!(
            j[1]["nvme_smart_error"],
            "/dev/nvme1: Permission denied (os error 13)"
        );
        assert_eq!(j[2]["nvme_smart"], Value::Null);
        assert_eq!(j[2]["nvme_smart_error"], Value::Null);
    }

    #[test]
    fn counters_beyond_64_bits_saturate_in_json() {
        let l = SmartLog {
            data_units_written: u128::MAX,
            power_on_hours: u128::from(u64::MAX) + 1,
            ..Default::default()
        };
        let j = smart_json(&l);
        assert_eq!(j["bytes_written"], u64::MAX);
        assert_eq!(j["power_on_hours"], u64::MAX);
        assert_eq!(j["temperature_c"], Value::Null, "0 K: not reported");
        // The table keeps the full value.
        assert!(smart_summary(&l).contains("18,446,744,073,709,551,616 h on"));
    }
}

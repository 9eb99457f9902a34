//! `kuroko web --data DIR [--listen ADDR:PORT]`: the analysts' HTTPS console (`kuroko-web`).
//! `--fingerprint` prints the certificate's SHA-256 fingerprint and exits;
//! `--audit-verify` checks the audit log's hash chain (exit status 3 when it is broken).
//! Also started by `kuroko run` as a supervised child.

use super::DataArgs;
use anyhow::Context;

/// Exit status of `--audit-verify` when the chain is broken.
pub const AUDIT_BROKEN_EXIT: i32 = 3;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub data: DataArgs,
    /// Address and port to listen on (default: `[web] listen`, else the management
    /// address, else 127.0.0.1, on port 8443).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Print the certificate's SHA-256 fingerprint (generating the certificate if needed)
    /// and exit.
    #[arg(long, conflicts_with = "audit_verify")]
    pub fingerprint: bool,
    /// Check the audit log's hash chain and exit (status 3 when it is broken).
    #[arg(long)]
    pub audit_verify: bool,
    /// Minutes of inactivity after which a login session ends.
    #[arg(long, default_value_t = 30, value_name = "MIN")]
    pub idle_minutes: u64,
}

/// The web console's part of `kuroko status`: where it listens and the certificate's
/// fingerprint (to compare with the browser's), read without generating anything.
pub fn status_section(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
) -> super::status::Section {
    let listen = kuroko_web::listen_addr(None, config)
        .map(|a| format!("https://{a}/"))
        .unwrap_or_else(|e| format!("{e:#}"));
    let users = kuroko_web::users::UserStore::new(&kuroko_web::web_dir(data))
        .load()
        .map(|f| f.users.len());
    let (fp, fp_err) = match kuroko_web::tls::current_fingerprint(data, config) {
        None => (None, None),
        Some(Ok(f)) => (Some(f), None),
        Some(Err(e)) => (None, Some(format!("{e:#}"))),
    };
    let mut rows = vec![("url".to_string(), listen.clone())];
    rows.push((
        "certificate".to_string(),
        match (&fp, &fp_err) {
            (Some(f), _) => format!("SHA-256 {f}"),
            (None, Some(e)) => format!("unreadable: {e}"),
            (None, None) => "none yet (made at the console's first start)".to_string(),
        },
    ));
    rows.push((
        "users".to_string(),
        match &users {
            Ok(0) => "none (add the first admin with `kuroko user add NAME --role admin`)".into(),
            Ok(n) => n.to_string(),
            Err(e) => format!("unreadable: {e}"),
        },
    ));
    super::status::Section {
        key: "web",
        title: "Web console",
        json: serde_json::json!({
            "url": listen,
            "fingerprint": fp,
            "fingerprint_error": fp_err,
            "users": users.as_ref().ok(),
        }),
        rows,
    }
}

/// The sections of `kuroko status` for the console's 統計 page.
fn status_sections(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
) -> Result<Vec<kuroko_web::StatusSection>, String> {
    let ctx = super::status::Context {
        data: data.to_path_buf(),
        config: config.clone(),
    };
    let sections = super::status::sections(&ctx).map_err(|e| format!("{e:#}"))?;
    Ok(sections
        .into_iter()
        .map(|s| kuroko_web::StatusSection {
            key: s.key.to_string(),
            title: s.title.to_string(),
            rows: s.rows,
            json: s.json,
        })
        .collect())
}

/// The query of `kuroko search` ([`super::search::parse_query`]) for the console, with the
/// parser's column when the text does not parse.
fn prepare_query(
    data: &std::path::Path,
    config: &kuroko_model::config::Config,
    text: &str,
) -> Result<kuroko_index::Query, kuroko_web::QueryError> {
    super::search::parse_query(data, config, text).map_err(|e| match e
        .downcast_ref::<kuroko_index::query::QueryError>(
    ) {
        Some(q) => kuroko_web::QueryError {
            message: q.message.clone(),
            column: Some(q.column),
        },
        None => kuroko_web::QueryError {
            message: format!("{e:#}"),
            column: None,
        },
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.data.load_config()?;
    let data = &args.data.data;
    let web_dir = kuroko_web::web_dir(data);
    if args.audit_verify {
        let log = kuroko_web::audit::AuditLog::new(&web_dir);
        let v = log
            .verify()
            .with_context(|| format!("cannot read {}", log.path().display()))?;
        if v.ok {
            println!(
                "audit log intact: {} lines ({})",
                v.lines,
                log.path().display()
            );
            return Ok(());
        }
        println!(
            "audit log BROKEN at line {}: {} ({})",
            v.broken_line.unwrap_or(0),
            v.problem.unwrap_or_default(),
            log.path().display()
        );
        return Err(super::ExitCode(AUDIT_BROKEN_EXIT).into());
    }
    let listen = kuroko_web::listen_addr(args.listen.as_deref(), &config)?;
    let names = vec![listen.ip().to_string()];
    let id = kuroko_web::identity(data, &config, &names)?;
    if args.fingerprint {
        println!("{}", id.fingerprint);
        return Ok(());
    }
    let users = kuroko_web::users::UserStore::new(&web_dir);
    if users.load()?.users.is_empty() {
        eprintln!(
            "kuroko web: no users yet; create the first admin with `kuroko user add NAME --role admin --data {}`",
            data.display()
        );
    }
    let opts = kuroko_web::Options {
        data: data.clone(),
        config,
        listen,
        idle_timeout: std::time::Duration::from_secs(args.idle_minutes.max(1) * 60),
        store_summary: super::report::store_summary,
        status: status_sections,
        prepare_query,
        snippets: super::content::snippets,
        alarms: |data| crate::alarms::status_section(data).json,
        acknowledge: crate::alarms::acknowledge,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .context("cannot start the web server's runtime")?;
    rt.block_on(async move {
        let tls = id.config.clone();
        // Bind first, then announce: a script that waits for the line can connect at once.
        let server = tokio::spawn(kuroko_web::api::run(opts, tls));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if server.is_finished() {
            return server.await.context("web server")?;
        }
        println!("kuroko web: https://{listen}/");
        println!(
            "kuroko web: certificate SHA-256 fingerprint {}",
            id.fingerprint
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        server.await.context("web server")?
    })
}

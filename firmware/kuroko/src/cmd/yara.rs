//! `kuroko yara check --data DIR [--config FILE]`: compiles the YARA rule set the analyzer
//! would use (the `[intel] yara_rules` files and `DATA/intel/*/yara/`) and says which files
//! it holds, or fails with every error as `file:line: message`. Also the `yara` section
//! of `kuroko status` (the set in force, the last compilation's error).

use super::DataArgs;
use kuroko_yara::scanner::read_state;
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Compile the rule set and report errors with file and line.
    Check(DataArgs),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Sub::Check(d) => check(&d),
    }
}

fn check(d: &DataArgs) -> anyhow::Result<()> {
    let config = d.load_config()?;
    let files = kuroko_yara::rule_files(&config.intel.yara_rules, Some(&d.data))?;
    if files.is_empty() {
        println!("no YARA rule files ([intel] yara_rules and DATA/intel/*/yara/ are empty)");
        return Ok(());
    }
    kuroko_yara::compile(&files).map_err(|e| anyhow::anyhow!("YARA rules: {e}"))?;
    println!("{} YARA rule files compile:", files.len());
    for f in &files {
        println!("  {}", f.display());
    }
    Ok(())
}

/// The warning `analyze` prints when the rule set in force is not the configured one.
pub fn warning(data: &std::path::Path) -> Option<String> {
    let state = read_state(data)?;
    let error = state.error?;
    Some(if state.compiled_at.is_some() {
        format!(
            "YARA rules changed but do not compile; the set compiled at {} stays in force: {error}",
            state.compiled_at.unwrap_or_default()
        )
    } else {
        format!("YARA rules do not compile; no YARA scanning: {error}")
    })
}

/// `status`'s `yara` section: `present` false until the analyzer compiled a set once.
pub fn status_section(data: &std::path::Path) -> super::status::Section {
    let Some(st) = read_state(data) else {
        return super::status::Section {
            key: "yara",
            title: "YARA",
            json: json!({"present": false}),
            rows: vec![("rules".into(), "none configured".into())],
        };
    };
    let mut rows = vec![
        ("rule files".to_string(), st.files.len().to_string()),
        (
            "compiled".into(),
            st.compiled_at.clone().unwrap_or_else(|| "never".into()),
        ),
    ];
    if let Some(e) = &st.error {
        rows.push((
            "error".into(),
            if st.compiled_at.is_some() {
                format!("{e} (the last good set stays in force)")
            } else {
                e.clone()
            },
        ));
    }
    super::status::Section {
        key: "yara",
        title: "YARA",
        json: json!({
            "present": true,
            "files": st.files,
            "compiled_at": st.compiled_at,
            "generation": st.generation,
            "error": st.error,
            "in_force": st.compiled_at.is_some(),
        }),
        rows,
    }
}

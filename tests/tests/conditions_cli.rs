//! `kuroko conditions`: the alert conditions from the command line, on the real binary.
//! The same store and audit trail as the web console's 条件リスト page: a refused change
//! changes nothing and writes no audit line; every change is one audit line, in order, in
//! a chain `kuroko web --audit-verify` accepts; a damaged store is reported, never
//! overwritten, while the shipped conditions keep being listed.

use kuroko_tests::kuroko::{binary, parse_jsonl};
use std::path::Path;
use std::process::{Command, Output};

fn kuroko(data: &Path, args: &[&str]) -> Output {
    let (sub, rest) = args.split_first().expect("a subcommand");
    let mut cmd = Command::new(binary().expect("kuroko binary"));
    cmd.arg(sub);
    let mut rest = rest.to_vec();
    // `conditions ACTION [ID] --data DIR …`
    let at = rest
        .iter()
        .position(|a| a.starts_with("--"))
        .unwrap_or(rest.len());
    let tail = rest.split_off(at);
    cmd.args(&rest)
        .arg("--data")
        .arg(data)
        .args(&tail)
        .env_remove("SUDO_USER")
        .env("USER", "tester");
    cmd.output().expect("run kuroko")
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = kuroko(data, args);
    assert!(
        out.status.success(),
        "kuroko {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(data: &Path, args: &[&str]) -> String {
    let out = kuroko(data, args);
    assert!(!out.status.success(), "kuroko {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn audit_actions(data: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(data.join("web/audit.jsonl")).unwrap_or_default();
    parse_jsonl(&text)
        .expect("audit lines are JSON")
        .iter()
        .map(|v| {
            assert_eq!(v["user"], "cli:tester", "{v}");
            v["action"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

fn listed(data: &Path) -> Vec<serde_json::Value> {
    parse_jsonl(&ok(data, &["conditions", "list", "--json"])).expect("list --json")
}

#[test]
fn conditions_are_changed_checked_and_audited_from_the_command_line() {
    let base = std::env::temp_dir().join(format!("kt-{}-conditions-cli", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();

    // The shipped conditions are listed before anything is stored.
    let shipped = listed(&data);
    assert!(!shipped.is_empty());
    assert!(shipped.iter().all(|c| c["source"] == "shipped"));
    let shipped_name = shipped[0]["name"].as_str().unwrap().to_string();

    let id = ok(
        &data,
        &[
            "conditions",
            "add",
            "--name",
            "telnet login",
            "--query",
            "protocol:telnet",
            "--severity",
            "critical",
        ],
    );
    assert_eq!(id.trim(), "c1");

    // Refused changes: a query that does not parse (with its column), a name already
    // taken, an unknown id, a shipped condition deleted. None writes to the store or log.
    let store_before = std::fs::read(data.join("alerts/conditions.json")).unwrap();
    let err = refused(
        &data,
        &[
            "conditions",
            "add",
            "--name",
            "broken",
            "--query",
            "protocol:(telnet",
        ],
    );
    assert!(err.contains("column 10"), "{err}");
    let err = refused(
        &data,
        &[
            "conditions",
            "add",
            "--name",
            "telnet login",
            "--query",
            "port:23",
        ],
    );
    assert!(err.contains("telnet login"), "{err}");
    let err = refused(&data, &["conditions", "remove", "c9"]);
    assert!(err.contains("c9"), "{err}");
    let err = refused(&data, &["conditions", "remove", &shipped_name]);
    assert!(err.contains("switched off"), "{err}");
    assert_eq!(
        std::fs::read(data.join("alerts/conditions.json")).unwrap(),
        store_before
    );
    assert_eq!(audit_actions(&data), ["condition_create"]);

    ok(
        &data,
        &[
            "conditions",
            "edit",
            "c1",
            "--name",
            "telnet",
            "--query",
            "port:23",
        ],
    );
    ok(&data, &["conditions", "disable", "c1"]);
    ok(&data, &["conditions", "disable", &shipped_name]);
    let now = listed(&data);
    let c1 = now.iter().find(|c| c["id"] == "c1").expect("c1 listed");
    assert_eq!(c1["name"], "telnet");
    assert_eq!(c1["query"], "port:23");
    assert_eq!(c1["enabled"], false);
    assert_eq!(c1["registrant"], "cli:tester");
    let s = now
        .iter()
        .find(|c| c["name"] == shipped_name.as_str())
        .unwrap();
    assert_eq!(s["enabled"], false);
    ok(&data, &["conditions", "enable", &shipped_name]);
    ok(&data, &["conditions", "remove", "c1"]);
    assert!(listed(&data).iter().all(|c| c["source"] == "shipped"));
    assert_eq!(
        audit_actions(&data),
        [
            "condition_create",
            "condition_edit",
            "condition_disable",
            "condition_disable",
            "condition_enable",
            "condition_delete"
        ]
    );
    let verify = Command::new(binary().unwrap())
        .args(["web", "--audit-verify", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit chain: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // A damaged store: listed with the shipped conditions and an error; never replaced.
    let damaged = b"{ this is not json";
    std::fs::write(data.join("alerts/conditions.json"), damaged).unwrap();
    let out = kuroko(&data, &["conditions", "list", "--json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not parse"));
    assert_eq!(
        parse_jsonl(&String::from_utf8_lossy(&out.stdout))
            .unwrap()
            .len(),
        shipped.len()
    );
    refused(
        &data,
        &["conditions", "add", "--name", "x", "--query", "port:1"],
    );
    assert_eq!(
        std::fs::read(data.join("alerts/conditions.json")).unwrap(),
        damaged
    );

    let _ = std::fs::remove_dir_all(&base);
}

//! `kuroko setup` on a real terminal (tmux): no echo of the password, Tab completion,
//! backspace, and the change saved — what a technician on a serial line sees. A fresh box
//! is claimed with the setup token from its label (provisioned by `kuroko setup
//! --provision-token`), never echoed; a wrong token sets no password.

use kuroko_tests::tmux::Tmux;
use std::time::Duration;

#[test]
fn setup_shell_on_a_terminal() -> anyhow::Result<()> {
    let bin = kuroko_tests::kuroko::binary()?;
    let tmp = tempfile::tempdir()?;
    let sys = tmp.path().join("sys");
    let f = kuroko_board::discover::fake::FakeSys::new(&sys)?;
    f.nic("eth0", Some("virtio_net"), "52:54:00:00:00:01", true)?;
    f.nic("eth1", Some("virtio_net"), "52:54:00:00:00:02", false)?;
    f.cpus("0-1")?;
    let config = tmp.path().join("kuroko.toml");
    // Provisioning: the unit's setup token, hashed on the config disk, in clear on the label.
    let label = tmp.path().join("label.txt");
    let out = std::process::Command::new(&bin)
        .arg("setup")
        .arg("--config")
        .arg(&config)
        .arg("--provision-token")
        .arg(&label)
        .output()?;
    anyhow::ensure!(out.status.success(), "provisioning failed: {out:?}");
    let token = std::fs::read_to_string(&label)?
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .to_string();
    let cmd = format!(
        "{} setup --config {} --sys {}",
        bin.display(),
        config.display(),
        sys.display()
    );
    let t = Tmux::start(&cmd, 80, 24)?;
    // A fresh box: the token first; a wrong one sets no password.
    t.wait_for("setup token:", Duration::from_secs(10))?;
    t.type_text("WRONG-TOKEN\r")?;
    t.wait_for("Wrong setup token.", Duration::from_secs(10))?;
    t.type_text(&format!("{token}\r"))?;
    t.wait_for("new password:", Duration::from_secs(10))?;
    t.type_text("sekret-pass\r")?;
    t.wait_for("again:", Duration::from_secs(5))?;
    t.type_text("sekret-pass\r")?;
    t.wait_for("kuroko>", Duration::from_secs(20))?;
    // Tab completes a unique prefix.
    t.type_text("har")?;
    t.key("Tab")?;
    t.wait_for("kuroko> hardware", Duration::from_secs(5))?;
    t.key("Enter")?;
    t.wait_for("eth1         virtio_net", Duration::from_secs(5))?;
    // Backspace edits the line.
    t.type_text("set site Labx")?;
    t.key("BSpace")?;
    t.type_text(" 2\r")?;
    t.wait_for("saved: site name", Duration::from_secs(5))?;
    t.type_text("exit\r")?;
    t.wait_for("Logged out.", Duration::from_secs(5))?;
    let screen = t.capture()?;
    assert!(
        !screen.contains(&token),
        "the setup token was echoed:\n{screen}"
    );
    assert!(
        !screen.contains("sekret-pass"),
        "the password was echoed:\n{screen}"
    );
    let saved = kuroko_model::config::Config::load(&config)?;
    assert_eq!(saved.site.name, "Lab 2");
    Ok(())
}

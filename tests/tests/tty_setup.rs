//! `kuroko setup` on a real terminal (tmux): no echo of the password, Tab completion,
//! backspace, and the change saved — what a technician on a serial line sees.

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
    let cmd = format!(
        "{} setup --config {} --sys {}",
        bin.display(),
        config.display(),
        sys.display()
    );
    let t = Tmux::start(&cmd, 80, 24)?;
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
        !screen.contains("sekret-pass"),
        "the password was echoed:\n{screen}"
    );
    let saved = kuroko_model::config::Config::load(&config)?;
    assert_eq!(saved.site.name, "Lab 2");
    Ok(())
}

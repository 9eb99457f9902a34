//! The setup shell driven by a script, as a technician would type it, against a fake /sys
//! and a recording system (no host address or clock is touched).

use kuroko_board::discover::fake::FakeSys;
use kuroko_model::config::Config;
use kuroko_setup::lineedit::LineEditor;
use kuroko_setup::system::Recorder;
use kuroko_setup::{Paths, Shell};

fn site(root: &std::path::Path) -> Paths {
    let sys = root.join("sys");
    let f = FakeSys::new(&sys).unwrap();
    f.nic("eth0", Some("virtio_net"), "52:54:00:00:00:01", true)
        .unwrap();
    f.nic("eth1", Some("virtio_net"), "52:54:00:00:00:02", true)
        .unwrap();
    f.nic("lo", None, "00:00:00:00:00:00", true).unwrap();
    f.cpus("0-1").unwrap();
    f.disk("vda", 1 << 21, false)
        .unwrap()
        .disk("vdb", 1 << 15, false)
        .unwrap()
        .disk("vdc", 1 << 23, false)
        .unwrap();
    Paths {
        config: root.join("config/kuroko.toml"),
        credential: root.join("config/technician.hash"),
        sys,
    }
}

fn session(paths: &Paths, sys: &mut Recorder, script: &str) -> String {
    let mut out = Vec::new();
    {
        let ed = LineEditor::new(script.as_bytes(), &mut out, false);
        Shell::new(paths.clone(), sys, ed).run().unwrap();
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn a_technician_sets_up_the_box() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let data = tmp.path().join("data");
    let mut sys = Recorder {
        clock: 1_795_000_000,
        ..Default::default()
    };
    sys.rx.insert("eth1".into(), vec![100, 250]);
    let script = "technician1\ntechnician1\n\
         hardware\n\
         set board qemu\n\
         hardware\n\
         set capture eth9\n\
         set capture eth1\n\
         set management eth1\n\
         set management eth0\n\
         set address 192.0.2.10/24 192.0.2.1\n\
         set internal 10.0.0.0/8,bogus\n\
         set internal 10.0.0.0/8,192.168.0.0/16\n\
         set vpn 10.8.0.0/24\n\
         set timezone Mars/Olympus\n\
         set timezone Asia/Tokyo\n\
         set site Tokyo HQ\n\
         set ntp 192.0.2.123\n\
         set time 2026-11-18T09:30:00+09:00\n\
         frobnicate\n\
         selftest 5\n\
         exit\n";
    // The data directory is part of the config; put it in the test's tree first.
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let out = session(&paths, &mut sys, script);

    assert!(out.contains("Password set."), "{out}");
    assert!(
        !out.contains("technician1"),
        "the password was echoed:\n{out}"
    );
    assert!(
        std::fs::read_to_string(&paths.credential)
            .unwrap()
            .starts_with("$argon2id$")
    );
    assert!(out.contains("Board profile: none set"), "{out}");
    assert!(
        out.contains("Board profile qemu: matches this machine"),
        "{out}"
    );
    assert!(out.contains("no NIC named eth9; this machine has: eth0 (virtio_net, link up), eth1 (virtio_net, link up), lo (virtual, link up)"), "{out}");
    assert!(
        out.contains("`management.interface`: `eth1` is also a capture interface"),
        "{out}"
    );
    assert!(out.contains("`bogus` is not an address or CIDR"), "{out}");
    assert!(
        out.contains("not saved:") && out.contains("Mars/Olympus"),
        "{out}"
    );
    assert!(out.contains("unknown command `frobnicate`"), "{out}");
    assert!(out.contains("ok   eth1: 150 packets in 5 s"), "{out}");
    assert!(out.contains("ok   disk:"), "{out}");
    assert!(out.contains("ok   clock: 2026-11-18T00:30:00"), "{out}");
    assert!(out.contains("Self-test passed."), "{out}");

    let c = Config::load(&paths.config).unwrap();
    assert_eq!(c.capture.interfaces, vec!["eth1"]);
    assert_eq!(c.management.interface, "eth0");
    assert_eq!(c.management.address, "192.0.2.10/24");
    assert_eq!(c.management.board, "qemu");
    assert_eq!(
        c.site.internal_networks,
        vec!["10.0.0.0/8", "192.168.0.0/16"]
    );
    assert_eq!(c.site.vpn_pools, vec!["10.8.0.0/24"]);
    assert_eq!(c.site.timezone, "Asia/Tokyo");
    assert_eq!(c.site.name, "Tokyo HQ");
    assert_eq!(c.management.ntp, vec!["192.0.2.123"]);
    assert_eq!(
        sys.actions,
        vec![
            "address eth0 192.0.2.10/24 192.0.2.1",
            "ntp 192.0.2.123",
            "clock 1794961800", // date -u -d 2026-11-18T00:30:00Z +%s
            "sleep 5",
        ]
    );
}

#[test]
fn wrong_passwords_are_refused_and_reset_needs_confirmation() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let mut sys = Recorder::default();
    session(&paths, &mut sys, "goodpassword\ngoodpassword\nexit\n");
    let out = session(&paths, &mut sys, "nope\nnope2\nnope3\nstatus\n");
    assert_eq!(out.matches("Wrong password.").count(), 3, "{out}");
    assert!(out.contains("Too many wrong passwords."), "{out}");
    assert!(
        !sys.actions.iter().any(|a| a.starts_with("kuroko")),
        "{:?}",
        sys.actions
    );

    let out = session(
        &paths,
        &mut sys,
        "goodpassword\nstatus\nfindings\nfactory-reset\nno\nfactory-reset\nRESET\n",
    );
    assert!(out.contains("ran kuroko status"), "{out}");
    assert!(out.contains("ran kuroko findings"), "{out}");
    assert!(out.contains("Cancelled."), "{out}");
    assert!(out.contains("Factory reset done."), "{out}");
    assert!(!paths.credential.exists());
}

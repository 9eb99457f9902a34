//! The setup shell driven by a script, as a technician would type it, against a fake /sys
//! and a recording system (no host address or clock is touched).

use kuroko_board::discover::fake::FakeSys;
use kuroko_model::config::Config;
use kuroko_setup::lineedit::LineEditor;
use kuroko_setup::system::{DefaultRoute, Recorder};
use kuroko_setup::token;
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
    let paths = Paths {
        config: root.join("config/kuroko.toml"),
        credential: root.join("config/technician.hash"),
        sys,
    };
    // The unit's token, as provisioning leaves it on the config disk.
    std::fs::create_dir_all(root.join("config")).unwrap();
    token::store(&token::path_for(&paths.credential), TOKEN).unwrap();
    paths
}

/// The setup token on the test unit's label.
const TOKEN: &str = "K7QX2-M9TVA-4HJPR-WC3ZN";

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
    let child = |role: &str, pid: u32, cap_eff: u64| kuroko_setup::privcheck::Child {
        role: role.into(),
        pid,
        uids: [990; 4],
        cap_eff,
        cap_prm: cap_eff,
        no_new_privs: true,
        seccomp: 2,
    };
    let mut sys = Recorder {
        clock: 1_795_000_000,
        children: vec![child("capture", 41, 0), child("analyze", 42, 0)],
        ..Default::default()
    };
    sys.rx.insert("eth1".into(), vec![100, 250]);
    let script = "K7QX2-M9TVA-4HJPR-WC3ZN\ntechnician1\ntechnician1\n\
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
    assert!(
        out.contains("ok   privilege capture (pid 41): uid 990")
            && out.contains("ok   privilege analyze (pid 42): uid 990"),
        "{out}"
    );
    assert!(out.contains("ok   file modes:"), "{out}");
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
    // An analyzer running as root with every capability, and a pcap others can read, fail
    // the self-test and are named.
    let mut root = child("analyze", 43, 0x1ff_ffff_ffff);
    root.uids = [0; 4];
    sys.children = vec![child("capture", 41, 0), root];
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("leak.pcap"), "x").unwrap();
    std::fs::set_permissions(
        data.join("leak.pcap"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = session(&paths, &mut sys, "technician1\nselftest 1\nexit\n");
    assert!(
        out.contains("FAIL privilege analyze (pid 43): runs as root")
            && out.contains("holds capabilities"),
        "{out}"
    );
    assert!(
        out.contains("FAIL file modes: 1 of") && out.contains("leak.pcap 0644"),
        "{out}"
    );
    // (and eth1, whose counter no longer moves)
    assert!(out.contains("Self-test: 3 problem(s)."), "{out}");
    std::fs::remove_file(data.join("leak.pcap")).unwrap();
}

#[test]
fn wrong_passwords_are_refused_and_reset_needs_confirmation() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let mut sys = Recorder::default();
    session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\nexit\n",
    );
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
    // Factory reset erases the captured data too (issue 21: it used to keep it).
    let data = Config::default().storage.data_dir;
    assert!(
        sys.actions.contains(&format!("erase {}", data.display())),
        "{:?}",
        sys.actions
    );
}

#[test]
fn decommission_asks_then_erases_with_a_certificate_and_logs_out() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let data = tmp.path().join("data");
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder::default();
    let out = session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\ndecommission\nno\ndecommission /mnt/stick\nDECOMMISSION\nstatus\n",
    );
    assert!(out.contains("Cancelled; nothing erased."), "{out}");
    assert!(out.contains("Decommissioned"), "{out}");
    assert_eq!(
        sys.actions,
        vec![format!(
            "kuroko decommission --data {} --config {} --credential {} --stop --yes --to /mnt/stick",
            data.display(),
            paths.config.display(),
            paths.credential.display()
        )],
        "one decommission, and the shell logged out after it (no status)"
    );
}

/// On the appliance nothing mounts a stick by itself: `decommission` without a mount point
/// mounts the plugged-in stick as `export` does, writes the certificate there and unmounts
/// it (before, it asked `kuroko decommission --usb` to find a mounted stick, and there never
/// was one, so decommission could not run from the shell).
#[test]
fn decommission_mounts_the_stick_for_the_certificate_and_unmounts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let f = FakeSys::new(&paths.sys).unwrap();
    // qemu's floppy drive and an empty card reader are removable too (the first qemu-test
    // run tried to mount /dev/fd0); the stick is the removable disk with a medium.
    f.disk("fd0", 8, true).unwrap();
    f.disk("sda", 0, true).unwrap();
    f.disk("sdb", 1 << 16, true).unwrap();
    std::fs::create_dir_all(paths.sys.join("block/sdb/sdb1")).unwrap();
    let data = tmp.path().join("data");
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder::default();
    let out = session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\ndecommission\nDECOMMISSION\n",
    );
    assert!(out.contains("Decommissioned"), "{out}");
    assert!(out.contains("can be removed"), "{out}");
    assert_eq!(
        sys.actions,
        vec![
            "mount /dev/sdb1 /run/kuroko-usb nosuid,nodev,noexec,noatime".to_string(),
            format!(
                "kuroko decommission --data {} --config {} --credential {} --stop --yes --to /run/kuroko-usb",
                data.display(),
                paths.config.display(),
                paths.credential.display()
            ),
            "umount /run/kuroko-usb".to_string(),
        ]
    );
}

#[test]
fn capture_on_the_management_port_is_refused_and_dhcp_is_explicit() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let mut sys = Recorder::default();
    let out = session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\n\
         set board qemu\n\
         set capture eth0\n\
         set management eth0\n\
         set address 192.0.2.10\n\
         set address 192.0.2.10/24 gateway\n\
         set address dhcp\n\
         exit\n",
    );
    // The board profile names eth0 the management port even before `set management`.
    assert!(
        out.contains("eth0 is the management port: capture on it would silence it"),
        "{out}"
    );
    assert!(
        out.contains("`192.0.2.10` is not an address with its prefix"),
        "{out}"
    );
    assert!(out.contains("`gateway` is not a gateway address"), "{out}");
    assert!(
        out.contains("DHCP on the management port starts at the next boot."),
        "{out}"
    );
    let c = Config::load(&paths.config).unwrap();
    assert!(
        c.capture.interfaces.is_empty(),
        "{:?}",
        c.capture.interfaces
    );
    assert_eq!(c.management.address, "dhcp");
    // Nothing applied by hand: DHCP is the boot's job, the bad addresses never ran.
    assert!(sys.actions.is_empty(), "{:?}", sys.actions);
}

#[test]
fn wrong_passwords_keep_costing_more_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let mut sys = Recorder::default();
    session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\nexit\n",
    );
    session(&paths, &mut sys, "nope1\nnope2\nnope3\n");
    // The shell was respawned (or the box rebooted): a new Shell, a new Recorder.
    let mut sys = Recorder::default();
    let out = session(&paths, &mut sys, "nope4\ngoodpassword\nexit\n");
    assert!(
        out.contains("3 wrong entries: wait 30 s for the next try."),
        "{out}"
    );
    assert!(
        out.contains("4 wrong entries: wait 60 s for the next try."),
        "{out}"
    );
    assert!(out.contains("Logged out."), "{out}");
    assert_eq!(
        sys.actions,
        vec!["sleep 30", "sleep 2", "sleep 60"],
        "the waits happened"
    );
    // The right password cleared the count.
    let mut sys = Recorder::default();
    let out = session(&paths, &mut sys, "goodpassword\nexit\n");
    assert!(!out.contains("wait"), "{out}");
}

#[test]
fn a_damaged_credential_is_recovered_by_erasing_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let data = tmp.path().join("data");
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder::default();
    session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\nexit\n",
    );
    std::fs::write(&paths.credential, "not a hash\n").unwrap();
    // Declining leaves everything as it is.
    let out = session(&paths, &mut sys, "whatever\nno\n");
    assert!(out.contains("is damaged"), "{out}");
    assert!(out.contains("Nothing erased"), "{out}");
    assert!(paths.config.exists());
    let out = session(
        &paths,
        &mut sys,
        "whatever\nERASE\nnewpassword1\nnewpassword1\nexit\n",
    );
    assert!(out.contains("Erased."), "{out}");
    assert!(out.contains("Password set."), "{out}");
    assert_eq!(sys.actions, vec![format!("erase {}", data.display())]);
    assert!(
        !paths.config.exists(),
        "the configuration stays after recovery"
    );
    assert!(kuroko_setup::credential::verify(&paths.credential, "newpassword1").unwrap());
}

#[test]
fn export_is_encrypted_to_the_recipient_set_at_setup() {
    const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let data = tmp.path().join("data");
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder::default();
    let out = session(
        &paths,
        &mut sys,
        &format!(
            "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\n\
             export\n\
             set recipient age1nope\n\
             set recipient {KEY}\n\
             export\n\
             export plaintext /mnt/stick\n\
             exit\n"
        ),
    );
    assert!(out.contains("No recipient set"), "{out}");
    assert!(out.contains("`age1nope` is not an age public key"), "{out}");
    assert!(out.contains("Recipient saved"), "{out}");
    let cfg = paths.config.display().to_string();
    let d = data.display().to_string();
    assert_eq!(
        sys.actions,
        vec![
            format!("kuroko export --data {d} --usb --recipient {KEY} --config {cfg}"),
            format!("kuroko export --data {d} --to /mnt/stick --plaintext --config {cfg}"),
        ]
    );
}

#[test]
fn a_fresh_box_cannot_be_claimed_without_its_setup_token() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let data = tmp.path().join("data");
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder {
        clock: 1_795_000_000,
        ..Default::default()
    };
    // Whoever reaches the serial port first, without the label: no password can be set.
    let out = session(
        &paths,
        &mut sys,
        "goodpassword\ngoodpassword\nAAAAA-BBBBB-CCCCC-DDDDD\nstatus\n",
    );
    assert!(out.contains("Type the setup token"), "{out}");
    assert!(out.contains("Too many wrong setup tokens."), "{out}");
    assert!(!out.contains("new password:"), "{out}");
    assert!(!paths.credential.exists(), "claimed without the token");
    assert!(
        sys.actions.iter().all(|a| a.starts_with("sleep")),
        "{:?}",
        sys.actions
    );
    // The wrong tokens count in the persistent back-off, like wrong passwords.
    let out = session(&paths, &mut sys, "nope\n");
    assert!(out.contains("3 wrong entries: wait 30 s"), "{out}");
    // Typed from the label in lower case with spaces: accepted.
    let out = session(
        &paths,
        &mut sys,
        "k7qx2 m9tva 4hjpr wc3zn\ngoodpassword\ngoodpassword\nexit\n",
    );
    assert!(out.contains("Password set."), "{out}");
    assert!(kuroko_setup::credential::verify(&paths.credential, "goodpassword").unwrap());
    // Factory reset keeps the unit's token: the next claim needs it again.
    session(&paths, &mut sys, "goodpassword\nfactory-reset\nRESET\n");
    assert!(!paths.credential.exists());
    assert!(token::path_for(&paths.credential).exists());
    let out = session(&paths, &mut sys, "goodpassword\ngoodpassword\n");
    assert!(out.contains("Wrong setup token."), "{out}");
    assert!(!paths.credential.exists());
}

#[test]
fn a_box_whose_token_was_removed_is_claimed_only_by_erasing_the_data() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let data = tmp.path().join("data");
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder::default();
    session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\nexit\n",
    );
    // Offline, the credential and the token are deleted from the config disk.
    std::fs::remove_file(&paths.credential).unwrap();
    std::fs::remove_file(token::path_for(&paths.credential)).unwrap();
    let out = session(&paths, &mut sys, "newpassword1\nnewpassword1\n");
    assert!(out.contains("setup token"), "{out}");
    assert!(out.contains("is missing"), "{out}");
    assert!(out.contains("Nothing erased"), "{out}");
    assert!(!paths.credential.exists());
    assert!(sys.actions.is_empty(), "{:?}", sys.actions);
    let out = session(
        &paths,
        &mut sys,
        "ERASE\nnewpassword1\nnewpassword1\nexit\n",
    );
    assert!(out.contains("Erased."), "{out}");
    assert_eq!(sys.actions, vec![format!("erase {}", data.display())]);
    assert!(!paths.config.exists());
    assert!(kuroko_setup::credential::verify(&paths.credential, "newpassword1").unwrap());
}

#[test]
fn export_mounts_the_stick_safely_writes_the_bundle_and_unmounts_it() {
    const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    // A USB stick with one partition.
    let f = FakeSys::new(&paths.sys).unwrap();
    f.disk("sdb", 1 << 16, true).unwrap();
    std::fs::create_dir_all(paths.sys.join("block/sdb/sdb1")).unwrap();
    let data = tmp.path().join("data");
    let mut c = Config::default();
    c.storage.data_dir = data.clone();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder::default();
    let out = session(
        &paths,
        &mut sys,
        &format!(
            "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\n\
             set recipient {KEY}\n\
             export\n\
             exit\n"
        ),
    );
    assert!(out.contains("can be removed"), "{out}");
    let cfg = paths.config.display().to_string();
    let d = data.display().to_string();
    assert_eq!(
        sys.actions,
        vec![
            "mount /dev/sdb1 /run/kuroko-usb nosuid,nodev,noexec,noatime".to_string(),
            format!(
                "kuroko export --data {d} --to /run/kuroko-usb --recipient {KEY} --config {cfg}"
            ),
            "umount /run/kuroko-usb".to_string(),
        ]
    );
}

/// `show ports` says what each port holds on the network: the capture port must show no
/// address and no default route (the qemu test reads this line after sending it RAs, ARP,
/// pings and DHCP offers), the management port its address and its default route's gateway
/// (the qemu test's rogue DHCP server must not have moved it).
#[test]
fn show_ports_lists_what_each_port_holds_on_the_network() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let mut c = Config::default();
    c.storage.data_dir = tmp.path().join("data");
    c.capture.interfaces = vec!["eth1".into()];
    c.management.interface = "eth0".into();
    c.save(&paths.config).unwrap();
    let mut sys = Recorder::default();
    sys.addrs.insert(
        "eth0".into(),
        vec!["10.0.2.15/24".into(), "fe80::5054:ff:fe6b:1/64".into()],
    );
    sys.default_routes = vec![DefaultRoute::new("eth0", Some("10.0.2.2"))];
    let script = "K7QX2-M9TVA-4HJPR-WC3ZN\ntechnician1\ntechnician1\nshow ports\nexit\n";
    let out = session(&paths, &mut sys, script);
    let lines: Vec<&str> = out.lines().collect();
    let after = |name: &str| {
        let i = lines
            .iter()
            .position(|l| l.trim_start().starts_with(name) && l.contains("link"))
            .unwrap_or_else(|| panic!("no {name} line:\n{out}"));
        lines[i + 1].trim().to_string()
    };
    assert_eq!(
        after("eth0"),
        "10.0.2.15/24 fe80::5054:ff:fe6b:1/64, default route via 10.0.2.2",
        "{out}"
    );
    assert_eq!(after("eth1"), "no address", "{out}");
}

/// `update FILE` takes a name on the stick (no path out of it), mounts the stick, and a
/// refusal (here: this host was not booted by the A/B initramfs) is said, logged in
/// `boot/update.log` beside the config, and the stick is unmounted all the same.
#[test]
fn update_takes_a_name_on_the_stick_and_logs_a_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = site(tmp.path());
    let f = FakeSys::new(&paths.sys).unwrap();
    f.disk("sdb", 1 << 16, true).unwrap();
    let mut sys = Recorder::default();
    let out = session(
        &paths,
        &mut sys,
        "K7QX2-M9TVA-4HJPR-WC3ZN\ngoodpassword\ngoodpassword\n\
         update ../etc/shadow\n\
         update kuroko-update-2.kub\n\
         exit\n",
    );
    assert!(out.contains("update takes the bundle's file name"), "{out}");
    assert!(out.contains("update refused: "), "{out}");
    assert!(!paths.config.parent().unwrap().join("boot/state").exists());
    assert_eq!(
        sys.actions,
        vec![
            "mount /dev/sdb /run/kuroko-usb nosuid,nodev,noexec,noatime".to_string(),
            "umount /run/kuroko-usb".to_string(),
        ]
    );
    let log = std::fs::read_to_string(tmp.path().join("config/boot/update.log")).unwrap();
    assert!(log.contains("update kuroko-update-2.kub: refused"), "{log}");
}

//! Helpers of the namespace tests: a veth pair in a network namespace of the test's own
//! (named with the pid, deleted on drop), frames sent from one end, test frames.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test creates network namespaces and raw sockets: run it as root (CI does)"
    );
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` (iproute2) must be installed");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A namespace with a veth pair `va` <-> `vb` (MTU 9000, IPv6 off); deleted on drop.
pub struct Ns(pub String);
impl Ns {
    pub fn new(tag: &str) -> Ns {
        require_root();
        let name = format!("kt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Ns(name);
        let n = ns.0.as_str();
        ip(&[
            "-n", n, "link", "add", "va", "mtu", "9000", "type", "veth", "peer", "name", "vb",
            "mtu", "9000",
        ]);
        for s in [
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ] {
            let _ = Command::new("ip")
                .args(["netns", "exec", n, "sysctl", "-qw", s])
                .output();
        }
        ip(&["-n", n, "link", "set", "va", "up"]);
        ip(&["-n", n, "link", "set", "vb", "up"]);
        ns
    }
    /// Moves the calling thread into the namespace.
    pub fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.0)).expect("netns file");
        // SAFETY: a valid namespace fd; affects only the calling thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    }
}
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Sends `frames` out of `ifname` from inside `ns`, one every `gap`.
pub fn send_frames(ns: &Ns, ifname: &str, frames: &[Vec<u8>], gap: Duration) {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let name = std::ffi::CString::new(ifname).unwrap();
            // SAFETY: NUL-terminated name.
            let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert!(idx > 0, "no interface {ifname}");
            // SAFETY: plain socket call, checked.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            // SAFETY: zeroed sockaddr_ll is valid.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = idx as i32;
            sll.sll_halen = 6;
            for f in frames {
                // SAFETY: buffer and address are valid for the call.
                let n = unsafe {
                    libc::sendto(
                        fd,
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        (&sll as *const libc::sockaddr_ll).cast(),
                        size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                assert_eq!(
                    n,
                    f.len() as isize,
                    "sendto {} bytes: {}",
                    f.len(),
                    std::io::Error::last_os_error()
                );
                std::thread::sleep(gap);
            }
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
        });
    });
}

pub const SRC_MAC: [u8; 6] = [0x02, 0x6b, 0x72, 0x6b, 0x00, 0x01];

/// An Ethernet/IPv4/UDP frame of exactly `len` bytes for flow `flow`, sequence `seq`, with
/// optional VLAN tags (TPID, TCI) outermost first.
pub fn frame(flow: u8, seq: u16, len: usize, tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = vec![0x02, 0x6b, 0x72, 0x6b, 0x00, 0x02];
    f.extend(SRC_MAC);
    for (tpid, tci) in tags {
        f.extend(tpid.to_be_bytes());
        f.extend(tci.to_be_bytes());
    }
    f.extend([0x08, 0x00]);
    let ip_len = (len - f.len()) as u16;
    f.extend([
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend([10, 0, 0, flow, 10, 0, 1, flow]);
    f.extend((4000 + flow as u16).to_be_bytes());
    f.extend(53u16.to_be_bytes());
    f.extend((ip_len - 20).to_be_bytes());
    f.extend([0, 0]);
    f.extend(flow.to_be_bytes());
    f.extend(seq.to_be_bytes());
    let mut x = u32::from(flow) * 7919 + u32::from(seq);
    while f.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        f.push((x >> 16) as u8);
    }
    f
}

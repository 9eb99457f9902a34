//! Shared by the `capture_*` tests: a capture site (two namespaces joined by a veth pair),
//! frames whose every byte the test chose, `kuroko capture` as a process, store read-back.

#![allow(dead_code)]

use anyhow::Context;
use kuroko_capture::{CaptureState, StatsReader, StatsSnapshot};
use kuroko_tests::netns::{Netns, Veth, veth};
use kuroko_tests::proc::{Server, wait_until};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Source MAC of every frame the tests send (locally administered).
pub const SRC_MAC: [u8; 6] = [0x02, 0x6b, 0x72, 0x6b, 0x00, 0x01];
pub const SRC_MAC_TEXT: &str = "02:6b:72:6b:00:01";
pub const DST_MAC: [u8; 6] = [0x02, 0x6b, 0x72, 0x6b, 0x00, 0x02];

/// `tx` (namespace of the sender, interface `vtx`) <-> `rx` (capture side, `vrx`), MTU
/// 9000, IPv6 off so nothing but the test's frames crosses the link.
pub struct CaptureSite {
    pub tx: Netns,
    pub rx: Netns,
    _veth: Veth,
    pub dir: TempDir,
}

impl CaptureSite {
    pub fn new(tag: &str) -> anyhow::Result<CaptureSite> {
        let tx = Netns::create(&format!("{tag}t"))?;
        let rx = Netns::create(&format!("{tag}r"))?;
        tx.disable_ipv6()?;
        rx.disable_ipv6()?;
        let v = veth(Some(&tx), "vtx", Some(&rx), "vrx", 9000)?;
        let dir = TempDir::new(tag)?;
        Ok(CaptureSite {
            tx,
            rx,
            _veth: v,
            dir,
        })
    }

    pub fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    /// Starts `kuroko capture --iface vrx --data DIR extra…` in the capture namespace and
    /// waits until its stats page says it is running.
    pub fn start_capture(&self, extra: &[&str]) -> anyhow::Result<Server> {
        let bin = kuroko_tests::kuroko::binary()?;
        let bin = bin.to_string_lossy().into_owned();
        let data = self.data().to_string_lossy().into_owned();
        let mut argv = vec![bin.as_str(), "capture", "--iface", "vrx", "--data", &data];
        argv.extend_from_slice(extra);
        let log = self.dir.0.join("capture.log");
        let mut server = Server::spawn("kuroko capture", self.rx.name(), &argv, &log)?;
        let data = self.data();
        let ok = wait_until("kuroko capture to start", Duration::from_secs(60), || {
            StatsReader::open(&data).is_ok_and(|r| r.snapshot().state == CaptureState::Running)
        });
        if let Err(e) = ok {
            server.ensure_running()?;
            return Err(e.context(server.log_text()));
        }
        Ok(server)
    }

    pub fn stats(&self) -> anyhow::Result<StatsSnapshot> {
        Ok(StatsReader::open(&self.data())?.snapshot())
    }

    /// Waits until the capture accounted for at least `n` packets (stored or dropped).
    pub fn wait_accounted(&self, n: u64) -> anyhow::Result<()> {
        wait_until(
            &format!("{n} packets accounted for"),
            Duration::from_secs(30),
            || {
                self.stats()
                    .is_ok_and(|s| s.total_packets() + s.total_drops().total() >= n)
            },
        )
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> anyhow::Result<TempDir> {
        let p = std::env::temp_dir().join(format!("kt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(TempDir(p))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An Ethernet/IPv4/UDP frame of exactly `len` bytes for flow `flow` (its own addresses
/// and ports), sequence number `seq` in the payload, optional VLAN tags (TPID, TCI) in
/// wire order (outermost first). The rest of the payload is a pseudo-random pattern.
pub fn frame(flow: u8, seq: u16, len: usize, tags: &[(u16, u16)]) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend(DST_MAC);
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
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend([10, 0, 0, flow, 10, 0, 1, flow]);
    f.extend((40_000 + u16::from(flow)).to_be_bytes());
    f.extend(5000u16.to_be_bytes());
    f.extend((ip_len - 20).to_be_bytes());
    f.extend([0, 0]);
    f.push(flow);
    f.extend(seq.to_be_bytes());
    let mut x = u32::from(flow) * 7919 + u32::from(seq) * 104_729 + len as u32;
    while f.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        f.push((x >> 16) as u8);
    }
    f
}

/// Flow id and sequence of a frame built by [`frame`] (skipping any VLAN tags).
pub fn flow_and_seq(f: &[u8]) -> Option<(u8, u16)> {
    let mut at = 12;
    while matches!(f.get(at..at + 2), Some([0x81, 0x00]) | Some([0x88, 0xa8])) {
        at += 4;
    }
    let udp_payload = at + 2 + 20 + 8;
    let flow = *f.get(udp_payload)?;
    let seq = u16::from_be_bytes([*f.get(udp_payload + 1)?, *f.get(udp_payload + 2)?]);
    Some((flow, seq))
}

/// Every stored frame sent by the tests (source MAC [`SRC_MAC`]), in store order, with
/// its record's interface, wire length and flags.
pub struct StoredFrame {
    pub data: Vec<u8>,
    pub iface: u16,
    pub wire_len: u32,
    pub flags: u16,
    pub ts_ns: u64,
}

pub fn read_store(data: &Path) -> anyhow::Result<Vec<StoredFrame>> {
    let reader = kuroko_ring::StoreReader::open(data)?;
    let mut out = Vec::new();
    let report = reader.scan(kuroko_ring::Position::ORIGIN, |p| {
        if p.data.get(6..12) == Some(&SRC_MAC[..]) {
            out.push(StoredFrame {
                data: p.data.to_vec(),
                iface: p.iface,
                wire_len: p.wire_len,
                flags: p.flags,
                ts_ns: p.ts_ns,
            });
        }
        ControlFlow::Continue(())
    })?;
    anyhow::ensure!(
        report.damage.is_empty(),
        "the store reports damage: {:?}",
        report.damage
    );
    Ok(out)
}

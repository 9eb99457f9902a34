//! Step 1 of zero-copy capture: can io_uring write a TPACKET_V3 ring block to an O_DIRECT
//! file straight from the ring mapping (registered as a fixed buffer, or plain)? Prints the
//! answer and fails if neither works.

use std::time::Duration;

use kuroko_capture::sys::packet::{RingOptions, RxRing, ifindex};
use kuroko_capture::sys::zc;

mod common;
use common::{Ns, frame, send_frames};

#[test]
fn a_ring_block_is_written_to_an_o_direct_file_from_the_ring_mapping() {
    let ns = Ns::new("zcprobe");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("blocks");
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter();
            let opts = RingOptions {
                ifindex: ifindex("vb").unwrap(),
                block_size: 1 << 20,
                block_count: 4,
                retire_ms: 20,
                fanout: None,
                filter: Vec::new(),
                hardware_timestamps: false,
                promiscuous: true,
            };
            let mut ring = RxRing::open("vb", &opts).unwrap();
            let frames: Vec<Vec<u8>> = (0..50).map(|i| frame(1, i, 1400, &[])).collect();
            send_frames(&ns, "va", &frames, Duration::ZERO);
            let mut tries = 0;
            while ring.ready_blocks() == 0 && tries < 100 {
                ring.wait(50);
                tries += 1;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(&path)
                .unwrap();
            let readback = std::fs::File::open(&path).unwrap();
            let r = zc::probe(&mut ring, &file, &readback).expect("a retired block");
            eprintln!("kernel {}: {r:#?}", uname());
            assert!(
                r.fixed_equal || r.plain_equal,
                "neither a fixed nor a plain O_DIRECT write from the ring mapping worked: {r:?}"
            );
        });
    });
}

use std::os::unix::fs::OpenOptionsExt;

fn uname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

//! The inspector on an intact store and on one with a flipped byte.

use kuroko_ring::segment::BlockEvent;
use kuroko_ring::{RecordMeta, SegmentWriter, StoreOptions, StoreReader};
use std::os::unix::fs::FileExt;
use std::process::Command;

fn inspect(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kuroko-inspect"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn reports_headers_blocks_and_a_flipped_byte_with_its_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let opts = StoreOptions {
        budget: 4 * 256 * 1024 + kuroko_ring::META_RESERVE,
        segment_size: 256 * 1024,
        chunk_size: 64 * 1024,
        ..Default::default()
    };
    let mut w = SegmentWriter::open(dir, &opts).unwrap();
    for i in 0..1200u64 {
        let p = vec![i as u8; 300 + (i % 200) as usize];
        w.append(
            &RecordMeta {
                ts_ns: 1_000_000_000 * i,
                wire_len: p.len() as u32,
                ..Default::default()
            },
            &[&p],
        )
        .unwrap();
    }
    w.close().unwrap();
    let d = dir.to_str().unwrap();
    let (code, out) = inspect(&[d, "--blocks", "--records", "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("sealed, seq 1") && out.contains("open, seq 2"),
        "{out}"
    );
    assert!(out.contains("no damage found"));
    assert!(out.contains("crc ok") && out.contains("record @"));

    let reader = StoreReader::open(dir).unwrap();
    let seg = reader.segments()[0].clone();
    let map = reader.map(&seg).unwrap();
    let off = map
        .blocks()
        .filter_map(|e| match e {
            BlockEvent::Valid(b) => Some(b.offset),
            _ => None,
        })
        .nth(1)
        .unwrap();
    let path = map.path().to_path_buf();
    drop(map);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, off + 200).unwrap();
    f.write_all_at(&[b[0] ^ 1], off + 200).unwrap();

    let (code, out) = inspect(&[d]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("at offset {off}: payload fails its checksum")),
        "{out}"
    );
    assert!(out.contains("1 damaged place(s) found"));
    // A single file works too, and --raw lists block headers of any generation.
    let (code, out) = inspect(&[path.to_str().unwrap(), "--raw"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("raw block headers") && out.contains("header crc ok"),
        "{out}"
    );
}

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
    // Segments are numbered from the store's random base (`store.meta`) up, one after another.
    let base: u64 = out
        .split("seq base ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seq base in {out}"));
    assert!(
        out.contains(&format!("sealed, seq {base}"))
            && out.contains(&format!("open, seq {}", base + 1)),
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
    // Format 2: only the first unit (4 KiB of records with 64 KiB chunks) of the block
    // fails; the records outside it are verified and read.
    let (lost, count) = lost_records_of_block(dir, off);
    assert!(lost > 0 && lost < count, "{lost} of {count}");
    assert!(
        out.contains(&format!(
            "at offset {off}: unit(s) 0 of 16 (4 KiB each; payload bytes 0..4096) fail their checksum: {lost} of {count} records lost, {} verified and read",
            count - lost
        )),
        "{out}"
    );
    assert!(out.contains("1 damaged place(s) found"));
    // The lost records still parse (the flipped byte is in packet data): they are
    // counted, and --salvage writes them, marked unverified.
    let count = lost;
    assert!(
        out.contains(&format!("salvageable: {count} of the {count} lost records")),
        "{out}"
    );
    let pcap = dir.join("salvaged.pcap");
    let (code, out) = inspect(&[d, "--salvage", pcap.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("{count} UNVERIFIED record(s)")),
        "{out}"
    );
    assert_eq!(pcap_packets(&std::fs::read(&pcap).unwrap()), count as usize);
    // A single file works too, and --raw lists block headers of any generation.
    let (code, out) = inspect(&[path.to_str().unwrap(), "--raw"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("raw block headers") && out.contains("header crc ok"),
        "{out}"
    );
}

/// (records lost, records held) of the partly damaged block at `off` of the first segment.
fn lost_records_of_block(dir: &std::path::Path, off: u64) -> (u32, u32) {
    let reader = StoreReader::open(dir).unwrap();
    let seg = reader.segments()[0].clone();
    let map = reader.map(&seg).unwrap();
    map.blocks()
        .find_map(|e| match e {
            BlockEvent::Partial { block, bad_units } if block.offset == off => {
                let n = block.header.record_count.get();
                Some((n - block.salvaged(bad_units), n))
            }
            _ => None,
        })
        .unwrap()
}

/// Packets in a pcap file (24-byte file header, 16-byte record headers).
fn pcap_packets(b: &[u8]) -> usize {
    let (mut at, mut n) = (24, 0);
    while at + 16 <= b.len() {
        let incl = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + incl;
        n += 1;
    }
    n
}

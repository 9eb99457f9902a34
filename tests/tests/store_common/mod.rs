//! Store helpers shared by the fault suites (`mod store_common;` in each test binary).

#![allow(dead_code)]

use std::path::Path;

/// Flips one byte in the records of the first block of sealed segment `seq_index` (0 =
/// the oldest sealed one). Returns the segment's slot file.
pub fn flip_in_sealed(dir: &Path, seq_index: usize) -> std::path::PathBuf {
    flip_in(dir, |segs| segs.iter().filter(|s| !s.open).nth(seq_index))
}

fn flip_in(
    dir: &Path,
    pick: impl Fn(&[kuroko_ring::SegmentInfo]) -> Option<&kuroko_ring::SegmentInfo>,
) -> std::path::PathBuf {
    use kuroko_ring::segment::BlockEvent;
    use std::os::unix::fs::FileExt;
    let reader = kuroko_ring::StoreReader::open(dir).unwrap();
    let seg = pick(reader.segments()).expect("a segment").clone();
    let map = reader.map(&seg).unwrap();
    let Some(BlockEvent::Valid(b)) = map.blocks().next() else {
        panic!("no valid first block")
    };
    let at = b.offset + kuroko_ring::format::BLOCK_HEADER_LEN as u64 + 100;
    let path = map.path().to_path_buf();
    drop(map);
    drop(reader);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut x = [0u8];
    f.read_exact_at(&mut x, at).unwrap();
    f.write_all_at(&[x[0] ^ 0x01], at).unwrap();
    path
}

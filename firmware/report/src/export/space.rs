//! Free space on the target, checked before anything is written.

use std::path::Path;

/// Bytes free for an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// What a bundle of `bytes` in `files` files needs: each file rounded up to 4 KiB blocks,
/// plus directories and a 1 MiB + 2 % margin for file-system metadata.
pub fn needed(bytes: u64, files: u64) -> u64 {
    let blocks = bytes + files * 4096 + 16 * 4096;
    blocks + (1 << 20) + blocks / 50
}

//! The update bundle (`kuroko-update-<version>.kub`): one file, signed, checked whole before
//! a byte of it is written anywhere.
//!
//! Layout: [`MAGIC`] (16 bytes), the manifest's length (u32 little-endian), the manifest
//! (JSON, [`Manifest`]), its Ed25519 signature (64 bytes, over magic + length + manifest),
//! then the payload: the root file system image, zstd-compressed or raw as the manifest
//! says. The manifest carries the payload's size and SHA-256 and the root image's size and
//! SHA-256, so the signature covers every byte of the file.
//!
//! Why Ed25519 over a manifest rather than a signature over the whole file: the verifier
//! streams a 500 MiB payload once for its hash instead of holding it, and the manifest
//! alone says what the bundle is (board, version) before anything is read further.
//! Public keys are hex files `*.pub` in [`KEY_DIR`]; the private key never is on the box.

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 16] = b"KUROKO-UPDATE-1\n";
/// The manifest format this code reads and writes.
pub const FORMAT: u32 = 1;
/// Where the image keeps the public keys bundles are checked against.
pub const KEY_DIR: &str = "/usr/share/kuroko/update-keys";
const MAX_MANIFEST: u32 = 64 << 10;
const SIG_LEN: usize = 64;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    /// The board profile the root is for (`qemu`).
    pub board: String,
    /// The image version (`/etc/kuroko-release`), increasing from build to build.
    pub version: u64,
    /// Free text: commit, build time, Debian snapshots.
    pub build: String,
    pub root_size: u64,
    pub root_sha256: String,
    /// `zstd` or `none`.
    pub compression: String,
    pub payload_size: u64,
    pub payload_sha256: String,
}

/// A trusted public key: its name (file stem) and 32 bytes.
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The keys in `dir` (`NAME.pub`, 64 hex digits each); a key file that is not one is an error.
pub fn load_keys(dir: &Path) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("no update keys in {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "pub") {
            continue;
        }
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| format!("{} is not a 32-byte hex Ed25519 key", p.display()))?;
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        keys.push(PublicKey { name, bytes });
    }
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    if keys.is_empty() {
        return Err(format!("no update keys (*.pub) in {}", dir.display()));
    }
    Ok(keys)
}

/// A bundle whose signature and payload hash were checked.
#[derive(Debug)]
pub struct Verified {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// The key that signed it.
    pub key: String,
    /// Where the payload starts in the file.
    pub payload_offset: u64,
}

/// Reads the header and manifest, checks the signature against `keys`, then reads the whole
/// payload and checks its size and SHA-256. Nothing is written. `progress` gets the bytes
/// hashed so far.
pub fn verify(
    path: &Path,
    keys: &[PublicKey],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Verified, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file_len = f.metadata().map_err(|e| e.to_string())?.len();
    let mut head = [0u8; 20];
    f.read_exact(&mut head)
        .map_err(|_| "not an update bundle (too short)".to_string())?;
    if &head[..16] != MAGIC {
        return Err("not an update bundle (no KUROKO-UPDATE-1 header)".into());
    }
    let mlen = u32::from_le_bytes(head[16..20].try_into().expect("4 bytes"));
    if mlen == 0 || mlen > MAX_MANIFEST {
        return Err(format!(
            "the manifest length {mlen} is out of range: damaged bundle"
        ));
    }
    let mut manifest = vec![0u8; mlen as usize];
    let mut sig = [0u8; SIG_LEN];
    f.read_exact(&mut manifest)
        .and_then(|_| f.read_exact(&mut sig))
        .map_err(|_| "the bundle is truncated (in its manifest or signature)".to_string())?;
    let mut signed = Vec::with_capacity(20 + manifest.len());
    signed.extend_from_slice(&head);
    signed.extend_from_slice(&manifest);
    let key = keys
        .iter()
        .find(|k| UnparsedPublicKey::new(&ED25519, &k.bytes).verify(&signed, &sig).is_ok())
        .ok_or("the bundle's signature does not verify with any key this box trusts (unsigned, signed by another key, or altered): refused")?;
    let manifest: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| format!("the signed manifest cannot be read ({e}): refused"))?;
    if manifest.format != FORMAT {
        return Err(format!(
            "bundle format {} (this image reads {FORMAT}): refused",
            manifest.format
        ));
    }
    if !matches!(manifest.compression.as_str(), "zstd" | "none") {
        return Err(format!("unknown compression `{}`", manifest.compression));
    }
    let payload_offset = 20 + u64::from(mlen) + SIG_LEN as u64;
    let want = payload_offset + manifest.payload_size;
    if file_len != want {
        return Err(format!(
            "the bundle is {file_len} bytes, its manifest says {want}: {}",
            if file_len < want {
                "truncated"
            } else {
                "bytes added"
            }
        ));
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("reading the bundle: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        progress(done, manifest.payload_size);
    }
    if done != manifest.payload_size || hex::encode(h.finalize()) != manifest.payload_sha256 {
        return Err(
            "the bundle's payload does not match its signed SHA-256 (altered or damaged): refused"
                .into(),
        );
    }
    Ok(Verified {
        path: path.to_path_buf(),
        manifest,
        key: key.name.clone(),
        payload_offset,
    })
}

/// Writes a bundle: `root` (the image, `root_size` bytes) compressed with zstd (`level`)
/// or raw, signed with `key` (PKCS#8 Ed25519). Used by `cargo xtask update-bundle`.
pub fn write(
    out: &Path,
    root: &Path,
    board: &str,
    version: u64,
    build: &str,
    key_pkcs8: &[u8],
    zstd_level: Option<i32>,
) -> Result<Manifest, String> {
    let key = Ed25519KeyPair::from_pkcs8(key_pkcs8)
        .map_err(|e| format!("the signing key is not a PKCS#8 Ed25519 key: {e}"))?;
    let tmp_payload = out.with_extension("payload.tmp");
    let err = |e: std::io::Error| e.to_string();
    let (root_size, root_sha256) = {
        let mut src = std::fs::File::open(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let dst = std::fs::File::create(&tmp_payload).map_err(err)?;
        let mut hashing = HashRead {
            inner: &mut src,
            h: Sha256::new(),
            n: 0,
        };
        match zstd_level {
            Some(l) => {
                let mut enc = zstd::stream::Encoder::new(dst, l).map_err(err)?;
                std::io::copy(&mut hashing, &mut enc).map_err(err)?;
                enc.finish().map_err(err)?.sync_all().map_err(err)?;
            }
            None => {
                let mut dst = dst;
                std::io::copy(&mut hashing, &mut dst).map_err(err)?;
            }
        }
        (hashing.n, hex::encode(hashing.h.finalize()))
    };
    let (payload_size, payload_sha256) = {
        let mut p = std::fs::File::open(&tmp_payload).map_err(err)?;
        let mut h = HashRead {
            inner: &mut p,
            h: Sha256::new(),
            n: 0,
        };
        std::io::copy(&mut h, &mut std::io::sink()).map_err(err)?;
        (h.n, hex::encode(h.h.finalize()))
    };
    let manifest = Manifest {
        format: FORMAT,
        board: board.to_string(),
        version,
        build: build.to_string(),
        root_size,
        root_sha256,
        compression: if zstd_level.is_some() { "zstd" } else { "none" }.into(),
        payload_size,
        payload_sha256,
    };
    let m = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    let mut signed = MAGIC.to_vec();
    signed.extend_from_slice(&(m.len() as u32).to_le_bytes());
    signed.extend_from_slice(&m);
    let sig = key.sign(&signed);
    let mut f = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    f.write_all(&signed).map_err(err)?;
    f.write_all(sig.as_ref()).map_err(err)?;
    std::io::copy(&mut std::fs::File::open(&tmp_payload).map_err(err)?, &mut f).map_err(err)?;
    f.sync_all().map_err(err)?;
    let _ = std::fs::remove_file(&tmp_payload);
    Ok(manifest)
}

/// The hex public key of a PKCS#8 Ed25519 key (for `update-keys/NAME.pub`).
pub fn public_key_hex(key_pkcs8: &[u8]) -> Result<String, String> {
    use ring::signature::KeyPair;
    let key = Ed25519KeyPair::from_pkcs8(key_pkcs8)
        .map_err(|e| format!("the signing key is not a PKCS#8 Ed25519 key: {e}"))?;
    Ok(hex::encode(key.public_key().as_ref()))
}

/// A new PKCS#8 Ed25519 key (the image build's development key).
pub fn generate_key() -> Result<Vec<u8>, String> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|e| format!("cannot make a key: {e}"))
}

/// A reader that hashes and counts what passes through it.
pub struct HashRead<'a, R: Read> {
    pub inner: &'a mut R,
    pub h: Sha256,
    pub n: u64,
}

impl<R: Read> Read for HashRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn key_and_dir(dir: &Path) -> Vec<u8> {
        let k = generate_key().unwrap();
        let keys = dir.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join("dev.pub"), public_key_hex(&k).unwrap() + "\n").unwrap();
        k
    }

    pub(crate) fn bundle(
        dir: &Path,
        root: &[u8],
        version: u64,
        zstd: Option<i32>,
    ) -> (PathBuf, Vec<PublicKey>) {
        let k = key_and_dir(dir);
        let img = dir.join("root.img");
        std::fs::write(&img, root).unwrap();
        let out = dir.join(format!("kuroko-update-{version}.kub"));
        write(&out, &img, "qemu", version, "test", &k, zstd).unwrap();
        (out, load_keys(&dir.join("keys")).unwrap())
    }

    fn root_bytes() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn a_signed_bundle_verifies_compressed_or_raw() {
        for z in [Some(3), None] {
            let d = tempfile::tempdir().unwrap();
            let root = root_bytes();
            let (b, keys) = bundle(d.path(), &root, 7, z);
            let v = verify(&b, &keys, &mut |_, _| {}).unwrap();
            assert_eq!(v.manifest.version, 7);
            assert_eq!(v.manifest.root_size, root.len() as u64);
            assert_eq!(v.key, "dev");
        }
    }

    #[test]
    fn a_tampered_byte_anywhere_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (b, keys) = bundle(d.path(), &root_bytes(), 7, Some(3));
        let good = std::fs::read(&b).unwrap();
        // In the header, the manifest, the signature, the payload's start and end.
        for at in [3, 25, 60, good.len() - 600, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            std::fs::write(&b, &bad).unwrap();
            let e = verify(&b, &keys, &mut |_, _| {}).unwrap_err();
            assert!(
                e.contains("refused")
                    || e.contains("not an update bundle")
                    || e.contains("manifest"),
                "byte {at}: {e}"
            );
        }
        std::fs::write(&b, &good).unwrap();
        assert!(verify(&b, &keys, &mut |_, _| {}).is_ok());
    }

    #[test]
    fn another_key_truncation_and_appended_bytes_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let (b, _) = bundle(d.path(), &root_bytes(), 7, None);
        let other = tempfile::tempdir().unwrap();
        key_and_dir(other.path());
        let other_keys = load_keys(&other.path().join("keys")).unwrap();
        let e = verify(&b, &other_keys, &mut |_, _| {}).unwrap_err();
        assert!(e.contains("does not verify with any key"), "{e}");
        let keys = load_keys(&d.path().join("keys")).unwrap();
        let good = std::fs::read(&b).unwrap();
        std::fs::write(&b, &good[..good.len() - 10]).unwrap();
        let e = verify(&b, &keys, &mut |_, _| {}).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&b, &good[..40]).unwrap();
        let e = verify(&b, &keys, &mut |_, _| {}).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let mut more = good.clone();
        more.extend_from_slice(b"extra");
        std::fs::write(&b, &more).unwrap();
        let e = verify(&b, &keys, &mut |_, _| {}).unwrap_err();
        assert!(e.contains("bytes added"), "{e}");
        std::fs::write(&b, b"").unwrap();
        assert!(verify(&b, &keys, &mut |_, _| {}).is_err());
    }

    #[test]
    fn key_files_must_be_keys() {
        let d = tempfile::tempdir().unwrap();
        assert!(load_keys(d.path()).unwrap_err().contains("no update keys"));
        std::fs::write(d.path().join("x.pub"), "zz").unwrap();
        assert!(load_keys(d.path()).unwrap_err().contains("not a 32-byte"));
    }
}

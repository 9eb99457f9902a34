//! Pure QUIC v1 Initial-packet pieces (RFC 9000, RFC 9001): long headers, the Initial
//! keys every observer can derive from the client's Destination Connection ID, header
//! protection removal, payload decryption, and the frames that carry the TLS handshake.
//!
//! The AEAD tag is not verified: a passive observer only needs the plaintext, and a
//! forged packet decrypts to frames that do not parse (flagged, never trusted further).

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use sha2::{Digest, Sha256};

/// QUIC version 1.
pub const VERSION_1: u32 = 1;
/// Initial salt of QUIC v1 (RFC 9001 5.2).
pub const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// Longest connection id (RFC 9000 17.2).
pub const MAX_CID_LEN: usize = 20;
/// AEAD tag length of AES-128-GCM.
pub const TAG_LEN: usize = 16;

fn hmac_sha256(key: &[u8], msg: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for m in msg {
        inner.update(m);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

/// HKDF-Extract (RFC 5869) with SHA-256.
pub fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> [u8; 32] {
    hmac_sha256(salt, &[ikm])
}

/// HKDF-Expand-Label of TLS 1.3 (RFC 8446 7.1) with an empty context, up to 32 bytes.
pub fn hkdf_expand_label(secret: &[u8], label: &str, len: usize) -> Vec<u8> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push(full.len() as u8);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    // One block of HKDF-Expand is enough for every QUIC Initial key (≤ 32 bytes).
    let t1 = hmac_sha256(secret, &[&info, &[1]]);
    t1[..len.min(32)].to_vec()
}

/// Packet protection keys of one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

/// Initial keys of the client (`client in`) or the server (`server in`) for `dcid`, the
/// Destination Connection ID of the client's first Initial packet.
pub fn initial_keys(dcid: &[u8], server: bool) -> Keys {
    let initial = hkdf_extract(&INITIAL_SALT_V1, dcid);
    let secret = hkdf_expand_label(&initial, if server { "server in" } else { "client in" }, 32);
    let mut k = Keys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    k.key
        .copy_from_slice(&hkdf_expand_label(&secret, "quic key", 16));
    k.iv.copy_from_slice(&hkdf_expand_label(&secret, "quic iv", 12));
    k.hp.copy_from_slice(&hkdf_expand_label(&secret, "quic hp", 16));
    k
}

fn aes_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let cipher = Aes128::new(GenericArray::from_slice(key));
    let mut b = GenericArray::clone_from_slice(block);
    cipher.encrypt_block(&mut b);
    let mut out = [0u8; 16];
    out.copy_from_slice(&b);
    out
}

/// A QUIC variable-length integer at `b[*pos]`; advances `pos`.
pub fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *b.get(*pos)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*pos..*pos + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    *pos += len;
    Some(v)
}

/// Where the parts of a long-header Initial packet are.
#[derive(Debug, PartialEq, Eq)]
pub struct InitialHeader<'a> {
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// Offset of the (protected) packet number.
    pub pn_offset: usize,
    /// End of this packet inside the datagram (coalesced packets follow).
    pub end: usize,
}

/// Why a packet was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum QuicError {
    /// Short header, another packet type, or another version: nothing to read here.
    NotInitialV1,
    /// Lengths point outside the datagram.
    Truncated,
}

/// Parses the long header of a v1 Initial packet at the start of `b`.
pub fn initial_header(b: &[u8]) -> Result<InitialHeader<'_>, QuicError> {
    let first = *b.first().ok_or(QuicError::Truncated)?;
    if first & 0x80 == 0 {
        return Err(QuicError::NotInitialV1);
    }
    let version = u32::from_be_bytes(
        b.get(1..5)
            .ok_or(QuicError::Truncated)?
            .try_into()
            .map_err(|_| QuicError::Truncated)?,
    );
    if version != VERSION_1 || (first >> 4) & 3 != 0 {
        return Err(QuicError::NotInitialV1);
    }
    let mut pos = 5;
    let dl = *b.get(pos).ok_or(QuicError::Truncated)? as usize;
    if dl > MAX_CID_LEN {
        return Err(QuicError::Truncated);
    }
    let dcid = b.get(pos + 1..pos + 1 + dl).ok_or(QuicError::Truncated)?;
    pos += 1 + dl;
    let sl = *b.get(pos).ok_or(QuicError::Truncated)? as usize;
    if sl > MAX_CID_LEN {
        return Err(QuicError::Truncated);
    }
    let scid = b.get(pos + 1..pos + 1 + sl).ok_or(QuicError::Truncated)?;
    pos += 1 + sl;
    let token_len = varint(b, &mut pos).ok_or(QuicError::Truncated)? as usize;
    pos = pos
        .checked_add(token_len)
        .filter(|p| *p <= b.len())
        .ok_or(QuicError::Truncated)?;
    let len = varint(b, &mut pos).ok_or(QuicError::Truncated)? as usize;
    let end = pos
        .checked_add(len)
        .filter(|e| *e <= b.len())
        .ok_or(QuicError::Truncated)?;
    // Header protection samples 16 bytes starting 4 after the packet number offset.
    if pos + 4 + 16 > end {
        return Err(QuicError::Truncated);
    }
    Ok(InitialHeader {
        dcid,
        scid,
        pn_offset: pos,
        end,
    })
}

/// Removes header protection and decrypts one Initial packet; returns the plaintext
/// frames (tag not verified).
pub fn open_initial(
    packet: &[u8],
    h: &InitialHeader<'_>,
    keys: &Keys,
) -> Result<Vec<u8>, QuicError> {
    let mut sample = [0u8; 16];
    sample.copy_from_slice(&packet[h.pn_offset + 4..h.pn_offset + 20]);
    let mask = aes_block(&keys.hp, &sample);
    let first = packet[0] ^ (mask[0] & 0x0f);
    let pn_len = (first & 3) as usize + 1;
    let mut pn: u64 = 0;
    for i in 0..pn_len {
        pn = (pn << 8) | u64::from(packet[h.pn_offset + i] ^ mask[1 + i]);
    }
    let start = h.pn_offset + pn_len;
    if start + TAG_LEN > h.end {
        return Err(QuicError::Truncated);
    }
    let ciphertext = &packet[start..h.end - TAG_LEN];
    let mut nonce = keys.iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    // AES-GCM encrypts with AES-CTR starting at counter 2 (counter 1 masks the tag).
    let mut out = Vec::with_capacity(ciphertext.len());
    let mut block = [0u8; 16];
    block[..12].copy_from_slice(&nonce);
    for (i, chunk) in ciphertext.chunks(16).enumerate() {
        block[12..].copy_from_slice(&(i as u32 + 2).to_be_bytes());
        let ks = aes_block(&keys.key, &block);
        out.extend(chunk.iter().zip(ks.iter()).map(|(c, k)| c ^ k));
    }
    Ok(out)
}

/// CRYPTO frames (offset, data) of a decrypted Initial payload. Stops at the first frame
/// type an Initial packet may not carry; `Err` when a frame runs past the payload.
pub fn crypto_frames(payload: &[u8]) -> Result<Vec<(u64, &[u8])>, QuicError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < payload.len() {
        let ty = varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
        match ty {
            0x00 | 0x01 => {} // PADDING, PING
            0x02 | 0x03 => {
                // ACK: largest, delay, range count, first range, ranges, (ECN counts).
                varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                let ranges = varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                for _ in 0..ranges.min(payload.len() as u64) {
                    varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                    varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                }
                if ty == 0x03 {
                    for _ in 0..3 {
                        varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                    }
                }
            }
            0x06 => {
                let offset = varint(payload, &mut pos).ok_or(QuicError::Truncated)?;
                let len = varint(payload, &mut pos).ok_or(QuicError::Truncated)? as usize;
                let data = payload
                    .get(pos..pos.checked_add(len).ok_or(QuicError::Truncated)?)
                    .ok_or(QuicError::Truncated)?;
                out.push((offset, data));
                pos += len;
            }
            0x1c | 0x1d => break, // CONNECTION_CLOSE: nothing after it matters
            _ => return Err(QuicError::Truncated),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9001 Appendix A.1: keys for DCID 0x8394c8f03e515708.
    #[test]
    fn initial_keys_match_rfc9001_a1() {
        let dcid = hex::decode("8394c8f03e515708").unwrap();
        let initial = hkdf_extract(&INITIAL_SALT_V1, &dcid);
        assert_eq!(
            hex::encode(initial),
            "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"
        );
        let c = initial_keys(&dcid, false);
        assert_eq!(hex::encode(c.key), "1f369613dd76d5467730efcbe3b1a22d");
        assert_eq!(hex::encode(c.iv), "fa044b2f42a3fd3b46fb255c");
        assert_eq!(hex::encode(c.hp), "9f50449e04a0e810283a1e9933adedd2");
    }

    #[test]
    fn varints() {
        // RFC 9000 A.1 examples.
        for (bytes, v) in [
            (
                &b"\xc2\x19\x7c\x5e\xff\x14\xe8\x8c"[..],
                151_288_809_941_952_652u64,
            ),
            (b"\x9d\x7f\x3e\x7d", 494_878_333),
            (b"\x7b\xbd", 15_293),
            (b"\x25", 37),
        ] {
            let mut p = 0;
            assert_eq!(varint(bytes, &mut p), Some(v));
            assert_eq!(p, bytes.len());
        }
        assert_eq!(varint(b"\x7b", &mut 0), None);
    }
}

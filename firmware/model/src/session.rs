//! The session record: one conversation between a client and a server.
//!
//! Emitted by the analyzer when a flow ends (FIN/RST, idle or active timeout, eviction, or the
//! end of an `analyze` run), then indexed for search, fed to detections and shown by the
//! console and report. The JSON form (`kuroko search --format jsonl`) is the contract:
//! required keys always present, one object per parsed protocol, named after it.
//!
//! Every string in here came off the wire: producers cap lengths (`MAX_FIELD_LEN`) and list
//! sizes (`MAX_LIST_LEN`) so that one hostile session cannot blow up the index or a report.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Longest string kept in any field; longer values are cut (on a char boundary) and the
/// session gets the `field_truncated` flag. 4 KiB holds every sane URL and header.
pub const MAX_FIELD_LEN: usize = 4096;
/// Most entries kept in any list (transactions, commands, recipients, answers, files).
pub const MAX_LIST_LEN: usize = 256;

/// One side of a session.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    /// `aa:bb:cc:dd:ee:ff`, from the first frame seen from this side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Endpoint {
            ip,
            port,
            mac: None,
        }
    }
}

/// Where a session's packets are in the segment store, so that `kuroko pcap` touches only
/// the segments that hold them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketSpan {
    /// Sequence number of the segment holding the first packet.
    pub first_segment: u64,
    /// Sequence number of the segment holding the last packet.
    pub last_segment: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SessionRecord {
    /// Stable id derived from the position of the session's first packet in the store, so a
    /// re-analysis after a crash produces the same id (and the index can drop duplicates).
    pub id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Application protocol, lower case: `http`, `tls`, `dns`, `ssh`, `ftp`, `ftp-data`,
    /// `smtp`, `pop3`, `imap`, `telnet`, `winrm`, `oracle`, `smb`, `rdp`, …; the transport
    /// name (`tcp`, `udp`, `icmp`) when nothing more is known.
    pub protocol: String,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, `gre`, `esp`, or `ip-<n>`.
    pub transport: String,
    pub client: Endpoint,
    pub server: Endpoint,
    /// Payload bytes client → server that crossed the wire (from IP lengths, so a capture
    /// cut by a snap length still counts them; see `captured_bytes`).
    pub bytes_up: u64,
    /// Payload bytes server → client that crossed the wire.
    pub bytes_down: u64,
    /// Packets, both directions.
    pub packets: u64,
    #[serde(default)]
    pub packets_up: u64,
    #[serde(default)]
    pub packets_down: u64,
    /// Outer VLAN id, when the frames carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Capture interface id of the first packet.
    #[serde(default)]
    pub iface: u16,
    /// Anomalies: `gap`, `truncated`, `evicted`, `timeout`, `field_truncated`,
    /// `midstream` (first packet was not a SYN), `malformed:<proto>`, `tunnel:<kind>`, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Bytes missing from the TCP streams (gaps), both directions.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missing_bytes: u64,
    #[serde(default)]
    pub span: PacketSpan,
    // -- link types, wire-true sizes, flow id (issues 14 and 18) --
    /// Payload bytes actually captured, both directions (less than `bytes_up` +
    /// `bytes_down` when a snap length cut the packets).
    #[serde(default)]
    pub captured_bytes: u64,
    /// Community ID v1 of the flow (`1:<base64>`), for joining with Zeek, Suricata, Arkime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub community_id: String,
    /// A provisional record of a session still in progress (issue 15): what is known so
    /// far (bytes, packets, last seen as `end`, what the parsers found). A later record with
    /// the same `id` replaces it (an update, or the final record without `open`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open: bool,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Ssh>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftp: Option<Ftp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<Mail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telnet: Option<Telnet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<Oracle>,
    /// DHCP (issue 20): what a client asked and a server assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<Dhcp>,
    /// NetBIOS name service (UDP 137): names asked and names bound to addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netbios: Option<Netbios>,
    /// mDNS / DNS-SD (UDP 5353): host names with their addresses and the service
    /// instances hosts announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdns: Option<Mdns>,
    /// SMB: the dialects of the NEGOTIATE exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smb: Option<Smb>,
    /// The stream changed protocol midway (HTTP CONNECT, STARTTLS, …): the outer layer's
    /// object (e.g. `http`, `mail`) and the inner one's (e.g. `tls`) are both above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<Tunnel>,
    /// Reconstructed objects (files, bodies, mails) stored content-addressed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// Threat-intel indicators this session matched (issue 18; `docs/INTEL.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intel: Vec<IntelHit>,
}

/// One intel indicator a session (or one of its files) matched.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct IntelHit {
    /// The feed: `feodo`, `sslbl`, `urlhaus`, `threatfox`, `spamhaus_drop`, or the name a
    /// pack gives a Zeek or plain file.
    pub feed: String,
    /// `address`, `cidr`, `addr_port`, `domain`, `url`, `cert_sha1`, `cert_sha256`, `ja3`,
    /// `ja4`, `file_md5`, `file_sha1`, `file_sha256`.
    pub kind: String,
    /// The listed indicator, in its normal form (a domain hit names the listed domain).
    pub indicator: String,
    /// The intel pack it came from.
    pub pack: String,
    /// What the feed says about it (malware family, SBL id), when it says anything.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl SessionRecord {
    /// A record with the required keys and nothing parsed yet.
    pub fn new(
        id: String,
        start: Timestamp,
        transport: &str,
        client: Endpoint,
        server: Endpoint,
    ) -> Self {
        SessionRecord {
            id,
            start,
            end: start,
            protocol: transport.to_string(),
            transport: transport.to_string(),
            client,
            server,
            bytes_up: 0,
            bytes_down: 0,
            packets: 0,
            packets_up: 0,
            packets_down: 0,
            vlan: None,
            iface: 0,
            flags: Vec::new(),
            missing_bytes: 0,
            span: PacketSpan::default(),
            captured_bytes: 0,
            community_id: String::new(),
            open: false,
            http: None,
            dns: None,
            tls: None,
            ssh: None,
            ftp: None,
            mail: None,
            telnet: None,
            oracle: None,
            dhcp: None,
            netbios: None,
            mdns: None,
            smb: None,
            tunnel: None,
            files: Vec::new(),
            intel: Vec::new(),
        }
    }

    /// Adds a flag once.
    pub fn flag(&mut self, flag: &str) {
        if !self.flags.iter().any(|f| f == flag) && self.flags.len() < MAX_LIST_LEN {
            self.flags.push(flag.to_string());
        }
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The user name seen in any protocol (FTP, Telnet, mail login, HTTP auth).
    pub fn user(&self) -> Option<&str> {
        self.ftp
            .as_ref()
            .and_then(|f| f.user.as_deref())
            .or_else(|| self.telnet.as_ref().and_then(|t| t.user.as_deref()))
            .or_else(|| self.mail.as_ref().and_then(|m| m.user.as_deref()))
            .or_else(|| self.http.as_ref().and_then(|h| h.user.as_deref()))
            .or_else(|| self.oracle.as_ref().and_then(|o| o.user.as_deref()))
    }

    /// `host` in the result table: HTTP host, TLS SNI, or DNS query name.
    pub fn host(&self) -> Option<&str> {
        self.http
            .as_ref()
            .and_then(|h| h.host.as_deref())
            .or_else(|| self.tls.as_ref().and_then(|t| t.sni.as_deref()))
            .or_else(|| self.dns.as_ref().and_then(|d| d.query.as_deref()))
    }
}

/// A Unicode bidirectional control (ALM, LRM, RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI).
/// Off the wire it only serves to disguise text on screen (`UA\u{202E}gpj.exe` shows as
/// `UAexe.jpg`), so the text sanitizer drops it; these are format characters, not control
/// characters, so `char::is_control` lets them through.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Cuts `s` to at most `MAX_FIELD_LEN` bytes on a char boundary; returns whether it cut.
pub fn cap_field(s: &mut String) -> bool {
    if s.len() <= MAX_FIELD_LEN {
        return false;
    }
    let mut end = MAX_FIELD_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

/// HTTP/1.x. The top-level fields describe the first transaction (what the result table
/// shows); `transactions` holds all of them (capped at `MAX_LIST_LEN`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Http {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// As NetRAPTOR shows it: host + path, e.g. `example.com/index.html`, or
    /// `mtalk.google.com:5228` for CONNECT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// URL query string (after `?`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `Server:` header of the first response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `X-Powered-By:` header of the first response that had one (the application
    /// framework: `PHP/7.4.33`, `ASP.NET`, `Express`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powered_by: Option<String>,
    /// Basic-auth user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transactions: Vec<HttpTransaction>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HttpTransaction {
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request target as sent (path, absolute URL, or authority for CONNECT).
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// `X-Powered-By:` header of the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powered_by: Option<String>,
    /// `<title>` of an HTML response, when one was seen (used e.g. to spot login pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub request_body_bytes: u64,
    #[serde(default)]
    pub response_body_bytes: u64,
    /// Selected request headers worth searching and detecting on (name lower case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// `A`, `AAAA`, `MX`, … or the number for types without a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qtype: Option<String>,
    /// `NOERROR`, `NXDOMAIN`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    #[serde(default)]
    pub answers: Vec<String>,
    /// Further queries in the same flow (e.g. DNS over TCP, or a reused client port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_queries: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Negotiated version (`TLSv1.3`, …), or the ClientHello's offer when no ServerHello.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_issuer: Option<String>,
    /// The server's certificate chain as sent, leaf first (TLS ≤ 1.2: TLS 1.3 encrypts it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<Cert>,
}

/// One certificate of a TLS chain.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Cert {
    /// RFC 4514 string (`CN=www.example.com,O=Example`).
    pub subject: String,
    pub issuer: String,
    /// Serial number, lower-case hex without separators.
    pub serial: String,
    /// Validity, RFC 3339 UTC.
    pub not_before: String,
    pub not_after: String,
    /// subjectAltName DNS names and IP addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub san: Vec<String>,
    /// Fingerprints of the DER certificate, lower-case hex.
    pub sha1: String,
    pub sha256: String,
    /// Subject equals issuer (the signature is not verified).
    #[serde(default)]
    pub self_signed: bool,
    /// The session started after not_after.
    #[serde(default)]
    pub expired: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Ssh {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Ftp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Commands as sent (`USER alice`, `RETR report.pdf`); `PASS` arguments are masked.
    #[serde(default)]
    pub commands: Vec<String>,
    #[serde(default)]
    pub files: Vec<FtpFile>,
    /// On an `ftp-data` session: the id of the control session that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_session: Option<String>,
    /// The first line of the server's 220 greeting (`220 (vsFTPd 3.0.3)`): the software
    /// the server announces, for the asset inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FtpFile {
    pub name: String,
    /// `upload` (client → server, STOR/APPE) or `download` (RETR).
    pub direction: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// YARA rules that matched the file the data connection carried (the same as the
    /// `ftp-data` session's `files[].yara`), so that `yara:RuleName` finds the control
    /// session, the one that names the file and the user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub yara: Vec<String>,
    /// The highest level the matched rules' metadata ask for (as `FileRef.yara_level`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yara_level: Option<String>,
}

impl FtpFile {
    /// `STOR customers.xlsx (12,345 bytes)` (`… (12,345 バイト)` in Japanese): what a
    /// person reads in a finding or a report.
    pub fn describe(&self, lang: crate::finding::Lang) -> String {
        let verb = if self.direction == "upload" {
            "STOR"
        } else {
            "RETR"
        };
        let unit = match lang {
            crate::finding::Lang::Ja => "バイト",
            crate::finding::Lang::En => "bytes",
        };
        format!(
            "{verb} {} ({} {unit})",
            self.name,
            crate::units::group_digits(self.bytes as u128)
        )
    }
}

/// Whether an FTP control command (as recorded in `ftp.commands`) moves a file or a
/// listing: what an analyst looks for, as opposed to FEAT / OPTS / TYPE.
pub fn ftp_is_transfer_command(command: &str) -> bool {
    let verb = command.split_whitespace().next().unwrap_or("");
    [
        "RETR", "STOR", "APPE", "STOU", "DELE", "RNFR", "RNTO", "MKD", "RMD",
    ]
    .iter()
    .any(|v| verb.eq_ignore_ascii_case(v))
}

/// A mail seen in SMTP, POP3 or IMAP. The top level is the first message of the session;
/// further messages are in `messages`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Mail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// To, Cc and Bcc (header addresses, plus SMTP `RCPT TO` envelope recipients).
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Display name of `From:` (`"Resona Bank" <x@evil.example>` → `Resona Bank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// SMTP envelope sender (`MAIL FROM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Login user (SMTP AUTH, POP3 USER, IMAP LOGIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Links in the bodies: the text shown and the href (for deceptive-link checks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// SHA-256 of the whole message as stored (`.eml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eml_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MailMessage>,
    /// SMTP, POP3 and IMAP commands that ran, in order (capped at `MAX_LIST_LEN`): verb,
    /// the argument when it is not a secret (AUTH/AUTHENTICATE keep only the mechanism,
    /// POP3 PASS nothing, APOP and IMAP LOGIN only the user; SASL exchanges are not
    /// commands), and the answer: SMTP's reply code, POP3's and IMAP's status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<MailCommand>,
    /// The login: SMTP AUTH, POP3 USER/PASS, APOP or AUTH, IMAP LOGIN or AUTHENTICATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<MailAuth>,
    /// The first line of the server's greeting (SMTP `220 mx ESMTP Exim 4.96 …`, POP3
    /// `+OK Dovecot ready.`, IMAP `* OK …`): the software the server announces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
}

/// One command of a mail session.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MailCommand {
    pub verb: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<String>,
    /// Final reply (`250`, `535`); none when the session ended first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<u16>,
    /// POP3 (`OK`, `ERR`) and IMAP (`OK`, `NO`, `BAD`) answer; none when the session
    /// ended first (and for SMTP, whose answer is `reply`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// How a mail client logged in, and whether the server accepted it (the last attempt;
/// `failed_attempts` counts the refused ones, for brute-force findings).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MailAuth {
    /// `PLAIN`, `LOGIN`, `CRAM-MD5`, … or `USER` (POP3 USER/PASS), `APOP`, `LOGIN` (IMAP).
    pub mechanism: String,
    /// None while no answer was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(default)]
    pub failed_attempts: u32,
}

/// A further message of the same session.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct MailMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_display: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eml_sha256: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Attachment {
    pub name: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub text: String,
    pub href: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Telnet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Oracle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The database version the listener announced: `VSNNUM` of a REFUSE/REDIRECT/RESEND
    /// packet decoded (`19.0.0.0.0`), or the `Version` of a `TNSLSNR` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// TNS protocol version the listener accepted (ACCEPT packet: `315`, `318`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tns_version: Option<u16>,
}

/// DHCP messages of one flow (RFC 2131/2132). A lease shows as DISCOVER/OFFER/REQUEST/ACK
/// over one or two flows (broadcast and unicast differ); every message adds what it says.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Dhcp {
    /// Message types in order (`DISCOVER`, `OFFER`, `REQUEST`, `ACK`, `NAK`, `DECLINE`,
    /// `RELEASE`, `INFORM`, or the number), capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// `chaddr`: the client's hardware address (`aa:bb:cc:dd:ee:ff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_mac: Option<String>,
    /// Option 12: the host name the client gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Option 60: the vendor class identifier (`MSFT 5.0`, `udhcp 1.36.1`, `android-dhcp-13`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_class: Option<String>,
    /// Option 50: the address the client asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_address: Option<IpAddr>,
    /// `yiaddr` of an ACK: the address the server bound to `client_mac`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_address: Option<IpAddr>,
    /// Option 54: the server that answered or was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<IpAddr>,
}

/// NetBIOS name service messages of one flow (RFC 1002 §4.2).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Netbios {
    /// Names asked for (queries), `NAME<xx>` with the suffix byte in hex, capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<String>,
    /// Names bound to an address: registrations, refreshes and positive answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<NetbiosName>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NetbiosName {
    /// The name without padding, with its suffix: `FILESRV01<20>`.
    pub name: String,
    pub address: IpAddr,
    /// A group name (workgroup, domain) rather than one host's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group: bool,
    /// `registration`, `refresh`, `release` or `answer`.
    pub how: String,
}

/// mDNS messages of one flow (RFC 6762, DNS-SD RFC 6763). Only responses bind names (the
/// answer and additional sections; a probe's proposed records in the authority section
/// and a query's known answers are not taken). The DNS fields of the same messages are in
/// `dns` as for unicast DNS.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Mdns {
    /// Names asked for (queries), capped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<String>,
    /// A/AAAA records: a host name (`printer.local`) and its address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<MdnsHost>,
    /// Service instances (PTR, SRV and TXT records of one instance joined).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<MdnsService>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MdnsHost {
    /// The owner name as tshark's `dns.resp.name` shows it (`printer.local`).
    pub name: String,
    /// The record's address (`dns.a` / `dns.aaaa`).
    pub address: IpAddr,
    /// The address that sent the response (the announcing host, or a proxy for it).
    pub from: IpAddr,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MdnsService {
    /// The instance's own label, as announced (`Office Printer`, UTF-8).
    pub instance: String,
    /// The service type (`_ipp._tcp`, `_smb._tcp`).
    pub service: String,
    /// The domain after the service type (`local`).
    pub domain: String,
    /// SRV target host and port, when an SRV record was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Device model from the TXT record: the first of `md`, `model`, `ty`, `usb_MDL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The address that sent the response.
    pub from: IpAddr,
}

impl MdnsService {
    /// The full instance name as tshark's `dns.resp.name` shows it
    /// (`Office Printer._ipp._tcp.local`).
    pub fn full_name(&self) -> String {
        format!("{}.{}.{}", self.instance, self.service, self.domain)
    }
}

/// The SMB NEGOTIATE exchange (MS-SMB2 §2.2.3/2.2.4, MS-CIFS §2.2.4.52).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Smb {
    /// Dialects the client offered: SMB2 revisions (`2.0.2`, `2.1`, `3.0`, `3.0.2`,
    /// `3.1.1`) or SMB1 dialect strings (`NT LM 0.12`, `SMB 2.002`, `SMB 2.???`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_dialects: Vec<String>,
    /// The dialect the server chose (an SMB2 revision, `2.???` for the wildcard answer to
    /// an SMB1 negotiate, or the SMB1 dialect string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
}

/// The first protocol upgrade of a session (`kuroko_protocols::upgrade`). Every upgrade,
/// nested ones too, also leaves a `tunnel:<kind>` flag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Tunnel {
    /// `http-connect` (a proxy's CONNECT answered 2xx), `starttls` (SMTP/IMAP STARTTLS,
    /// POP3 STLS, FTP AUTH TLS, LDAP StartTLS, PostgreSQL SSLRequest), `http-upgrade`
    /// (101 Switching Protocols).
    pub kind: String,
    /// `host:port` of a CONNECT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Protocol label of the inner stream (`tls`, `http`, …), once identified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner: Option<String>,
}

/// A reconstructed object, stored under `files/` by SHA-256.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FileRef {
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub bytes: u64,
    /// `upload` (client → server) or `download`.
    pub direction: String,
    /// `http-body`, `ftp`, `mail`, `attachment`, `mail-body`.
    pub kind: String,
    /// Set when the object is incomplete (gap, truncation, budget).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// YARA rules that matched the object (`yara:RuleName` in queries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub yara: Vec<String>,
    /// The highest level (`A`–`E`) the matched rules' metadata ask for (`kuroko_level`,
    /// `severity`); none when no matched rule says (then `yara_match`'s default applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yara_level: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_contract_keys() {
        let mut s = SessionRecord::new(
            "s1".into(),
            Timestamp(1_763_425_800_000_000_000),
            "tcp",
            Endpoint::new("10.0.0.5".parse().unwrap(), 50000),
            Endpoint::new("93.184.216.34".parse().unwrap(), 80),
        );
        s.protocol = "http".into();
        s.http = Some(Http {
            method: Some("GET".into()),
            ..Default::default()
        });
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        for key in [
            "id",
            "start",
            "end",
            "protocol",
            "transport",
            "client",
            "server",
            "bytes_up",
            "bytes_down",
            "packets",
            "http",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["client"]["ip"], "10.0.0.5");
        assert_eq!(v["start"], "2025-11-18T00:30:00.000000000Z");
        let back: SessionRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn cap_field_cuts_on_char_boundary() {
        let mut s = "あ".repeat(MAX_FIELD_LEN);
        assert!(cap_field(&mut s));
        assert!(s.len() <= MAX_FIELD_LEN);
        assert!(s.chars().all(|c| c == 'あ'));
    }
}

//! The session fields a query can name, and what kind of value each holds.
//!
//! The kind decides how a value is read (number, byte size, address, time, text) and how it
//! matches; the table is shared by the parser (to reject unknown fields and bad values at
//! their column), the record matcher and the index schema, so the three cannot drift apart.

use std::fmt;

/// How a field's values are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Whole-value match, case-insensitive (`protocol`, `method`, `ja3`, …).
    Keyword,
    /// Free text: an unquoted value matches words, a quoted value is a substring.
    Text,
    /// Unsigned integer (ports, status, counts).
    Number,
    /// Unsigned integer with byte units (`100MB`, `1GiB`).
    Bytes,
    /// IPv4/IPv6 address or CIDR.
    Ip,
    /// RFC 3339 time.
    Time,
    /// Text of reconstructed content (the content index): a value matches as a phrase of
    /// its tokens (`crate::content`).
    Content,
}

macro_rules! fields {
    ($( $variant:ident => $name:literal, $kind:ident, $doc:literal; )*) => {
        /// A field name of the query language (`shared/CONTRACT.md`, "Session fields").
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $( #[doc = $doc] $variant, )*
        }

        impl Field {
            /// Every field, in the order they are listed to users.
            pub const ALL: &'static [Field] = &[ $( Field::$variant, )* ];

            /// The name as typed in a query.
            pub fn name(self) -> &'static str {
                match self { $( Field::$variant => $name, )* }
            }

            pub fn kind(self) -> Kind {
                match self { $( Field::$variant => Kind::$kind, )* }
            }

            /// What the field holds, for help texts.
            pub fn doc(self) -> &'static str {
                match self { $( Field::$variant => $doc, )* }
            }
        }
    };
}

fields! {
    Time => "time", Time, "session start time";
    Protocol => "protocol", Keyword, "application protocol (http, tls, dns, …), also the one inside a tunnel or after STARTTLS; `https` also matches tls to port 443";
    Transport => "transport", Keyword, "tcp, udp, icmp, …";
    Client => "client", Ip, "client address (or CIDR)";
    Server => "server", Ip, "server address (or CIDR)";
    Ip => "ip", Ip, "client or server address";
    ClientPort => "client_port", Number, "client port";
    ServerPort => "server_port", Number, "server port";
    Port => "port", Number, "client or server port";
    Mac => "mac", Keyword, "client or server MAC address";
    Host => "host", Text, "HTTP host, TLS SNI or DNS query name";
    Url => "url", Text, "HTTP URL as host + path (`example.com/a`, `host:5228` for CONNECT)";
    Method => "method", Keyword, "HTTP method";
    Status => "status", Number, "HTTP status";
    Query => "query", Text, "URL query string or DNS query name";
    ContentType => "content_type", Keyword, "HTTP content type";
    UserAgent => "user_agent", Text, "HTTP User-Agent";
    From => "from", Text, "mail sender (From: and MAIL FROM)";
    To => "to", Text, "mail recipients (To, Cc, Bcc, RCPT TO)";
    Subject => "subject", Text, "mail subject";
    Attachment => "attachment", Text, "mail attachment name";
    File => "file", Text, "name of a transferred or reconstructed file";
    Sha256 => "sha256", Keyword, "SHA-256 of a transferred file, attachment or mail";
    Yara => "yara", Keyword, "name of a YARA rule that matched a file, attachment or mail the session carried, or a file an FTP control session's data connections moved (`ftp.files[].yara`) (`yara:Emotet_Doc`, `yara:*`)";
    User => "user", Text, "user name (FTP, Telnet, mail login, HTTP basic auth, Oracle)";
    Sni => "sni", Text, "TLS server name";
    Ja3 => "ja3", Keyword, "TLS client fingerprint (JA3)";
    Ja4 => "ja4", Keyword, "TLS client fingerprint (JA4)";
    Version => "version", Text, "software and protocol versions (SSH banners, FTP/SMTP/POP3/IMAP greetings, TLS version, HTTP Server)";
    Bytes => "bytes", Bytes, "payload bytes that crossed the wire, both directions";
    BytesUp => "bytes_up", Bytes, "payload bytes client → server (wire)";
    BytesDown => "bytes_down", Bytes, "payload bytes server → client (wire)";
    CapturedBytes => "captured_bytes", Bytes, "payload bytes captured (less than bytes when a snap length cut packets)";
    MissingBytes => "missing_bytes", Bytes, "TCP payload bytes missing from the capture (gaps)";
    Packets => "packets", Number, "packets, both directions";
    Vlan => "vlan", Number, "outer VLAN id";
    Id => "id", Keyword, "session id";
    Flags => "flags", Keyword, "anomaly flags (gap, truncated, midstream, …)";
    CommunityId => "community_id", Keyword, "Community ID v1 of the flow (`1:…`, as Zeek, Suricata, Arkime)";
    Intel => "intel", Keyword, "threat-intel hits of the session: a feed (`intel:feodo`), a pack or an indicator kind (`intel:ja3`); `intel:*` any hit";
    CertSubject => "cert_subject", Text, "subject of a TLS server certificate (any in the chain)";
    CertIssuer => "cert_issuer", Text, "issuer of a TLS server certificate (any in the chain)";
    CertSha1 => "cert_sha1", Keyword, "SHA-1 fingerprint of a TLS certificate (hex)";
    CertSha256 => "cert_sha256", Keyword, "SHA-256 fingerprint of a TLS certificate (hex)";
    San => "san", Text, "subjectAltName DNS name or IP address of a TLS certificate";
    Open => "open", Keyword, "`true` on a provisional record of a session still in progress, `false` on a final one";
    State => "state", Keyword, "`open` (a session still in progress: a provisional record) or `closed`";
    Tunnel => "tunnel", Keyword, "protocol upgrades and encapsulations the session went through (http-connect, starttls, http-upgrade; vxlan, gre, … from `tunnel:<kind>` flags)";
    Body => "body", Content, "text of mail bodies (every charset, HTML as text) and of HTTP and FTP text transfers: a phrase, `body:\"ご本人確認\"`";
    Content => "content", Content, "text of everything reconstructed: bodies, attachments and transferred documents (PDF, DOCX, XLSX, PPTX, text, mails inside mails)";
    FileType => "file_type", Keyword, "type of a reconstructed file: its content type without parameters (`application/pdf`) and its name's extension (`pdf`, `docx`); `file_type:application/*`";
    FileSize => "file_size", Bytes, "size of a reconstructed file, attachment or FTP transfer (`file_size:>1MB`)";
    Finding => "finding", Keyword, "sessions that are evidence of finding `F…` (the id `kuroko findings` prints; with the FTP data connections of its FTP sessions); resolved from the findings store before the search (`query::resolve`)";
}

impl Field {
    /// Looks a field up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The valid field names, comma-separated, for error messages.
    pub fn names() -> String {
        Field::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Fields a bare term (no `field:`) searches: every text and keyword field stored in
    /// the index.
    pub fn bare_fields() -> impl Iterator<Item = Field> {
        Field::ALL
            .iter()
            .copied()
            .filter(|f| matches!(f.kind(), Kind::Text | Kind::Keyword) && f.is_stored())
    }

    /// Whether the index holds values of this field. `finding` is not a property of a
    /// session: [`super::resolve::findings`] turns it into `id:` terms before a search.
    pub fn is_stored(self) -> bool {
        self != Field::Finding
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

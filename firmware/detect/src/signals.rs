//! The signal catalog: every sentence a rule writes into a finding's signals
//! (「検知の根拠となった通信の特徴」), in Japanese and English, rendered per language.
//!
//! Rules do not write sentences. They store a message id and its parameters (the data
//! they quote: addresses, ports, user names, file names), encoded in one string so that
//! the aggregate keeps de-duplicating and capping signals as plain strings, and the
//! findings store stays the same file format. The words are chosen when findings are
//! read ([`render`]), like titles and countermeasures, so the Japanese report says
//! everything in Japanese and a language change applies to findings already stored.
//!
//! Encoding: `\u{1e}` + id, then `\u{1f}` + each parameter. A stored signal without the
//! leading `\u{1e}` is text from an older firmware and is shown as it is.
//!
//! Templates quote data between backticks or show it bare (addresses, domains, ports);
//! names and protocol words (FTP, OpenSSH, WinRM, CVE ids) stay as they are in both
//! languages. [`english_words`] finds English words left in a Japanese text; the tests
//! run it over every message and over the findings of every rule.

use kuroko_model::finding::Lang;

const MARK: char = '\u{1e}';
const SEP: char = '\u{1f}';

macro_rules! messages {
    ($($id:ident => ($ja:expr, $en:expr),)*) => {
        /// Every signal message. The snake_case ids in storage are the variant names.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Msg { $($id,)* }

        impl Msg {
            pub const ALL: &'static [Msg] = &[$(Msg::$id,)*];
            /// The stored id.
            pub fn id(self) -> &'static str {
                match self { $(Msg::$id => stringify!($id),)* }
            }
            /// The template in a language; `{0}`, `{1}`, … are the parameters.
            pub fn template(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((Msg::$id, Lang::Ja) => $ja, (Msg::$id, Lang::En) => $en,)*
                }
            }
            pub fn parse(id: &str) -> Option<Msg> {
                Msg::ALL.iter().copied().find(|m| m.id() == id)
            }
        }
    };
}

messages! {
    // A text the rule carries in both languages itself (e.g. one entry of a CVE table).
    Pair => ("{0}", "{1}"),
    // YARA
    YaraFileMatched => ("ファイル `{0}` ({1} バイト、`{2}`) が YARA ルール `{3}` に一致", "file `{0}` ({1} bytes, `{2}`) matched YARA rules `{3}`"),
    YaraFtpFileMatched => (
        "FTP の {0} `{1}` ({2} バイト、データ接続で転送) が YARA ルール `{3}` に一致",
        "FTP {0} `{1}` ({2} bytes, moved over the data connection) matched YARA rules `{3}`"
    ),
    ObjectLeftLog => (
        "保存ファイル `{0}` ({1} バイト、`{2}`、`{3}`、sha256:{5}): 運んだセッション `{4}` はセッションログから消えている。時刻はファイルを保存した時刻",
        "stored file `{0}` ({1} bytes, `{2}`, `{3}`, sha256:{5}): the session `{4}` that carried it has left the session log; the time is when the file was stored"
    ),
    YaraRetro => (
        "YARA ルール更新 ({0}) 後の保存ファイルの再チェックで検出",
        "found on a re-check of the stored files after the YARA rule update of {0}"
    ),
    // FTP
    FtpControlPort21 => ("ポート 21 番での FTP 制御接続", "FTP control connection on port 21"),
    LoginUserClearText => ("ログインユーザー `{0}` を平文で送信", "login user `{0}` sent in clear text"),
    FilesUploaded => ("ファイルのアップロード", "files uploaded"),
    FilesDownloaded => ("ファイルのダウンロード", "files downloaded"),
    FileUploadedNamed => ("ファイルのアップロード: {0} {1} ({2} バイト)", "file uploaded: {0} {1} ({2} bytes)"),
    FileDownloadedNamed => ("ファイルのダウンロード: {0} {1} ({2} バイト)", "file downloaded: {0} {1} ({2} bytes)"),
    MoreFilesInSession => ("(このセッションではほか {0} 件のファイル)", "(+{0} more files in this session)"),
    // Telnet
    TelnetOnPort => ("ポート {0} 番での Telnet 通信", "Telnet on port {0}"),
    // Oracle
    OracleDefaultPort => ("デフォルトポート {0} 番での Oracle TNS 通信", "Oracle TNS on the default port {0}"),
    OracleOnPort => ("ポート {0} 番での Oracle TNS 通信", "Oracle TNS on port {0}"),
    OracleService => ("サービス名 `{0}`", "service `{0}`"),
    // Reputation
    ReputationFrom => ("{1} に掲載された {0} からの接続", "connections from {0} listed in {1}"),
    ReputationTo => ("{1} に掲載された {0} への接続", "connections to {0} listed in {1}"),
    ReputationVolume => (
        "通信量: {0} セッション、送信 {1} バイト、受信 {2} バイト",
        "volume: {0} sessions, {1} bytes sent, {2} bytes received"
    ),
    // Intel packs
    IntelIndicator => (
        "フィード `{0}` に掲載された{1} `{3}` に一致 (パック `{4}`)",
        "matches the {2} `{3}` listed in feed `{0}` (pack `{4}`)"
    ),
    IntelLabel => ("`{0}` の分類: {1}", "`{0}` says: {1}"),
    IntelRetro => (
        "インテル更新 ({0}) 後の再チェックで過去の通信から検出",
        "found on a re-check after the intel update of {0}"
    ),
    // SSH
    SshExternalPort => (
        "許可リストにない外部サーバのポート {0} 番への SSH 接続",
        "SSH to port {0} of an outside server not on the allow list"
    ),
    ServerBanner => ("サーバのバナー `{0}`", "server banner `{0}`"),
    OpensshOlder => ("サーバのバナー `{0}`: OpenSSH {1} < {2}", "server banner `{0}`: OpenSSH {1} < {2}"),
    OpensshOlderPackage => (
        "サーバのバナー `{0}`: OpenSSH {1} < {2} (`{3}` パッケージ{4}: 修正がバックポートされている可能性あり)",
        "server banner `{0}`: OpenSSH {1} < {2} ({3} package{4}: fixes may be backported)"
    ),
    // Streaming and adult sites
    StreamingSite => ("業務時間内の動画配信サイト {0} へのアクセス", "streaming site {0} during business hours"),
    AdultSite => ("業務時間内のアダルトサイト {0} へのアクセス", "adult site {0} during business hours"),
    CategorySite => ("業務時間内の {0} カテゴリのサイト {1} へのアクセス", "{0} site {1} during business hours"),
    // WinRM
    WinrmWsman => ("ポート {0} 番の /wsman への HTTP リクエスト", "HTTP requests to /wsman on port {0}"),
    WinrmOnPort => ("ポート {0} 番での WinRM 通信", "WinRM on port {0}"),
    WinrmHttpPort => ("TCP ポート {0} 番 (WinRM の HTTP) でのデータ通信", "TCP port {0} (WinRM over HTTP) with payload"),
    WinrmHttpsPort => ("TCP ポート {0} 番 (WinRM の HTTPS) でのデータ通信", "TCP port {0} (WinRM over HTTPS) with payload"),
    // HTTP CONNECT
    ConnectTarget => ("CONNECT {0}", "CONNECT {0}"),
    // Fortinet
    FortiPortalPath => ("SSL-VPN ポータルのパス {0} が {1} で応答", "SSL-VPN portal path {0} answered {1}"),
    FortiLoginTitle => ("ログイン画面のタイトル `{0}`", "login page title `{0}`"),
    FortiServerHeader => ("Server ヘッダーに Fortinet の名前", "Server header names Fortinet"),
    FortiMaskedServer => ("FortiOS 特有の伏せ字の Server ヘッダー `{0}`", "FortiOS masked Server header `{0}`"),
    CertSubject => ("証明書のサブジェクト `{0}`", "certificate subject `{0}`"),
    CertIssuer => ("証明書の発行者 `{0}`", "certificate issuer `{0}`"),
    // Exploit attempts
    ProxyLogon => (
        "/ecp/ への Exchange ProxyLogon X-BEResource (CVE-2021-26855)",
        "Exchange ProxyLogon X-BEResource on /ecp/ (CVE-2021-26855)"
    ),
    ExploitAnswered => ("攻撃リクエストにサーバが {0} で応答", "server answered {0} to an exploit request"),
    TraversalInTarget => ("リクエスト先のパストラバーサル", "path traversal in the request target"),
    SystemFileRequest => ("システムファイルの要求 (ローカルファイルインクルージョン)", "request for a system file (local file inclusion)"),
    SecretProbe => ("漏洩した秘密情報の探索 (.env / .git / 認証情報)", "probe for leaked secrets (.env / .git / credentials)"),
    Log4ShellInTarget => ("リクエスト先の Log4Shell JNDI ルックアップ (CVE-2021-44228)", "Log4Shell JNDI lookup in the request target (CVE-2021-44228)"),
    OgnlInTarget => (
        "リクエスト先の OGNL/EL 式 (例: Confluence CVE-2022-26134)",
        "OGNL/EL expression in the request target (e.g. Confluence CVE-2022-26134)"
    ),
    CommandInjectionInTarget => ("リクエスト先のコマンドインジェクション", "command injection in the request target"),
    SqlInjectionInTarget => ("リクエスト先の SQL インジェクション", "SQL injection in the request target"),
    XssInTarget => ("リクエスト先のクロスサイトスクリプティングの試行", "cross-site scripting probe in the request target"),
    Log4ShellInHeader => ("ヘッダー `{0}` の Log4Shell JNDI ルックアップ (CVE-2021-44228)", "Log4Shell JNDI lookup in header {0} (CVE-2021-44228)"),
    ShellshockInHeader => ("ヘッダー `{0}` の Shellshock 関数定義 (CVE-2014-6271)", "Shellshock function definition in header {0} (CVE-2014-6271)"),
    OgnlInHeader => ("ヘッダー `{0}` の OGNL 式 (例: Struts CVE-2017-5638)", "OGNL expression in header {0} (e.g. Struts CVE-2017-5638)"),
    CommandInjectionInHeader => ("ヘッダー `{0}` のコマンドインジェクション", "command injection in header {0}"),
    TraversalInCookie => ("Cookie のパストラバーサル (例: PAN-OS CVE-2024-3400)", "path traversal in a cookie (e.g. PAN-OS CVE-2024-3400)"),
    // Phishing
    DisplayNameShowsOther => ("表示名は {0} だが送信元アドレスは {1}", "display name shows {0} but the address is at {1}"),
    DisplayNameNamesBrand => ("表示名 `{0}` は {1} を名乗るが送信元アドレスは {2}", "display name `{0}` names {1} but the address is at {2}"),
    DisplayNameNamesBrandUnknown => (
        "表示名 `{0}` は {1} を名乗るが送信元ドメインは不明",
        "display name `{0}` names {1} but the address is at an unknown domain"
    ),
    SenderLookalike => ("送信元ドメイン {0} が {1} を模倣 ({2})", "sender domain {0} imitates {1} ({2})"),
    ReplyToLookalike => ("Reply-To のドメイン {0} が {1} を模倣 ({2})", "reply-to domain {0} imitates {1} ({2})"),
    LinkLookalike => ("リンク先ドメイン {0} が {1} を模倣 ({2})", "link domain {0} imitates {1} ({2})"),
    ReplyToDiffers => ("Reply-To のドメイン {0} が From のドメイン {1} と異なる", "Reply-To domain {0} differs from the From domain {1}"),
    LinkUserInfo => ("リンクがユーザー情報部分の後ろに本当の宛先 {0} を隠している", "link hides its target {0} behind user info"),
    LinkTextMismatch => ("リンクの表示は {0} だが実際の宛先は {1}", "link text shows {0} but goes to {1}"),
    LinkBareIp => ("IP アドレス {0} を直接指すリンク", "link to a bare IP address {0}"),
    ArchiveHoldsExecutable => ("圧縮ファイル `{0}` に実行ファイル・スクリプト `{1}`", "archive `{0}` contains executable or script `{1}`"),
    ArchiveHoldsMacro => (
        "圧縮ファイル `{0}` にディスクイメージ・マクロ付き文書 `{1}`",
        "archive `{0}` contains disk image or macro document `{1}`"
    ),
    DoubleExtensionInArchive => ("圧縮ファイル `{1}` 内の二重拡張子 `{0}`", "double extension `{0}` inside archive `{1}`"),
    ExecutableAttachment => ("実行ファイル・スクリプトの添付 `{0}`", "executable or script attachment `{0}`"),
    MacroAttachment => ("ディスクイメージ・マクロ付き文書の添付 `{0}`", "disk image or macro document attachment `{0}`"),
    DoubleExtension => ("二重拡張子 `{0}`", "double extension `{0}`"),
    // Weak TLS
    TlsNegotiatedOld => ("古いプロトコル {0} でのネゴシエーション", "negotiated {0}"),
    TlsWeakCipher => ("弱い暗号スイート {0}", "weak cipher suite {0}"),
    CertExpired => ("期限切れの証明書 `{0}` (有効期限 {1})", "expired certificate `{0}` (not after {1})"),
    CertSelfSigned => ("自己署名証明書 `{0}`", "self-signed certificate `{0}`"),
    CertNameMismatch => ("証明書 `{0}` にサーバ名 `{1}` が含まれない", "certificate `{0}` does not name `{1}`"),
    // Cleartext credentials
    FtpLoginNoTls => ("TLS なしの FTP ログイン (ユーザー `{0}`)", "FTP login as `{0}` without TLS"),
    MailLoginNoTls => ("TLS なしの {0} {1} ログイン (ユーザー `{2}`)", "{0} {1} login as `{2}` without TLS"),
    HttpBasicAuth => ("TLS なしの HTTP Basic 認証 (ユーザー `{0}`)", "HTTP Basic authentication as `{0}`"),
    MailSubject => ("件名: {0}", "subject: {0}"),
    AttachmentHash => ("添付ファイル `{0}` の SHA-256 {1}", "attachment `{0}` sha256 {1}"),
    // Added when rendering a finding
    MoreSignals => ("(ほか {0} 件の特徴)", "(+{0} more signals)"),
    PeerClients => ("接続元 ({0}): {1}", "clients ({0}): {1}"),
    PeerServers => ("接続先 ({0}): {1}", "servers ({0}): {1}"),
    PeerSites => ("サイト ({0}): {1}", "sites ({0}): {1}"),
    PeersMore => ("{0} (ほか {1} 件)", "{0} (+{1} more)"),
    VpnLargestUpload => (
        "時間枠内のアップロード合計の最大: {0} MB ({1} バイト, {2})",
        "largest upload total within the window: {0} MB ({1} bytes, {2})"
    ),
}

/// Words inside parameters that the catalog translates (brand-imitation kinds, site
/// categories); anything else is data and shown as it is.
const TERMS: &[(&str, &str)] = &[
    ("homoglyph", "ホモグリフ"),
    ("edit distance", "綴りの類似"),
    ("embedded brand name", "ブランド名の埋め込み"),
    ("same name under another domain", "別ドメインの同名"),
    ("streaming", "動画配信"),
    ("adult", "アダルト"),
];

/// Translates a known term for `lang`; other text is returned unchanged.
pub fn term(text: &str, lang: Lang) -> &str {
    match lang {
        Lang::En => text,
        Lang::Ja => TERMS
            .iter()
            .find(|(en, _)| *en == text)
            .map(|(_, ja)| *ja)
            .unwrap_or(text),
    }
}

/// A signal to store: the message and its parameters.
pub fn encode(msg: Msg, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::new();
    out.push(MARK);
    out.push_str(msg.id());
    for a in args {
        out.push(SEP);
        // The separators cannot occur in a parameter (they would shift the others).
        out.extend(
            a.to_string()
                .chars()
                .map(|c| if c == MARK || c == SEP { '?' } else { c }),
        );
    }
    out
}

/// A text the caller has in both languages (a table entry of its own).
pub fn pair(ja: &str, en: &str) -> String {
    encode(Msg::Pair, &[&ja, &en])
}

/// The parameters of a stored signal of message `msg` (`None` for another message or
/// plain text).
pub fn params(stored: &str, msg: Msg) -> Option<Vec<&str>> {
    let rest = stored.strip_prefix(MARK)?;
    let mut parts = rest.split(SEP);
    (parts.next()? == msg.id()).then(|| parts.collect())
}

/// A stored signal in `lang`. Plain text (older records, unknown ids) is shown as it is.
pub fn render(stored: &str, lang: Lang) -> String {
    let Some(rest) = stored.strip_prefix(MARK) else {
        return stored.to_string();
    };
    let mut parts = rest.split(SEP);
    let id = parts.next().unwrap_or("");
    let args: Vec<&str> = parts.collect();
    let Some(msg) = Msg::parse(id) else {
        // A newer firmware's message: its parameters are the best we can show.
        return format!("{id}: {}", args.join(", "));
    };
    fill(msg.template(lang), &args, lang)
}

/// Replaces `{n}` in one pass (a parameter that contains `{1}` stays literal).
fn fill(template: &str, args: &[&str], lang: Lang) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| after[..close].parse::<usize>().ok().map(|n| (n, close)))
        {
            Some((n, close)) => {
                out.push_str(term(args.get(n).copied().unwrap_or(""), lang));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lower-case English words left in a text meant to be Japanese, outside quoted data
/// (between backticks), addresses, URLs, paths and names. Used by the tests that check
/// the Japanese report has no English sentence; lower-case because names, protocol words
/// and header names are written capitalised or upper-case.
pub fn english_words(text: &str) -> Vec<String> {
    // Quoted data.
    let mut unquoted = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 0 {
            unquoted.push_str(part);
            unquoted.push(' ');
        }
    }
    let mut words = Vec::new();
    for token in unquoted.split(|c: char| c.is_whitespace() || "()[],;=<>「」、。".contains(c))
    {
        let token = token.trim_end_matches(':');
        // Addresses, domains, paths, URLs, versions, ids: data, not prose.
        if token.contains(['.', '/', ':', '@', '_', '-', '$', '%', '?'])
            || token.chars().any(|c| c.is_ascii_digit())
        {
            continue;
        }
        let is_word = token.len() >= 2 && token.chars().all(|c| c.is_ascii_alphabetic());
        if is_word && token.chars().all(|c| c.is_ascii_lowercase()) && !ALLOWED.contains(&token) {
            words.push(token.to_string());
        }
    }
    words
}

/// Lower-case words that are names, not English prose: protocol names as the session
/// tables show them (`ftp`, `http`), URL paths, the HTML attribute a link's target is in.
const ALLOWED: &[&str] = &[
    "wsman",
    "ecp",
    "href",
    "tcp",
    "udp",
    "icmp",
    "arp",
    "ftp",
    "http",
    "https",
    "smtp",
    "smtps",
    "imap",
    "imaps",
    "dns",
    "mdns",
    "tls",
    "ssl",
    "ssh",
    "telnet",
    "oracle",
    "smb",
    "rdp",
    "ldap",
    "ldaps",
    "winrm",
    "ntp",
    "dhcp",
    "sip",
    "quic",
    "snmp",
    "syslog",
    "vnc",
    "gre",
    "esp",
    "ipsec",
    "openvpn",
    "wireguard",
    "mysql",
    "postgres",
    "kerberos",
    "netbios",
    "radius",
    "tftp",
    "socks",
    "irc",
    "mqtt",
    "modbus",
    "vxlan",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_renders_in_both_languages_and_ja_has_no_english_prose() {
        for msg in Msg::ALL {
            let args = ["203.0.113.9", "mail.example", "8.9p1", "10.0.0.1"];
            let stored = encode(*msg, &[&args[0], &args[1], &args[2], &args[3]]);
            let ja = render(&stored, Lang::Ja);
            let en = render(&stored, Lang::En);
            assert!(
                !ja.contains('{') && !en.contains('{'),
                "{msg:?}: {ja} / {en}"
            );
            if *msg != Msg::Pair {
                assert_eq!(english_words(&ja), Vec::<String>::new(), "{msg:?}: {ja}");
                assert!(!en.is_empty());
            }
            assert_eq!(Msg::parse(msg.id()), Some(*msg));
        }
        for (en, ja) in TERMS {
            assert_eq!(term(en, Lang::Ja), *ja);
            assert!(english_words(ja).is_empty());
        }
    }

    #[test]
    fn parameters_and_old_plain_text_render_as_they_are() {
        let s = encode(Msg::LoginUserClearText, &[&"bob {1}\u{1f}x"]);
        assert_eq!(
            render(&s, Lang::Ja),
            "ログインユーザー `bob {1}?x` を平文で送信"
        );
        assert_eq!(
            render(&s, Lang::En),
            "login user `bob {1}?x` sent in clear text"
        );
        // A record written by an older firmware.
        assert_eq!(render("files uploaded", Lang::Ja), "files uploaded");
        // A message this firmware does not know.
        assert_eq!(
            render("\u{1e}FutureThing\u{1f}a\u{1f}b", Lang::Ja),
            "FutureThing: a, b"
        );
        assert_eq!(
            render(&encode(Msg::StreamingSite, &[&"youtube.com"]), Lang::Ja),
            "業務時間内の動画配信サイト youtube.com へのアクセス"
        );
        assert_eq!(
            render(
                &encode(Msg::CategorySite, &[&"adult", &"x.example"]),
                Lang::Ja
            ),
            "業務時間内の アダルト カテゴリのサイト x.example へのアクセス"
        );
    }

    #[test]
    fn the_english_checker_finds_prose_and_leaves_data() {
        assert_eq!(
            english_words("login user `alice` sent in clear text"),
            ["login", "user", "sent", "in", "clear", "text"]
        );
        assert!(
            english_words("ポート 21 番での FTP 制御接続 `files uploaded` 198.51.100.2").is_empty()
        );
        assert!(english_words("リンク先 https://evil.example/login").is_empty());
    }
}

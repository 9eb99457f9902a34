//! The rule catalog: for every built-in rule its id, titles, report category, MITRE
//! ATT&CK techniques, default levels and countermeasures in Japanese and English.
//!
//! Kept apart from the detection logic so that the report, the console and the consultant
//! see the same words, and so that the levels table in the crate docs has one source.
//! Countermeasure wording follows the diagnosis service brochure where it has one.

use kuroko_model::finding::{Category, Lang};

/// Every built-in rule. The string ids are the contract (`shared/CONTRACT.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    FortinetLoginExposed,
    PublicAppExploitAttempt,
    PhishingMail,
    OpensshOutdated,
    WinrmUse,
    TelnetUse,
    FtpDefaultPortInternal,
    FtpDefaultPortExternal,
    SshExternal,
    StreamingOrAdultInBusinessHours,
    OracleTraffic,
    VpnLargeUpload,
    BadReputationIp,
    HttpConnectNonstandardPort,
    VulnerableSoftware,
    WeakTls,
    CleartextCredentials,
    IntelMatch,
    YaraMatch,
}

impl RuleId {
    pub const ALL: [RuleId; 19] = [
        RuleId::FortinetLoginExposed,
        RuleId::PublicAppExploitAttempt,
        RuleId::PhishingMail,
        RuleId::OpensshOutdated,
        RuleId::WinrmUse,
        RuleId::TelnetUse,
        RuleId::FtpDefaultPortInternal,
        RuleId::FtpDefaultPortExternal,
        RuleId::SshExternal,
        RuleId::StreamingOrAdultInBusinessHours,
        RuleId::OracleTraffic,
        RuleId::VpnLargeUpload,
        RuleId::BadReputationIp,
        RuleId::HttpConnectNonstandardPort,
        RuleId::VulnerableSoftware,
        RuleId::WeakTls,
        RuleId::CleartextCredentials,
        RuleId::IntelMatch,
        RuleId::YaraMatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::FortinetLoginExposed => "fortinet_login_exposed",
            RuleId::PublicAppExploitAttempt => "public_app_exploit_attempt",
            RuleId::PhishingMail => "phishing_mail",
            RuleId::OpensshOutdated => "openssh_outdated",
            RuleId::WinrmUse => "winrm_use",
            RuleId::TelnetUse => "telnet_use",
            RuleId::FtpDefaultPortInternal => "ftp_default_port_internal",
            RuleId::FtpDefaultPortExternal => "ftp_default_port_external",
            RuleId::SshExternal => "ssh_external",
            RuleId::StreamingOrAdultInBusinessHours => "streaming_or_adult_in_business_hours",
            RuleId::OracleTraffic => "oracle_traffic",
            RuleId::VpnLargeUpload => "vpn_large_upload",
            RuleId::BadReputationIp => "bad_reputation_ip",
            RuleId::HttpConnectNonstandardPort => "http_connect_nonstandard_port",
            RuleId::VulnerableSoftware => "vulnerable_software",
            RuleId::WeakTls => "weak_tls",
            RuleId::CleartextCredentials => "cleartext_credentials",
            RuleId::IntelMatch => "intel_match",
            RuleId::YaraMatch => "yara_match",
        }
    }

    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == id)
    }

    /// Position in `ALL`, for per-rule tables.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn info(self) -> &'static RuleInfo {
        &CATALOG[self.index()]
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the report says about a rule.
#[derive(Debug)]
pub struct RuleInfo {
    pub id: RuleId,
    pub title_ja: &'static str,
    pub title_en: &'static str,
    pub category: Category,
    pub attack: &'static [&'static str],
    /// Default vulnerability level (1–3); see the levels table in the crate docs.
    pub vulnerability: u8,
    /// Default threat level (1–3).
    pub threat: u8,
    pub countermeasures_ja: &'static [&'static str],
    pub countermeasures_en: &'static [&'static str],
}

impl RuleInfo {
    pub fn title(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Ja => self.title_ja,
            Lang::En => self.title_en,
        }
    }
    pub fn countermeasures(&self, lang: Lang) -> &'static [&'static str] {
        match lang {
            Lang::Ja => self.countermeasures_ja,
            Lang::En => self.countermeasures_en,
        }
    }
}

/// In the order of `RuleId::ALL` (checked by a test).
pub static CATALOG: [RuleInfo; 19] = [
    RuleInfo {
        id: RuleId::FortinetLoginExposed,
        title_ja: "Fortinet 社製 NW 機器 (FortiGate SSL-VPN) のログイン画面の外部公開",
        title_en: "Fortinet (FortiGate SSL-VPN) login page exposed to the Internet",
        category: Category::InitialAccess,
        attack: &["T1133", "T1190"],
        vulnerability: 2,
        threat: 3,
        countermeasures_ja: &[
            "Fortinet 社製 NW 機器のログイン画面の外部公開設定を無効化",
            "アクセスログの確認",
            "悪性 IP アドレスの遮断",
            "FortiOS を最新の修正版へアップデート",
        ],
        countermeasures_en: &[
            "Disable exposure of the Fortinet device's login page to the Internet",
            "Review the access logs",
            "Block malicious IP addresses",
            "Update FortiOS to the latest fixed release",
        ],
    },
    RuleInfo {
        id: RuleId::PublicAppExploitAttempt,
        title_ja: "外部公開アプリのエクスプロイト",
        title_en: "Exploit attempts against public-facing applications",
        category: Category::InitialAccess,
        attack: &["T1190"],
        vulnerability: 2,
        threat: 3,
        countermeasures_ja: &[
            "アクセスログの確認",
            "悪性 IP アドレスの遮断",
            "対象アプリケーション・機器の修正パッチの適用",
            "WAF / IPS による防御",
        ],
        countermeasures_en: &[
            "Review the access logs",
            "Block malicious IP addresses",
            "Apply the vendor's patches to the targeted application or device",
            "Protect the application with a WAF / IPS",
        ],
    },
    RuleInfo {
        id: RuleId::PhishingMail,
        title_ja: "フィッシング",
        title_en: "Phishing mail",
        category: Category::InitialAccess,
        attack: &["T1566.001", "T1566.002"],
        vulnerability: 2,
        threat: 3,
        countermeasures_ja: &[
            "メールセキュリティの強化 (標的型攻撃メール対策の導入)",
            "受信者への注意喚起と該当メールの削除",
            "送信元ドメイン・URL の遮断",
        ],
        countermeasures_en: &[
            "Strengthen mail security (introduce targeted-mail protection)",
            "Warn the recipients and delete the mail",
            "Block the sender domain and the linked URLs",
        ],
    },
    RuleInfo {
        id: RuleId::OpensshOutdated,
        title_ja: "古いバージョンの OpenSSH の利用",
        title_en: "Outdated OpenSSH server",
        category: Category::LateralMovement,
        attack: &["T1021.004", "T1210"],
        vulnerability: 2,
        threat: 2,
        countermeasures_ja: &["OpenSSH 公開の最新バージョン (9.8/9.8p1) へのアップデート"],
        countermeasures_en: &["Update OpenSSH to the latest release (9.8/9.8p1 or later)"],
    },
    RuleInfo {
        id: RuleId::WinrmUse,
        title_ja: "WinRM の利用",
        title_en: "WinRM in use",
        category: Category::LateralMovement,
        attack: &["T1021.006"],
        vulnerability: 2,
        threat: 2,
        countermeasures_ja: &["WinRM の無効化", "WinRM を利用する場合は接続元の制限"],
        countermeasures_en: &[
            "Disable WinRM",
            "Where WinRM is needed, restrict who may connect",
        ],
    },
    RuleInfo {
        id: RuleId::TelnetUse,
        title_ja: "Telnet の利用",
        title_en: "Telnet in use",
        category: Category::LateralMovement,
        attack: &["T1021", "T1040"],
        vulnerability: 3,
        threat: 2,
        countermeasures_ja: &["Telnet の無効化", "SSH への移行"],
        countermeasures_en: &["Disable Telnet", "Move to SSH"],
    },
    RuleInfo {
        id: RuleId::FtpDefaultPortInternal,
        title_ja: "デフォルトポートを使用した FTP 通信 (内部 -> 内部)",
        title_en: "FTP on the default port (internal -> internal)",
        category: Category::Exfiltration,
        attack: &["T1048.003", "T1040"],
        vulnerability: 2,
        threat: 2,
        countermeasures_ja: &[
            "FTP の使用を禁止",
            "SFTP を使用",
            "デフォルトポートからの変更",
        ],
        countermeasures_en: &[
            "Prohibit the use of FTP",
            "Use SFTP",
            "Move the service off the default port",
        ],
    },
    RuleInfo {
        id: RuleId::FtpDefaultPortExternal,
        title_ja: "デフォルトポートを使用した FTP 通信 (内部 -> 外部)",
        title_en: "FTP on the default port (internal -> external)",
        category: Category::Exfiltration,
        attack: &["T1048.003"],
        vulnerability: 3,
        threat: 2,
        countermeasures_ja: &[
            "FTP の使用を禁止",
            "SFTP を使用",
            "デフォルトポートからの変更",
        ],
        countermeasures_en: &[
            "Prohibit the use of FTP",
            "Use SFTP",
            "Move the service off the default port",
        ],
    },
    RuleInfo {
        id: RuleId::SshExternal,
        title_ja: "業務利用外の外部サーバへの SSH アクセス",
        title_en: "SSH access to outside servers not approved for business use",
        category: Category::Insider,
        attack: &["T1048", "T1572", "T1021.004"],
        vulnerability: 3,
        threat: 3,
        countermeasures_ja: &[
            "該当サーバの用途の確認",
            "通信の悪性の有無の確認",
            "該当ユーザーの特定・確認",
            "該当サーバへの通信の遮断",
        ],
        countermeasures_en: &[
            "Confirm what the server is used for",
            "Check whether the traffic is malicious",
            "Identify and interview the user",
            "Block traffic to the server",
        ],
    },
    RuleInfo {
        id: RuleId::StreamingOrAdultInBusinessHours,
        title_ja: "業務時間内での動画配信・アダルトサイトへのアクセス",
        title_en: "Streaming or adult sites during business hours",
        category: Category::Insider,
        attack: &[],
        vulnerability: 1,
        threat: 2,
        countermeasures_ja: &["就労規則をもとにユーザーへ確認", "継続的な通信の監視"],
        countermeasures_en: &[
            "Check with the user against the work rules",
            "Keep monitoring the traffic",
        ],
    },
    RuleInfo {
        id: RuleId::OracleTraffic,
        title_ja: "Oracle の通信",
        title_en: "Oracle database (TNS) traffic",
        category: Category::Other,
        attack: &["T1213", "T1040"],
        vulnerability: 2,
        threat: 2,
        countermeasures_ja: &[
            "該当サーバのアクセスログの確認",
            "デフォルトポートからの変更",
            "通信の暗号化 (Oracle Native Network Encryption / TLS)",
        ],
        countermeasures_en: &[
            "Review the server's access logs",
            "Move the service off the default port",
            "Encrypt the traffic (Oracle Native Network Encryption / TLS)",
        ],
    },
    RuleInfo {
        id: RuleId::VpnLargeUpload,
        title_ja: "VPN 経由での大容量ファイルアップロード",
        title_en: "Large upload over VPN",
        category: Category::Other,
        attack: &["T1048", "T1030"],
        vulnerability: 2,
        threat: 2,
        countermeasures_ja: &["該当サーバのアクセスログの確認", "該当ユーザーの特定・確認"],
        countermeasures_en: &[
            "Review the server's access logs",
            "Identify and interview the user",
        ],
    },
    RuleInfo {
        id: RuleId::BadReputationIp,
        title_ja: "レピュテーションの低い IP アドレスとの通信・接続試行",
        title_en: "Traffic with untrusted (poor reputation) IP addresses",
        category: Category::Other,
        attack: &["T1071", "T1595"],
        vulnerability: 2,
        threat: 3,
        countermeasures_ja: &["NW 機器のアクセスログの確認", "悪性 IP アドレスの遮断"],
        countermeasures_en: &[
            "Review the network devices' access logs",
            "Block the malicious IP addresses",
        ],
    },
    RuleInfo {
        id: RuleId::HttpConnectNonstandardPort,
        title_ja: "HTTP CONNECT による標準外ポートへのトンネル",
        title_en: "HTTP CONNECT tunnels to non-standard ports",
        category: Category::Other,
        attack: &["T1090", "T1572"],
        vulnerability: 2,
        threat: 2,
        countermeasures_ja: &[
            "プロキシで CONNECT 先を 443 番ポートに制限",
            "該当端末・ユーザーの特定・確認",
            "継続的な通信の監視",
        ],
        countermeasures_en: &[
            "Restrict CONNECT on the proxy to port 443",
            "Identify the host and user and check with them",
            "Keep monitoring the traffic",
        ],
    },
    RuleInfo {
        id: RuleId::VulnerableSoftware,
        title_ja: "既知の脆弱性があるバージョンのサーバソフトウェアの利用",
        title_en: "Server software with known vulnerabilities",
        category: Category::LateralMovement,
        attack: &["T1190", "T1210"],
        vulnerability: 3,
        threat: 2,
        countermeasures_ja: &[
            "該当ソフトウェアを修正済みバージョンへアップデート",
            "アップデートできない場合は接続元の制限",
            "該当サーバのアクセスログの確認",
        ],
        countermeasures_en: &[
            "Update the software to a fixed release",
            "Where it cannot be updated yet, restrict who may connect",
            "Review the server's access logs",
        ],
    },
    RuleInfo {
        id: RuleId::WeakTls,
        title_ja: "脆弱な TLS 設定 (旧バージョン・弱い暗号・不正な証明書)",
        title_en: "Weak TLS (old protocol versions, weak ciphers, invalid certificates)",
        category: Category::Other,
        attack: &["T1557", "T1040"],
        vulnerability: 2,
        threat: 2,
        countermeasures_ja: &[
            "TLS 1.0/1.1 と SSLv3 の無効化 (TLS 1.2 以上のみ許可)",
            "RC4・3DES・NULL・EXPORT 等の弱い暗号スイートの無効化",
            "有効期限内で、サーバ名と一致する、信頼された認証局の証明書への更新",
        ],
        countermeasures_en: &[
            "Disable TLS 1.0/1.1 and SSLv3 (allow TLS 1.2 and later only)",
            "Disable weak cipher suites (RC4, 3DES, NULL, EXPORT, anonymous)",
            "Install a certificate from a trusted CA that is valid and names the server",
        ],
    },
    RuleInfo {
        id: RuleId::CleartextCredentials,
        title_ja: "平文での認証情報の送信",
        title_en: "Credentials sent in clear text",
        category: Category::LateralMovement,
        attack: &["T1040", "T1552"],
        vulnerability: 3,
        threat: 2,
        countermeasures_ja: &[
            "暗号化されたプロトコルへの移行 (SFTP/FTPS・SSH・POP3S/IMAPS・SMTP STARTTLS・HTTPS)",
            "平文認証の無効化",
            "該当ユーザーのパスワード変更",
        ],
        countermeasures_en: &[
            "Move to encrypted protocols (SFTP/FTPS, SSH, POP3S/IMAPS, SMTP with STARTTLS, HTTPS)",
            "Disable clear-text authentication on the servers",
            "Change the passwords of the users named",
        ],
    },
    RuleInfo {
        id: RuleId::IntelMatch,
        title_ja: "脅威インテリジェンスに掲載された通信先・ファイルとの通信",
        title_en: "Traffic or files matching threat-intel indicators",
        category: Category::Other,
        attack: &["T1071", "T1105", "T1573"],
        vulnerability: 2,
        threat: 3,
        countermeasures_ja: &[
            "該当端末の調査 (マルウェア感染の有無の確認)",
            "掲載された通信先・ドメイン・URL の遮断",
            "該当ファイルの隔離・削除",
        ],
        countermeasures_en: &[
            "Investigate the host (check it for malware)",
            "Block the listed addresses, domains and URLs",
            "Quarantine or delete the listed files",
        ],
    },
    RuleInfo {
        id: RuleId::YaraMatch,
        title_ja: "YARA ルールに一致するファイルの転送",
        title_en: "Files matching YARA rules transferred",
        category: Category::InitialAccess,
        attack: &["T1105", "T1566.001", "T1204.002"],
        // Default when no matched rule's metadata gives a level (`kuroko_level`,
        // `severity`): B. The finding takes the highest level its rules ask for.
        vulnerability: 2,
        threat: 3,
        countermeasures_ja: &[
            "該当ファイルを受け取った端末の隔離・調査",
            "該当ファイルの実行有無の確認",
            "送信元の遮断",
        ],
        countermeasures_en: &[
            "Isolate and examine the hosts that received the files",
            "Check whether the files were opened or run",
            "Block the source",
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_in_rule_order_and_complete() {
        for (i, rule) in RuleId::ALL.iter().enumerate() {
            assert_eq!(CATALOG[i].id, *rule);
            assert_eq!(rule.index(), i);
            assert_eq!(RuleId::parse(rule.as_str()), Some(*rule));
            let info = rule.info();
            assert!((1..=3).contains(&info.vulnerability) && (1..=3).contains(&info.threat));
            assert!(!info.countermeasures_ja.is_empty());
            assert_eq!(info.countermeasures_ja.len(), info.countermeasures_en.len());
        }
        assert_eq!(RuleId::parse("no_such_rule"), None);
    }
}

//! The words of the report in Japanese and English.
//!
//! Section titles, table headers, the scoring criteria of the diagnosis service, and a
//! built-in catalog of per-rule texts (title, the reasoning behind the default levels,
//! countermeasures) in both languages. Findings carry their title and countermeasures in
//! the language detection ran in; the catalog lets one set of findings produce a report in
//! either language. A rule the catalog does not know falls back to the finding's own texts.

use kuroko_model::finding::{Category, Lang};

/// Picks the text for the language.
pub fn tr(lang: Lang, ja: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

/// The six chapters, in order, as in the service's report outline.
pub fn section_titles(lang: Lang) -> [&'static str; 6] {
    match lang {
        Lang::Ja => [
            "実施概要",
            "総合サマリ (スコアリング)",
            "システム環境分析",
            "検出脅威一覧",
            "シナリオベースリスク分析・対策案",
            "検出脅威詳細",
        ],
        Lang::En => [
            "Overview",
            "Summary and risk scoring",
            "System environment analysis",
            "Detected threats",
            "Scenario-based risk analysis and countermeasures",
            "Threat details",
        ],
    }
}

/// Anchor ids of the six chapters (stable, used by tests and the table of contents).
pub const SECTION_IDS: [&str; 6] = [
    "overview",
    "summary",
    "environment",
    "threats",
    "scenarios",
    "details",
];

/// The criteria for the vulnerability level (the "acceptability" of a threat), 3 → 1.
pub fn vulnerability_criteria(lang: Lang) -> [&'static str; 3] {
    match lang {
        Lang::Ja => [
            "脅威が発生した場合、攻撃が成功する可能性が高い。",
            "脅威が発生した場合、攻撃が成功する可能性が中程度。",
            "脅威が発生した場合、攻撃が成功する可能性が低い。",
        ],
        Lang::En => [
            "If the threat occurs, the attack is likely to succeed.",
            "If the threat occurs, the attack may succeed (moderate likelihood).",
            "If the threat occurs, the attack is unlikely to succeed.",
        ],
    }
}

/// The criteria for the threat level (ease of attack, ease of discovery), 3 → 1.
pub fn threat_criteria(lang: Lang) -> [&'static str; 3] {
    match lang {
        Lang::Ja => [
            "外部からアクセス可能で、エクスプロイトが存在する。",
            "イントラネット上に存在し、調査すれば攻撃を再現できる。",
            "制限されたネットワーク上に存在し、攻撃の実現が困難。",
        ],
        Lang::En => [
            "Reachable from outside, and an exploit exists.",
            "On the intranet; the attack can be reproduced with some investigation.",
            "On a restricted network; the attack is hard to carry out.",
        ],
    }
}

/// The grade table: (grade, level pairs, condition), as in the service's scoring sheet.
pub fn grade_rows(lang: Lang) -> [(&'static str, &'static str, &'static str); 5] {
    match lang {
        Lang::Ja => [
            ("A", "3 × 3", "脅威 × 脆弱性 = 9"),
            ("B", "3 × 2, 2 × 3", "脅威 × 脆弱性 = 6"),
            ("C", "2 × 2, 3 × 1, 1 × 3", "3 ≦ 脅威 × 脆弱性 < 6"),
            ("D", "2 × 1, 1 × 2", "脅威 × 脆弱性 = 2"),
            ("E", "1 × 1", "脅威 × 脆弱性 = 1"),
        ],
        Lang::En => [
            ("A", "3 × 3", "threat × vulnerability = 9"),
            ("B", "3 × 2, 2 × 3", "threat × vulnerability = 6"),
            ("C", "2 × 2, 3 × 1, 1 × 3", "3 ≦ threat × vulnerability < 6"),
            ("D", "2 × 1, 1 × 2", "threat × vulnerability = 2"),
            ("E", "1 × 1", "threat × vulnerability = 1"),
        ],
    }
}

/// What each grade asks of the customer.
pub fn grade_meaning(lang: Lang, grade: &str) -> &'static str {
    match (lang, grade) {
        (Lang::Ja, "A") => "至急の対応が必要",
        (Lang::Ja, "B") => "早期の対応を推奨",
        (Lang::Ja, "C") => "計画的な対応を推奨",
        (Lang::Ja, "D") => "状況に応じて対応",
        (Lang::Ja, _) => "経過観察",
        (Lang::En, "A") => "Act immediately",
        (Lang::En, "B") => "Act soon",
        (Lang::En, "C") => "Plan a fix",
        (Lang::En, "D") => "Act as circumstances require",
        (Lang::En, _) => "Monitor",
    }
}

/// The scenario name of a category (section 5's headings).
pub fn scenario_name(lang: Lang, c: Category) -> &'static str {
    match (lang, c) {
        (Lang::Ja, Category::InitialAccess) => "外部からの初期アクセス",
        (Lang::Ja, Category::LateralMovement) => "内部ネットワークでの横展開",
        (Lang::Ja, Category::Exfiltration) => "情報流出",
        (Lang::Ja, Category::Insider) => "内部不正による情報漏洩",
        (Lang::Ja, Category::Other) => "その他のリスク",
        (Lang::En, Category::InitialAccess) => "Initial access from outside",
        (Lang::En, Category::LateralMovement) => "Lateral movement inside the network",
        (Lang::En, Category::Exfiltration) => "Data exfiltration",
        (Lang::En, Category::Insider) => "Data leakage through insider misuse",
        (Lang::En, Category::Other) => "Other risks",
    }
}

/// How an attacker would use findings of this category: the scenario's story.
pub fn scenario_story(lang: Lang, c: Category) -> &'static str {
    match (lang, c) {
        (Lang::Ja, Category::InitialAccess) => {
            "インターネットから到達可能なサービスや受信メールを足掛かりに、攻撃者が社内ネットワークへの侵入を試みるシナリオ。"
        }
        (Lang::Ja, Category::LateralMovement) => {
            "侵入した端末から、平文や古い管理プロトコルを経由して他のサーバへ侵害を拡大するシナリオ。"
        }
        (Lang::Ja, Category::Exfiltration) => {
            "暗号化されていない転送手段で、機密情報が盗聴・持ち出しされるシナリオ。"
        }
        (Lang::Ja, Category::Insider) => {
            "正規の権限を持つ利用者が、業務外の通信や外部サーバを経由して情報を持ち出すシナリオ。"
        }
        (Lang::Ja, Category::Other) => {
            "上記に分類されないが、攻撃の足掛かりや調査の手掛かりとなる通信。"
        }
        (Lang::En, Category::InitialAccess) => {
            "An attacker uses a service reachable from the Internet, or incoming mail, as a foothold into the internal network."
        }
        (Lang::En, Category::LateralMovement) => {
            "From a compromised host, the attacker spreads to other servers over clear-text or outdated management protocols."
        }
        (Lang::En, Category::Exfiltration) => {
            "Confidential data is intercepted or carried out over unencrypted transfers."
        }
        (Lang::En, Category::Insider) => {
            "A user with legitimate access takes data out through non-business traffic or outside servers."
        }
        (Lang::En, Category::Other) => {
            "Traffic outside the scenarios above that can still give an attacker a foothold or needs investigation."
        }
    }
}

/// Per-rule texts of the built-in detection rules.
#[derive(Clone, Debug)]
pub struct RuleText {
    pub title: &'static str,
    /// Why the rule's default vulnerability and threat levels are what they are.
    pub reasoning: &'static str,
    pub countermeasures: &'static [&'static str],
}

/// The built-in catalog (the contract's rule ids). `None` for unknown rules.
pub fn rule_text(rule: &str, lang: Lang) -> Option<RuleText> {
    let (ja, en) = match rule {
        "fortinet_login_exposed" => (
            RuleText {
                title: "Fortinet 社製 NW 機器のログイン画面の外部公開",
                reasoning: "SSL-VPN のログイン画面がインターネットに公開されており、既知の脆弱性を悪用したエクスプロイトが流通しているため脅威は高い。攻撃の成否は機器のパッチ適用状況に依存し、通信からは判断できない。",
                countermeasures: &[
                    "Fortinet 社製 NW 機器のログイン画面の外部公開設定を無効化",
                    "アクセスログの確認",
                    "悪性 IP アドレスの遮断",
                    "ファームウェアを最新版へ更新",
                ],
            },
            RuleText {
                title: "Fortinet login page exposed to the Internet",
                reasoning: "The SSL-VPN login page is served to the Internet and public exploits for such appliances circulate, so the threat is high; whether an attack succeeds depends on the patch level, which the traffic does not show.",
                countermeasures: &[
                    "Disable Internet exposure of the Fortinet login page",
                    "Review the access logs",
                    "Block malicious IP addresses",
                    "Update the firmware to the latest release",
                ],
            },
        ),
        "public_app_exploit_attempt" => (
            RuleText {
                title: "外部公開アプリのエクスプロイト",
                reasoning: "外部から公開アプリケーションに対する攻撃通信を確認した。攻撃は容易に自動化されるため脅威は高く、成否はアプリケーションのパッチ適用状況に依存する。",
                countermeasures: &[
                    "該当アプリケーションのパッチ適用状況の確認",
                    "アクセスログの確認 (攻撃の成否)",
                    "WAF / IPS による遮断",
                    "悪性 IP アドレスの遮断",
                ],
            },
            RuleText {
                title: "Exploit attempts against public-facing applications",
                reasoning: "Attack traffic against public applications was seen. Such attacks are automated, so the threat is high; success depends on how well the application is patched.",
                countermeasures: &[
                    "Check the patch level of the targeted application",
                    "Review the access logs for successful attempts",
                    "Block with a WAF / IPS",
                    "Block malicious IP addresses",
                ],
            },
        ),
        "phishing_mail" => (
            RuleText {
                title: "フィッシング",
                reasoning: "再構築したメールに、なりすまし・偽装リンク・危険な添付ファイルなどフィッシングの兆候を確認した。利用者が開封すれば容易に成立するため脅威は高い。",
                countermeasures: &[
                    "メールセキュリティの強化 (標的型攻撃メール対策の導入)",
                    "受信者への注意喚起と開封有無の確認",
                    "送信元ドメイン・URL の遮断",
                    "利用者向けセキュリティ教育",
                ],
            },
            RuleText {
                title: "Phishing",
                reasoning: "Reconstructed mail shows phishing signals (impersonation, deceptive links, risky attachments). It works as soon as a user opens it, so the threat is high.",
                countermeasures: &[
                    "Strengthen mail security (targeted-attack mail protection)",
                    "Warn the recipients and check whether the mail was opened",
                    "Block the sender domains and URLs",
                    "Security awareness training for users",
                ],
            },
        ),
        "openssh_outdated" => (
            RuleText {
                title: "古いバージョンの OpenSSH",
                reasoning: "OpenSSH 9.8p1 より古いサーバを確認した。regreSSHion (CVE-2024-6387) 等の既知の脆弱性が存在し、侵入後の横展開に悪用され得る。",
                countermeasures: &[
                    "OpenSSH を最新バージョン (9.8p1 以降) へアップデート",
                    "SSH の接続元を管理用ネットワークに限定",
                ],
            },
            RuleText {
                title: "Outdated OpenSSH",
                reasoning: "OpenSSH servers older than 9.8p1 were seen. Known vulnerabilities (e.g. regreSSHion, CVE-2024-6387) exist and can be used for lateral movement.",
                countermeasures: &[
                    "Update OpenSSH to the latest version (9.8p1 or later)",
                    "Restrict SSH clients to the management network",
                ],
            },
        ),
        "winrm_use" => (
            RuleText {
                title: "WinRM の利用",
                reasoning: "WinRM による遠隔管理通信を確認した。認証情報を入手した攻撃者は WinRM で容易に他ホストを操作できる。",
                countermeasures: &[
                    "WinRM の無効化",
                    "利用する場合は接続元を管理端末に限定",
                    "HTTPS (5986) の利用",
                ],
            },
            RuleText {
                title: "WinRM in use",
                reasoning: "Remote management over WinRM was seen. An attacker holding credentials can easily control other hosts over WinRM.",
                countermeasures: &[
                    "Disable WinRM",
                    "Where needed, allow it only from management hosts",
                    "Use HTTPS (5986)",
                ],
            },
        ),
        "telnet_use" => (
            RuleText {
                title: "Telnet の利用",
                reasoning: "Telnet は認証情報を含む通信を平文で送るため、ネットワーク上で容易に盗聴され横展開に悪用される。",
                countermeasures: &["Telnet の使用を禁止", "SSH への移行"],
            },
            RuleText {
                title: "Telnet in use",
                reasoning: "Telnet sends everything, credentials included, in clear text: easily sniffed and reused for lateral movement.",
                countermeasures: &["Stop using Telnet", "Move to SSH"],
            },
        ),
        "ftp_default_port_internal" => (
            RuleText {
                title: "デフォルトポートを使用した FTP 通信 (内部 -> 内部)",
                reasoning: "FTP は認証情報とファイルを平文で送る。内部ネットワーク上の盗聴で情報が流出する。",
                countermeasures: &[
                    "FTP の使用を禁止",
                    "SFTP を使用",
                    "デフォルトポートからの変更",
                ],
            },
            RuleText {
                title: "FTP on the default port (internal → internal)",
                reasoning: "FTP sends credentials and files in clear text; anyone sniffing the internal network can read them.",
                countermeasures: &["Stop using FTP", "Use SFTP", "Move off the default port"],
            },
        ),
        "ftp_default_port_external" => (
            RuleText {
                title: "デフォルトポートを使用した FTP 通信 (内部 -> 外部)",
                reasoning: "外部の FTP サーバへ平文でファイルと認証情報を送信しており、経路上で盗聴され得る。持ち出しの経路にもなる。",
                countermeasures: &[
                    "FTP の使用を禁止",
                    "SFTP を使用",
                    "デフォルトポートからの変更",
                    "送信先サーバの用途の確認",
                ],
            },
            RuleText {
                title: "FTP on the default port (internal → external)",
                reasoning: "Files and credentials go to outside FTP servers in clear text: exposed on the path, and a way to carry data out.",
                countermeasures: &[
                    "Stop using FTP",
                    "Use SFTP",
                    "Move off the default port",
                    "Check what the outside server is used for",
                ],
            },
        ),
        "ssh_external" => (
            RuleText {
                title: "業務利用外の外部サーバへの SSH アクセス",
                reasoning: "許可リストにない外部サーバへの SSH 通信が既に発生しており、それを妨げるものもない。暗号化された経路で情報を持ち出せる。",
                countermeasures: &[
                    "該当サーバの用途の確認",
                    "通信の悪性の有無の確認",
                    "該当ユーザーの特定・確認",
                    "該当サーバへの通信の遮断",
                ],
            },
            RuleText {
                title: "SSH to outside servers not on the allow list",
                reasoning: "SSH to outside servers that are not on the allow list is already happening and nothing stops it: an encrypted channel to carry data out.",
                countermeasures: &[
                    "Check what the server is used for",
                    "Check the traffic for malicious use",
                    "Identify and ask the user",
                    "Block traffic to the server",
                ],
            },
        ),
        "streaming_or_adult_in_business_hours" => (
            RuleText {
                title: "業務時間内での動画配信・アダルトサイトへのアクセス",
                reasoning: "業務時間内に業務外のサイトへのアクセスを確認した。マルウェア感染の入口や就業規則違反となる。",
                countermeasures: &[
                    "就労規則をもとにユーザーへ確認",
                    "継続的な通信の監視",
                    "Web フィルタリングの導入",
                ],
            },
            RuleText {
                title: "Streaming or adult sites during business hours",
                reasoning: "Non-business sites were visited during business hours: a common malware entry point and a policy breach.",
                countermeasures: &[
                    "Ask the users, based on the work rules",
                    "Keep monitoring the traffic",
                    "Introduce web filtering",
                ],
            },
        ),
        "oracle_traffic" => (
            RuleText {
                title: "Oracle の通信",
                reasoning: "Oracle TNS 通信をデフォルトポートで確認した。データベースへの直接接続は情報流出の経路になり得る。",
                countermeasures: &[
                    "該当サーバのアクセスログの確認",
                    "デフォルトポートからの変更",
                    "接続元の制限",
                ],
            },
            RuleText {
                title: "Oracle traffic",
                reasoning: "Oracle TNS traffic was seen on the default port. Direct database connections are a path for data leakage.",
                countermeasures: &[
                    "Review the server's access logs",
                    "Move off the default port",
                    "Restrict the clients",
                ],
            },
        ),
        "vpn_large_upload" => (
            RuleText {
                title: "VPN 経由での大容量ファイルアップロード",
                reasoning: "VPN クライアントから設定値を超える大容量のアップロードを確認した。正規の業務か持ち出しかの確認が必要。",
                countermeasures: &["該当サーバのアクセスログの確認", "該当ユーザーへの確認"],
            },
            RuleText {
                title: "Large uploads over VPN",
                reasoning: "A VPN client uploaded more than the configured volume. Whether it is business use or data theft needs checking.",
                countermeasures: &["Review the server's access logs", "Ask the user"],
            },
        ),
        "bad_reputation_ip" => (
            RuleText {
                title: "レピュテーションの低い IP アドレスとの通信",
                reasoning: "評判リストに掲載されたアドレスとの通信を確認した。攻撃の偵察・C2 通信の可能性がある。",
                countermeasures: &["NW 機器のアクセスログの確認", "悪性 IP アドレスの遮断"],
            },
            RuleText {
                title: "Traffic with poor-reputation IP addresses",
                reasoning: "Traffic with addresses on reputation lists was seen: possible reconnaissance or command-and-control.",
                countermeasures: &[
                    "Review the network devices' access logs",
                    "Block the malicious IP addresses",
                ],
            },
        ),
        "http_connect_nonstandard_port" => (
            RuleText {
                title: "標準外ポートへの HTTP CONNECT",
                reasoning: "プロキシ経由で 80/443 以外のポートへのトンネルを確認した。通信制御の回避に悪用され得る。",
                countermeasures: &["プロキシで CONNECT 先ポートを制限", "該当通信の用途の確認"],
            },
            RuleText {
                title: "HTTP CONNECT to non-standard ports",
                reasoning: "Tunnels through the proxy to ports other than 80/443 were seen; they can bypass traffic controls.",
                countermeasures: &[
                    "Restrict CONNECT ports on the proxy",
                    "Check what the traffic is for",
                ],
            },
        ),
        _ => return None,
    };
    Some(match lang {
        Lang::Ja => ja,
        Lang::En => en,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_rules_have_both_languages() {
        for rule in [
            "fortinet_login_exposed",
            "public_app_exploit_attempt",
            "phishing_mail",
            "openssh_outdated",
            "winrm_use",
            "telnet_use",
            "ftp_default_port_internal",
            "ftp_default_port_external",
            "ssh_external",
            "streaming_or_adult_in_business_hours",
            "oracle_traffic",
            "vpn_large_upload",
            "bad_reputation_ip",
            "http_connect_nonstandard_port",
        ] {
            let ja = rule_text(rule, Lang::Ja).unwrap();
            let en = rule_text(rule, Lang::En).unwrap();
            assert!(
                !ja.countermeasures.is_empty()
                    && ja.countermeasures.len() == en.countermeasures.len(),
                "{rule}"
            );
            assert!(en.title.is_ascii() || en.title.contains('→'), "{rule}");
        }
        assert!(rule_text("nope", Lang::Ja).is_none());
    }
}

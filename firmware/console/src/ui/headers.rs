//! Column headers of the console's tables in the site's language, with the time column
//! labelled by the time zone its times are in (`時刻 (JST)`), so nothing on the Japanese
//! console is in English except names and protocol words.

use kuroko_model::Timestamp;
use kuroko_model::finding::Lang;

/// The time-column header: `時刻 (JST)` / `Time (JST)`.
pub fn time(lang: Lang, tz: &chrono_tz::Tz) -> String {
    let zone = Timestamp::now().local_fmt(tz, "%Z");
    match lang {
        Lang::Ja => format!("時刻 ({zone})"),
        Lang::En => format!("Time ({zone})"),
    }
}

/// Session list: protocol (通信, to fit its 6 columns), client, server, the login user
/// (FTP, Telnet, POP3/IMAP/SMTP AUTH, HTTP Basic, WinRM), host or subject.
pub fn sessions(lang: Lang) -> [&'static str; 5] {
    match lang {
        Lang::Ja => ["通信", "クライアント", "サーバ", "ユーザー", "ホスト/件名"],
        Lang::En => ["Proto", "Client", "Server", "User", "Host/Subject"],
    }
}

/// The wide session list's extra columns.
pub fn sessions_wide(lang: Lang) -> [&'static str; 6] {
    match lang {
        Lang::Ja => ["MAC", "URL", "要求/差出人", "応答/宛先", "形式", "添付"],
        Lang::En => ["MAC", "URL", "Method/From", "Status/To", "Type", "Attach"],
    }
}

/// An alert severity (`critical`, `warning`, `info`) as the console shows it: 重大 / 警告 /
/// 情報 in Japanese (the alert mail's words), the key itself in English.
pub fn severity(lang: Lang, s: &str) -> String {
    match (lang, s) {
        (Lang::Ja, "critical") => "重大".into(),
        (Lang::Ja, "warning") => "警告".into(),
        (Lang::Ja, "info") => "情報".into(),
        _ => s.to_string(),
    }
}

/// Alert conditions: severity, name, hits, query.
pub fn conditions(lang: Lang) -> [&'static str; 4] {
    match lang {
        Lang::Ja => ["重要度", "名前", "件数", "検索条件"],
        Lang::En => ["Severity", "Name", "Hits", "Query"],
    }
}

/// Recent alert hits after the time column: severity, condition, session.
pub fn hits(lang: Lang) -> [&'static str; 3] {
    match lang {
        Lang::Ja => ["重要度", "条件", "セッション"],
        Lang::En => ["Severity", "Condition", "Session"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_headers_have_no_english_words() {
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(time(Lang::Ja, &tokyo), "時刻 (JST)");
        let ja: Vec<&str> = sessions(Lang::Ja)
            .into_iter()
            .chain(sessions_wide(Lang::Ja))
            .chain(conditions(Lang::Ja))
            .chain(hits(Lang::Ja))
            .collect();
        for h in ja {
            let latin: String = h.chars().filter(|c| c.is_ascii_alphabetic()).collect();
            assert!(
                latin.is_empty() || latin == "MAC" || latin == "URL",
                "English header in ja: {h}"
            );
        }
    }
}

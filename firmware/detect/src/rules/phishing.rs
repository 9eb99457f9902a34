//! `phishing_mail`: mail (SMTP, POP3, IMAP; every message of the session) that shows the
//! marks of phishing. Each mark is a signal, strong or ordinary; the rule fires on one
//! strong signal or two ordinary ones, and the finding lists every signal that fired.
//!
//! | signal | strength |
//! | --- | --- |
//! | link text shows one domain while the href goes to another | strong |
//! | link hides its target behind user info (`https://bank.example@evil.example/`) | strong |
//! | sender / reply-to / link domain is a homoglyph or punycode double of a brand domain | strong |
//! | display name carries an address of another domain (`"info@bank.co.jp" <x@evil>`) | strong |
//! | executable or script attachment (.exe .scr .js .vbs .hta .lnk …) or double extension (`.pdf.exe`) | strong |
//! | display name names a brand while the address is elsewhere | ordinary |
//! | sender / reply-to / link domain one or two edits from a brand domain, or with the brand's name embedded | ordinary |
//! | Reply-To domain differs from the From domain | ordinary |
//! | link to a bare IP address | ordinary |
//! | disk image or macro document attachment (.iso .img .vhd .docm .xlsm .pptm .one) | ordinary |
//! | a ZIP attachment (encrypted or not) listing an executable, script or double extension | strong |
//! | a ZIP attachment listing a disk image or macro document | ordinary |
//!
//! Why this threshold: each ordinary mark on its own is common in legitimate mail
//! (newsletters reply to a ticket system, a partner's domain resembles a brand, macro
//! workbooks circulate internally), and Japanese business mail routinely carries
//! encrypted zip files (PPAP), so archives alone are not a signal: what they list is
//! (read from the reconstructed attachment in `DIR/files/`, central directory only). Two ordinary marks
//! together, or one that legitimate mail never shows, is what the consultant would flag.
//! Brands come from `lists/brands.txt` (Japanese banks, card companies, carriers, big
//! platforms), replaceable in `[intel] category_dirs`.
//!
//! Kept per (client, server) of the mail session: one relay or one mailbox download.

use super::Hit;
use crate::catalog::RuleId;
use crate::context::Context;
use crate::signals::{Msg, encode};
use crate::text::domain::{
    host_in_text, is_same_or_subdomain, mail_domain, registrable, url_has_userinfo, url_host,
};
use kuroko_model::SessionRecord;
use kuroko_model::session::{Attachment, Link};

/// Most links looked at per message (marketing mail has dozens; kits have a few).
pub const MAX_LINKS_PER_MESSAGE: usize = 64;
/// Most messages looked at per session.
pub const MAX_MESSAGES_PER_SESSION: usize = 64;
/// Attachments whose hash a finding names per message.
const MAX_ATTACHMENTS_NAMED: usize = 4;
/// Longest name quoted in a signal.
const MAX_QUOTE: usize = 80;

const EXECUTABLE: &[&str] = &[
    "exe", "scr", "js", "jse", "vbs", "vbe", "hta", "lnk", "bat", "cmd", "ps1", "wsf", "wsh",
    "jar", "cpl", "msi", "pif", "com", "reg", "chm",
];
const CONTAINER_OR_MACRO: &[&str] = &[
    "iso", "img", "vhd", "vhdx", "docm", "xlsm", "pptm", "dotm", "xlam", "one",
];
/// Document extensions that a double extension hides behind (`invoice.pdf.exe`).
const DECOY: &[&str] = &[
    "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "jpg", "jpeg", "png", "csv", "zip",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub strong: bool,
    pub text: String,
}

/// One message's headers and content as the analyzer parsed them.
pub struct Message<'a> {
    pub subject: Option<&'a str>,
    pub from: Option<&'a str>,
    pub from_display: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub links: &'a [Link],
    pub attachments: &'a [Attachment],
}

pub fn check(ctx: &Context, s: &SessionRecord, out: &mut Vec<Hit>) {
    let Some(mail) = &s.mail else { return };
    let mut messages = vec![Message {
        subject: mail.subject.as_deref(),
        from: mail.from.as_deref(),
        from_display: mail.from_display.as_deref(),
        reply_to: mail.reply_to.as_deref(),
        links: &mail.links,
        attachments: &mail.attachments,
    }];
    for m in mail.messages.iter().take(MAX_MESSAGES_PER_SESSION) {
        messages.push(Message {
            subject: m.subject.as_deref(),
            from: m.from.as_deref(),
            from_display: m.from_display.as_deref(),
            reply_to: m.reply_to.as_deref(),
            links: &m.links,
            attachments: &m.attachments,
        });
    }
    let mut hit = Hit::pair(RuleId::PhishingMail, s);
    for m in &messages {
        let sigs = signals(ctx, m);
        if fires(&sigs) {
            hit.signals.extend(sigs.into_iter().map(|s| s.text));
            // Which mail, and the attachments' hashes to search mailboxes and EDR for.
            if let Some(subj) = m.subject {
                hit.signals.push(encode(Msg::MailSubject, &[&quote(subj)]));
            }
            for a in m.attachments.iter().take(MAX_ATTACHMENTS_NAMED) {
                if let Some(h) = &a.sha256 {
                    hit.signals
                        .push(encode(Msg::AttachmentHash, &[&quote(&a.name), h]));
                }
            }
        }
    }
    if !hit.signals.is_empty() {
        hit.signals.sort();
        hit.signals.dedup();
        out.push(hit);
    }
}

/// The threshold: one strong signal or two ordinary ones.
pub fn fires(signals: &[Signal]) -> bool {
    signals.iter().any(|s| s.strong) || signals.len() >= 2
}

fn quote(s: &str) -> String {
    s.chars().take(MAX_QUOTE).collect()
}

/// Every signal a message shows.
pub fn signals(ctx: &Context, m: &Message) -> Vec<Signal> {
    let mut out: Vec<Signal> = Vec::new();
    let mut push = |strong: bool, text: String| {
        if !out.iter().any(|s: &Signal| s.text == text) {
            out.push(Signal { strong, text });
        }
    };
    let from_domain = m.from.and_then(mail_domain);

    // Display name.
    if let Some(display) = m.from_display.filter(|d| !d.trim().is_empty()) {
        if let Some(shown) = mail_domain(display).or_else(|| host_in_text(display))
            && let Some(from) = &from_domain
            && registrable(&shown) != registrable(from)
        {
            push(
                true,
                encode(Msg::DisplayNameShowsOther, &[&quote(&shown), from]),
            );
        }
        if let Some((brand, name)) = ctx.brands.named_in(display) {
            let owned = from_domain
                .as_deref()
                .is_some_and(|d| brand.domains.iter().any(|bd| is_same_or_subdomain(d, bd)));
            if !owned {
                push(
                    false,
                    match from_domain.as_deref() {
                        Some(from) => {
                            encode(Msg::DisplayNameNamesBrand, &[&quote(display), &name, &from])
                        }
                        None => {
                            encode(Msg::DisplayNameNamesBrandUnknown, &[&quote(display), &name])
                        }
                    },
                );
            }
        }
    }

    // Sender, reply-to and link domains that imitate a brand.
    let check_lookalike = |what: Msg, host: &str, push: &mut dyn FnMut(bool, String)| {
        if let Some((brand_domain, how)) = ctx.brands.imitated_by(host) {
            let strong = how == "homoglyph";
            push(strong, encode(what, &[&quote(host), &brand_domain, &how]));
        }
    };
    if let Some(d) = &from_domain {
        check_lookalike(Msg::SenderLookalike, d, &mut push);
    }
    let reply_domain = m.reply_to.and_then(mail_domain);
    if let Some(r) = &reply_domain {
        check_lookalike(Msg::ReplyToLookalike, r, &mut push);
        if let Some(f) = &from_domain
            && registrable(r) != registrable(f)
        {
            push(false, encode(Msg::ReplyToDiffers, &[r, f]));
        }
    }

    // Links.
    for link in m.links.iter().take(MAX_LINKS_PER_MESSAGE) {
        let Some(target) = url_host(&link.href) else {
            continue;
        };
        if url_has_userinfo(&link.href) {
            push(true, encode(Msg::LinkUserInfo, &[&quote(&target)]));
        }
        if let Some(shown) = host_in_text(&link.text)
            && !same_owner(ctx, &shown, &target)
        {
            push(
                true,
                encode(Msg::LinkTextMismatch, &[&quote(&shown), &quote(&target)]),
            );
        }
        if target.parse::<std::net::IpAddr>().is_ok() {
            push(false, encode(Msg::LinkBareIp, &[&target]));
        } else {
            check_lookalike(Msg::LinkLookalike, &target, &mut push);
        }
    }

    // Attachments, and the names inside attached archives.
    for a in m.attachments.iter().take(MAX_LINKS_PER_MESSAGE) {
        for inner in archive_names(ctx, a) {
            let inner_lower = inner.to_lowercase();
            let mut parts = inner_lower.rsplit('.');
            let ext = parts.next().unwrap_or("");
            let prev = parts.next();
            if !inner_lower.contains('.') {
                continue;
            }
            if EXECUTABLE.contains(&ext) {
                push(
                    true,
                    encode(
                        Msg::ArchiveHoldsExecutable,
                        &[&quote(&a.name), &quote(&inner)],
                    ),
                );
            } else if CONTAINER_OR_MACRO.contains(&ext) {
                push(
                    false,
                    encode(Msg::ArchiveHoldsMacro, &[&quote(&a.name), &quote(&inner)]),
                );
            }
            if prev.is_some_and(|p| DECOY.contains(&p))
                && (EXECUTABLE.contains(&ext) || CONTAINER_OR_MACRO.contains(&ext))
            {
                push(
                    true,
                    encode(
                        Msg::DoubleExtensionInArchive,
                        &[&quote(&inner), &quote(&a.name)],
                    ),
                );
            }
        }
        let name = a.name.trim().trim_end_matches(['.', ' ']).to_lowercase();
        let mut parts = name.rsplit('.');
        let ext = parts.next().unwrap_or("");
        let prev = parts.next();
        let has_ext = name.contains('.');
        if !has_ext {
            continue;
        }
        if EXECUTABLE.contains(&ext) {
            push(true, encode(Msg::ExecutableAttachment, &[&quote(&a.name)]));
        } else if CONTAINER_OR_MACRO.contains(&ext) {
            push(false, encode(Msg::MacroAttachment, &[&quote(&a.name)]));
        }
        if let Some(prev) = prev
            && DECOY.contains(&prev)
            && (EXECUTABLE.contains(&ext) || CONTAINER_OR_MACRO.contains(&ext))
        {
            push(true, encode(Msg::DoubleExtension, &[&quote(&a.name)]));
        }
    }
    out
}

/// Archive extensions whose listing is read from the reconstructed object.
const ARCHIVES: &[&str] = &["zip"];

/// Names inside an attached archive, when the reconstructed object is at hand.
fn archive_names(ctx: &Context, a: &Attachment) -> Vec<String> {
    let lower = a.name.to_lowercase();
    let is_archive = ARCHIVES
        .iter()
        .any(|ext| lower.ends_with(&format!(".{ext}")))
        || a.content_type.as_deref().is_some_and(|t| t.contains("zip"));
    let (Some(dir), Some(sha)) = (&ctx.files_dir, &a.sha256) else {
        return Vec::new();
    };
    if !is_archive {
        return Vec::new();
    }
    match kuroko_model::objects::Objects::at(dir).path(sha) {
        Some(p) => crate::text::zip::names(&p),
        None => Vec::new(),
    }
}

/// Whether two hosts belong to the same party: same registrable domain, or the same brand.
fn same_owner(ctx: &Context, a: &str, b: &str) -> bool {
    if registrable(a) == registrable(b) {
        return true;
    }
    match (ctx.brands.owner_of(a), ctx.brands.owner_of(b)) {
        (Some(x), Some(y)) => std::ptr::eq(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{ctx, run, session};
    use kuroko_model::session::Mail;

    fn mail(
        from: &str,
        display: Option<&str>,
        reply_to: Option<&str>,
        links: &[(&str, &str)],
        attachments: &[&str],
    ) -> SessionRecord {
        let mut s = session("smtp", "203.0.113.25", 40000, "10.0.0.25", 25);
        s.mail = Some(Mail {
            from: Some(from.into()),
            from_display: display.map(Into::into),
            reply_to: reply_to.map(Into::into),
            to: vec!["yamada@corp.example".into()],
            subject: Some("【重要】口座凍結のお知らせ".into()),
            links: links
                .iter()
                .map(|(t, h)| Link {
                    text: t.to_string(),
                    href: h.to_string(),
                })
                .collect(),
            attachments: attachments
                .iter()
                .map(|n| Attachment {
                    name: n.to_string(),
                    bytes: 1000,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        s
    }

    fn fired(s: &SessionRecord) -> Option<Vec<String>> {
        run(&ctx(), s)
            .into_iter()
            .find(|h| h.rule == RuleId::PhishingMail)
            .map(|h| h.signals)
    }

    #[test]
    fn the_finding_names_the_subject_and_the_attachments_hash() {
        let mut s = mail("billing@example.net", None, None, &[], &["請求書.pdf.exe"]);
        if let Some(m) = s.mail.as_mut() {
            m.attachments[0].sha256 = Some("ab".repeat(32));
        }
        let sig = fired(&s).expect("fires");
        assert!(
            sig.iter()
                .any(|x| x == "subject: 【重要】口座凍結のお知らせ"),
            "{sig:?}"
        );
        let want = format!("attachment `請求書.pdf.exe` sha256 {}", "ab".repeat(32));
        assert!(sig.contains(&want), "{sig:?}");
    }

    #[test]
    fn the_brochure_example_fires_with_its_signals() {
        // りそな銀行 impersonated, link text shows the real bank, href goes elsewhere.
        let s = mail(
            "info@resona-kakunin.example",
            Some("りそな銀行"),
            None,
            &[(
                "https://www.resonabank.co.jp/kojin/login",
                "https://resona-kakunin.example/login.php",
            )],
            &[],
        );
        let sig = fired(&s).expect("fires");
        assert!(sig.iter().any(|x| x.contains("names りそな")), "{sig:?}");
        assert!(
            sig.iter().any(|x| x.contains(
                "link text shows www.resonabank.co.jp but goes to resona-kakunin.example"
            )),
            "{sig:?}"
        );
    }

    #[test]
    fn strong_signals_alone_fire() {
        assert!(
            fired(&mail(
                "a@partner.example",
                Some("Partner"),
                None,
                &[],
                &["請求書.pdf.exe"]
            ))
            .is_some_and(|s| s.iter().any(|x| x.contains("double extension")))
        );
        assert!(fired(&mail("a@partner.example", None, None, &[], &["invoice.js"])).is_some());
        assert!(
            fired(&mail(
                "a@partner.example",
                None,
                None,
                &[("login", "http://www.smbc.co.jp@198.51.100.7/")],
                &[]
            ))
            .is_some()
        );
        // Cyrillic "аррӏе.com" as punycode.
        assert!(
            fired(&mail(
                "id@xn--80ak6aa92e.com",
                Some("Apple ID"),
                None,
                &[],
                &[]
            ))
            .is_some_and(|s| s.iter().any(|x| x.contains("homoglyph")))
        );
        assert!(
            fired(&mail(
                "x@evil.example",
                Some("support@amazon.co.jp"),
                None,
                &[],
                &[]
            ))
            .is_some()
        );
    }

    #[test]
    fn two_ordinary_signals_fire_one_does_not() {
        // Brand display name + reply-to elsewhere.
        assert!(
            fired(&mail(
                "notice@mailer.example",
                Some("Amazon.co.jp"),
                Some("help@other.example"),
                &[],
                &[]
            ))
            .is_some()
        );
        // Only the display name.
        assert!(
            fired(&mail(
                "notice@mailer.example",
                Some("Amazon.co.jp"),
                None,
                &[],
                &[]
            ))
            .is_some(),
            "display shows a domain other than the address: strong"
        );
        assert!(
            fired(&mail(
                "notice@mailer.example",
                Some("Amazon"),
                None,
                &[],
                &[]
            ))
            .is_none()
        );
        // Only the reply-to.
        assert!(
            fired(&mail(
                "sales@partner.example",
                Some("Partner Sales"),
                Some("ticket@helpdesk.example"),
                &[],
                &[]
            ))
            .is_none()
        );
        // Only a macro workbook.
        assert!(fired(&mail("keiri@corp.example", None, None, &[], &["集計.xlsm"])).is_none());
        // Macro workbook + lookalike sender.
        assert!(
            fired(&mail(
                "keiri@mizuhobnak.co.jp",
                None,
                None,
                &[],
                &["集計.xlsm"]
            ))
            .is_some()
        );
    }

    #[test]
    fn legitimate_mail_does_not_fire() {
        assert!(
            fired(&mail(
                "yamada@corp.example",
                Some("山田 太郎"),
                None,
                &[],
                &[]
            ))
            .is_none()
        );
        assert!(
            fired(&mail(
                "no-reply@amazon.co.jp",
                Some("Amazon.co.jp"),
                None,
                &[(
                    "https://www.amazon.co.jp/gp/css/order-history",
                    "https://www.amazon.co.jp/gp/css/order-history?ref=x"
                )],
                &[]
            ))
            .is_none()
        );
        // Brand link text pointing at the brand's other domain (tracking redirect).
        assert!(
            fired(&mail(
                "info@mail.rakuten.co.jp",
                Some("楽天市場"),
                None,
                &[("www.rakuten.co.jp", "https://r.rakuten-card.co.jp/x")],
                &[]
            ))
            .is_none()
        );
        // PPAP: encrypted zip and a password mail.
        assert!(
            fired(&mail(
                "sato@partner.example",
                Some("佐藤"),
                None,
                &[],
                &["見積書.zip"]
            ))
            .is_none()
        );
        assert!(
            fired(&mail(
                "sato@partner.example",
                Some("佐藤"),
                None,
                &[("こちら", "https://partner.example/x")],
                &["見積書.pdf"]
            ))
            .is_none()
        );
    }

    #[test]
    fn archives_are_judged_by_what_they_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = ctx();
        ctx.files_dir = Some(dir.path().to_path_buf());
        let store = |sha: &str, zip: Vec<u8>| {
            std::fs::create_dir_all(dir.path().join(&sha[..2])).unwrap();
            std::fs::write(
                dir.path()
                    .join(&sha[..2])
                    .join(format!("{}.bin", &sha[2..])),
                zip,
            )
            .unwrap();
        };
        let bad = "ab".to_string() + &"1".repeat(62);
        let good = "cd".to_string() + &"2".repeat(62);
        store(
            &bad,
            crate::text::zip::tests::build(&[("請求書.pdf.exe", b"MZ")]),
        );
        store(
            &good,
            crate::text::zip::tests::build(&[("見積書.pdf", b"%PDF"), ("明細.xlsx", b"PK")]),
        );
        let with = |name: &str, sha: &str| {
            let mut s = mail("sato@partner.example", Some("佐藤"), None, &[], &[]);
            s.mail.as_mut().unwrap().attachments = vec![Attachment {
                name: name.into(),
                bytes: 100,
                sha256: Some(sha.into()),
                content_type: Some("application/zip".into()),
            }];
            run(&ctx, &s)
                .into_iter()
                .find(|h| h.rule == RuleId::PhishingMail)
                .map(|h| h.signals)
        };
        let sig = with("見積書.zip", &bad).expect("an executable inside an encrypted zip fires");
        assert!(
            sig.iter()
                .any(|x| x.contains("contains executable or script `請求書.pdf.exe`")),
            "{sig:?}"
        );
        assert!(
            sig.iter()
                .any(|x| x.contains("double extension `請求書.pdf.exe` inside archive")),
            "{sig:?}"
        );
        assert!(
            with("見積書.zip", &good).is_none(),
            "PPAP with documents is ordinary"
        );
        assert!(
            with("見積書.zip", &("ef".to_string() + &"3".repeat(62))).is_none(),
            "object not stored"
        );
    }

    #[test]
    fn lookalikes_of_the_sites_own_domains_count() {
        let mut c = kuroko_model::config::Config::default();
        c.intel.own_domains = vec!["kuroko-shoji.co.jp".into()];
        let ctx = Context::new(&c).unwrap();
        let fired = |from: &str| {
            let s = mail(from, Some("経理部"), None, &[], &[]);
            run(&ctx, &s)
                .into_iter()
                .find(|h| h.rule == RuleId::PhishingMail)
                .map(|h| h.signals)
        };
        let sig = fired("keiri@kur0ko-shoji.co.jp").expect("homoglyph of our own domain");
        assert!(
            sig.iter()
                .any(|x| x.contains("imitates kuroko-shoji.co.jp (homoglyph)")),
            "{sig:?}"
        );
        assert!(
            fired("keiri@kuroko-shoji.co.jp").is_none(),
            "our own domain"
        );
        assert!(
            fired("keiri@mail.kuroko-shoji.co.jp").is_none(),
            "our own subdomain"
        );
    }
}

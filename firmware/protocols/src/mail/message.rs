//! What a whole mail (RFC 5322 + MIME) yields, whichever protocol carried it: the `.eml`
//! object, header fields (encoded words decoded: ISO-2022-JP, Shift_JIS, UTF-8 …),
//! attachments and bodies as objects, and the links of HTML bodies.

use crate::http::parser::html_unescape;
use crate::util::{emit_object, find_ci, push_capped, text_str};
use crate::{Direction, ObjectMeta, Sink};
use kuroko_model::session::{Attachment, Link, MAX_LIST_LEN, Mail, MailMessage, SessionRecord};
use mail_parser::{Address, MessageParser, MimeHeaders};

/// Most attachments and bodies handed over per message (a mail with thousands of parts
/// is an attack on the parser, not a mail).
pub const MAX_PARTS_PER_MESSAGE: usize = 64;
/// Most levels of mails attached to mails whose attachments are handed over (the outer
/// mail is level 0).
pub const MAX_NESTED_MAILS: usize = 4;
/// Most bytes of an HTML body scanned for links.
pub const MAX_LINK_SCAN: usize = 1024 * 1024;

/// SMTP envelope of a message (empty for POP3/IMAP).
#[derive(Debug, Default, Clone)]
pub struct Envelope {
    pub mail_from: Option<String>,
    pub rcpt_to: Vec<String>,
}

/// What one message contributes to the session, before it is placed in `rec.mail`.
#[derive(Debug, Default)]
struct Parsed {
    from: Option<String>,
    from_display: Option<String>,
    to: Vec<String>,
    subject: Option<String>,
    reply_to: Option<String>,
    message_id: Option<String>,
    attachments: Vec<Attachment>,
    links: Vec<Link>,
    eml_sha256: Option<String>,
}

fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address().map(str::to_string))
            .collect()
    })
    .unwrap_or_default()
}

/// Links (`<a href>` and their text) of an HTML body.
pub fn html_links(html: &str) -> Vec<Link> {
    let b = html.as_bytes();
    let b = &b[..b.len().min(MAX_LINK_SCAN)];
    let mut out = Vec::new();
    let mut pos = 0;
    while out.len() < MAX_LIST_LEN {
        let Some(start) = find_ci(&b[pos..], b"<a").map(|p| p + pos) else {
            break;
        };
        pos = start + 2;
        if !matches!(b.get(pos), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            continue;
        }
        let Some(tag_end) = b[pos..].iter().position(|&c| c == b'>').map(|p| p + pos) else {
            break;
        };
        let tag = &b[pos..tag_end];
        let href = attr_value(tag, b"href");
        let body_start = tag_end + 1;
        let body_end = find_ci(&b[body_start..], b"</a")
            .map_or(b.len().min(body_start + 4096), |p| p + body_start);
        pos = body_end;
        let Some(href) = href else { continue };
        let inner = String::from_utf8_lossy(&b[body_start..body_end]);
        let text = strip_tags(&inner);
        out.push(Link {
            text,
            href: html_unescape(&href).trim().to_string(),
        });
    }
    out
}

fn attr_value(tag: &[u8], name: &[u8]) -> Option<String> {
    let mut i = 0;
    while let Some(p) = find_ci(&tag[i..], name).map(|p| p + i) {
        i = p + name.len();
        let before_ok = p == 0 || tag[p - 1].is_ascii_whitespace();
        let mut j = i;
        while tag.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        if !before_ok || tag.get(j) != Some(&b'=') {
            continue;
        }
        j += 1;
        while tag.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        let v = match tag.get(j) {
            Some(&q @ (b'"' | b'\'')) => {
                let rest = &tag[j + 1..];
                let end = rest.iter().position(|&c| c == q).unwrap_or(rest.len());
                &rest[..end]
            }
            Some(_) => {
                let rest = &tag[j..];
                let end = rest
                    .iter()
                    .position(|c| c.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                &rest[..end]
            }
            None => return None,
        };
        return Some(String::from_utf8_lossy(v).into_owned());
    }
    None
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    html_unescape(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn sanitize_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect()
}

/// Handles one complete (or `partial`) message carried in `dir`.
pub fn process_message(
    eml: &[u8],
    envelope: &Envelope,
    dir: Direction,
    partial: bool,
    rec: &mut SessionRecord,
    sink: &mut dyn Sink,
) {
    let mut p = Parsed::default();
    let parsed = MessageParser::default().parse(eml);
    let message_id = parsed
        .as_ref()
        .and_then(|m| m.message_id())
        .map(str::to_string);
    let eml_name = format!(
        "{}.eml",
        message_id
            .as_deref()
            .map_or_else(|| "message".to_string(), sanitize_name)
    );
    let meta = ObjectMeta {
        name: Some(eml_name),
        content_type: Some("message/rfc822".into()),
        kind: "mail",
        direction: Some(dir),
        partial,
    };
    p.eml_sha256 = emit_object(rec, sink, meta, eml);

    if let Some(m) = &parsed {
        if let Some(from) = m.from().and_then(|a| a.first()) {
            p.from = from.address().map(|a| text_str(rec, a));
            p.from_display = from.name().map(|n| text_str(rec, n));
        }
        for a in addresses(m.to())
            .into_iter()
            .chain(addresses(m.cc()))
            .chain(addresses(m.bcc()))
        {
            let a = text_str(rec, &a);
            if !p.to.contains(&a) {
                push_capped(rec, &mut p.to, a);
            }
        }
        p.subject = m.subject().map(|s| text_str(rec, s));
        p.reply_to = m
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(|a| text_str(rec, a));
        p.message_id = message_id.as_deref().map(|s| text_str(rec, s));

        let mut count = 0;
        attachments_of(m, 0, &mut count, dir, partial, &mut p, rec, sink);
        // mail-parser lists an HTML-only body under both text and HTML: each part once.
        let mut ids: Vec<usize> = m
            .text_body
            .iter()
            .chain(m.html_body.iter())
            .map(|&i| i as usize)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for part in ids
            .into_iter()
            .take(MAX_PARTS_PER_MESSAGE)
            .filter_map(|i| m.parts.get(i))
        {
            let html = part.is_text_html();
            let Some(text) = part.text_contents() else {
                continue;
            };
            if html {
                for link in html_links(text) {
                    let link = Link {
                        text: text_str(rec, &link.text),
                        href: text_str(rec, &link.href),
                    };
                    if !p.links.contains(&link) {
                        push_capped(rec, &mut p.links, link);
                    }
                }
            }
            let meta = ObjectMeta {
                name: Some(if html { "body.html" } else { "body.txt" }.into()),
                content_type: Some(
                    if html {
                        "text/html; charset=utf-8"
                    } else {
                        "text/plain; charset=utf-8"
                    }
                    .into(),
                ),
                kind: "mail-body",
                direction: Some(dir),
                partial,
            };
            emit_object(rec, sink, meta, text.as_bytes());
        }
    } else {
        rec.flag("malformed:mail");
    }
    for r in &envelope.rcpt_to {
        if !p.to.contains(r) {
            let r = text_str(rec, r);
            push_capped(rec, &mut p.to, r);
        }
    }
    place(p, envelope, rec);
}

/// Hands over the attachments of `m`, and those of the mails attached to it (forwarded
/// as attachment: `message/rfc822`, also sent base64 as swaks and Outlook do), depth
/// first: the attached mail itself, then what it carries. At most
/// `MAX_PARTS_PER_MESSAGE` in all and `MAX_NESTED_MAILS` levels deep (flags
/// `mail_too_many_parts`, `mail_nesting_too_deep`).
#[allow(clippy::too_many_arguments)]
fn attachments_of(
    m: &mail_parser::Message<'_>,
    depth: usize,
    count: &mut usize,
    dir: Direction,
    partial: bool,
    p: &mut Parsed,
    rec: &mut SessionRecord,
    sink: &mut dyn Sink,
) {
    for part in m.attachments() {
        if *count >= MAX_PARTS_PER_MESSAGE {
            rec.flag("mail_too_many_parts");
            return;
        }
        *count += 1;
        let is_rfc822 = part.content_type().is_some_and(|c| {
            c.c_type.eq_ignore_ascii_case("message")
                && c.c_subtype.as_deref().is_some_and(|s| {
                    s.eq_ignore_ascii_case("rfc822") || s.eq_ignore_ascii_case("global")
                })
        });
        // A mail-parser that did not parse an attached mail (e.g. left binary) gets a
        // second chance on the decoded bytes.
        let reparsed;
        let nested = match part.message() {
            Some(n) => Some(n),
            None if is_rfc822 => {
                reparsed = MessageParser::default().parse(part.contents());
                reparsed.as_ref()
            }
            None => None,
        };
        let name = match (part.attachment_name(), nested) {
            (Some(n), _) => n.to_string(),
            (None, Some(n)) => match n.subject().map(sanitize_name) {
                Some(s) if !s.is_empty() => format!("{s}.eml"),
                _ => format!("attachment-{count}.eml"),
            },
            (None, None) => format!("attachment-{count}"),
        };
        let ctype = part.content_type().map(|c| match &c.c_subtype {
            Some(sub) => format!("{}/{}", c.c_type, sub),
            None => c.c_type.to_string(),
        });
        let data = part.contents();
        let meta = ObjectMeta {
            name: Some(name.clone()),
            content_type: ctype.clone(),
            kind: "attachment",
            direction: Some(dir),
            partial,
        };
        let sha = emit_object(rec, sink, meta, data);
        let att = Attachment {
            name: text_str(rec, &name),
            bytes: data.len() as u64,
            sha256: sha,
            content_type: ctype,
        };
        push_capped(rec, &mut p.attachments, att);
        if let Some(n) = nested {
            if depth + 1 >= MAX_NESTED_MAILS {
                rec.flag("mail_nesting_too_deep");
            } else {
                attachments_of(n, depth + 1, count, dir, partial, p, rec, sink);
            }
        }
    }
}

fn place(p: Parsed, envelope: &Envelope, rec: &mut SessionRecord) {
    let mut mail = rec.mail.take().unwrap_or_default();
    let first = mail.from.is_none()
        && mail.subject.is_none()
        && mail.eml_sha256.is_none()
        && mail.to.is_empty();
    if first {
        let Mail {
            user,
            commands,
            auth,
            banner,
            ..
        } = std::mem::take(&mut mail);
        mail = Mail {
            from: p.from,
            to: p.to,
            subject: p.subject,
            attachments: p.attachments,
            from_display: p.from_display,
            reply_to: p.reply_to,
            mail_from: envelope.mail_from.clone(),
            message_id: p.message_id,
            user,
            links: p.links,
            eml_sha256: p.eml_sha256,
            messages: Vec::new(),
            commands,
            auth,
            banner,
        };
    } else {
        let msg = MailMessage {
            from: p.from,
            to: p.to,
            subject: p.subject,
            attachments: p.attachments,
            from_display: p.from_display,
            reply_to: p.reply_to,
            links: p.links,
            eml_sha256: p.eml_sha256,
        };
        let mut messages = std::mem::take(&mut mail.messages);
        push_capped(rec, &mut messages, msg);
        mail.messages = messages;
    }
    rec.mail = Some(mail);
}

/// Adds a command to `mail.commands` (the caller leaves secrets out of `arg`); returns
/// its index for the answer, none when the list is full.
pub fn push_command(rec: &mut SessionRecord, verb: &[u8], arg: &[u8]) -> Option<usize> {
    let arg = arg.trim_ascii();
    let cmd = kuroko_model::session::MailCommand {
        verb: crate::util::text(rec, &verb.to_ascii_uppercase()),
        arg: (!arg.is_empty()).then(|| crate::util::text(rec, arg)),
        ..Default::default()
    };
    let mut mail = rec.mail.take().unwrap_or_default();
    let idx = (mail.commands.len() < MAX_LIST_LEN).then_some(mail.commands.len());
    push_capped(rec, &mut mail.commands, cmd);
    rec.mail = Some(mail);
    idx
}

/// The POP3/IMAP status (`OK`, `ERR`, `NO`, `BAD`) that answered command `idx`.
pub fn command_status(rec: &mut SessionRecord, idx: Option<usize>, status: &str) {
    if let Some(c) = idx.and_then(|i| rec.mail.as_mut()?.commands.get_mut(i)) {
        c.status = Some(status.to_string());
    }
}

/// A login attempt with `mechanism` started: recorded until an answer says more.
pub fn auth_started(rec: &mut SessionRecord, mechanism: &[u8]) {
    let mechanism = crate::util::text(rec, &mechanism.to_ascii_uppercase());
    let mail = rec.mail.get_or_insert_with(Mail::default);
    if mail.auth.is_none() {
        mail.auth = Some(kuroko_model::session::MailAuth {
            mechanism,
            success: None,
            failed_attempts: 0,
        });
    }
}

/// The server answered a login attempt with `mechanism`: the latest answer is the
/// session's outcome, refusals are counted.
pub fn auth_result(rec: &mut SessionRecord, mechanism: &str, success: bool) {
    let mechanism = crate::util::text(rec, mechanism.to_ascii_uppercase().as_bytes());
    let mail = rec.mail.get_or_insert_with(Mail::default);
    let failed = mail.auth.as_ref().map_or(0, |a| a.failed_attempts);
    mail.auth = Some(kuroko_model::session::MailAuth {
        mechanism,
        success: Some(success),
        failed_attempts: failed.saturating_add(u32::from(!success)),
    });
}

/// Sets the login user of a mail session.
pub fn set_user(rec: &mut SessionRecord, user: &[u8]) {
    let user = crate::util::text(rec, user);
    rec.mail.get_or_insert_with(Mail::default).user = Some(user);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;
    use crate::testutil::record;

    /// Minimal base64 encoder for the fixtures (RFC 4648), lines of 76 like MUAs write.
    fn b64(b: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for (i, c) in b.chunks(3).enumerate() {
            if i > 0 && i % 19 == 0 {
                s.push_str("\r\n");
            }
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(T[(n >> (18 - 6 * k)) as usize & 63] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    fn sha(b: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    }

    /// swaks `--attach` three times (binary, text/plain, and a `message/rfc822` sent
    /// base64 like swaks and Outlook do), plus a mail forwarded inline-as-attachment the
    /// Thunderbird way (7bit `message/rfc822`). Every attachment, also those inside the
    /// attached mails, comes out with its name and the bytes that were attached.
    #[test]
    fn several_attachments_and_nested_mails_each_reconstructed() {
        let bin: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        let txt = b"plain text attachment\r\n".to_vec();
        let inner_pdf = b"%PDF-1.4 inner attachment bytes\n".to_vec();
        let fwd = format!(
            "From: inner@corp.example\r\nTo: x@corp.example\r\nSubject: inner mail\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"in1\"\r\n\r\n--in1\r\nContent-Type: text/plain\r\n\r\ninner body\r\n--in1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"inner.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--in1--\r\n",
            b64(&inner_pdf)
        );
        let docx = b"PK\x03\x04 docx inside a forwarded mail".to_vec();
        let plan = format!(
            "From: boss@corp.example\r\nSubject: plan\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"in2\"\r\n\r\n--in2\r\nContent-Type: text/plain\r\n\r\nsee plan\r\n--in2\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document\r\nContent-Disposition: attachment; filename=\"plan.docx\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--in2--\r\n",
            b64(&docx)
        );
        let eml = format!(
            "From: t@corp.example\r\nTo: h@corp.example\r\nSubject: several\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"----=_MIME_BOUNDARY_000_1\"\r\n\r\n\
             ------=_MIME_BOUNDARY_000_1\r\nContent-Type: text/plain\r\n\r\nThis is a test mailing\r\n\
             ------=_MIME_BOUNDARY_000_1\r\nContent-Type: application/octet-stream; name=\"a.bin\"\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: BASE64\r\n\r\n{}\r\n\r\n\
             ------=_MIME_BOUNDARY_000_1\r\nContent-Type: text/plain; name=\"b.txt\"\r\nContent-Disposition: attachment; filename=\"b.txt\"\r\nContent-Transfer-Encoding: BASE64\r\n\r\n{}\r\n\r\n\
             ------=_MIME_BOUNDARY_000_1\r\nContent-Type: message/rfc822; name=\"fwd.eml\"\r\nContent-Disposition: attachment; filename=\"fwd.eml\"\r\nContent-Transfer-Encoding: BASE64\r\n\r\n{}\r\n\r\n\
             ------=_MIME_BOUNDARY_000_1\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n{}\r\n\
             ------=_MIME_BOUNDARY_000_1--\r\n",
            b64(&bin),
            b64(&txt),
            b64(fwd.as_bytes()),
            plan,
        );
        let mut rec = record("smtp");
        let mut sink = VecSink::default();
        process_message(
            eml.as_bytes(),
            &Envelope::default(),
            Direction::ToServer,
            false,
            &mut rec,
            &mut sink,
        );
        let m = rec.mail.unwrap();
        let got: Vec<(String, u64, Option<String>)> = m
            .attachments
            .iter()
            .map(|a| (a.name.clone(), a.bytes, a.sha256.clone()))
            .collect();
        let want = |name: &str, b: &[u8]| (name.to_string(), b.len() as u64, Some(sha(b)));
        assert_eq!(
            got,
            vec![
                want("a.bin", &bin),
                want("b.txt", &txt),
                want("fwd.eml", fwd.as_bytes()),
                want("inner.pdf", &inner_pdf),
                want("plan.eml", plan.as_bytes()),
                want("plan.docx", &docx),
            ]
        );
        // Each attachment is an object of kind `attachment` with those bytes.
        let objs: Vec<&[u8]> = sink
            .objects
            .iter()
            .filter(|o| o.0.kind == "attachment")
            .map(|o| o.1.as_slice())
            .collect();
        assert_eq!(
            objs,
            vec![
                &bin[..],
                &txt,
                fwd.as_bytes(),
                &inner_pdf,
                plan.as_bytes(),
                &docx
            ]
        );
        assert!(rec.flags.is_empty(), "{:?}", rec.flags);
    }

    #[test]
    fn links_from_html() {
        let html = r#"<p>Login: <A class="x" HREF="http://evil.example/login">https://www.resonabank.co.jp/</A> and <a href='/rel'>相対 &amp; <b>bold</b></a><a name="anchor">no href</a>"#;
        let links = html_links(html);
        assert_eq!(
            links,
            vec![
                Link {
                    text: "https://www.resonabank.co.jp/".into(),
                    href: "http://evil.example/login".into()
                },
                Link {
                    text: "相対 & bold".into(),
                    href: "/rel".into()
                },
            ]
        );
    }

    /// A Japanese phishing-style mail: ISO-2022-JP subject and display name (encoded
    /// words), Shift_JIS HTML body with a deceptive link, base64 attachment with an
    /// RFC 2231 Japanese file name.
    #[test]
    fn japanese_mail_with_attachment_and_link() {
        let (subj, _, _) = encoding_rs::ISO_2022_JP.encode("【重要】口座確認のお願い");
        let (name, _, _) = encoding_rs::ISO_2022_JP.encode("りそな銀行");
        let (body, _, _) = encoding_rs::SHIFT_JIS.encode("<html><body>こちら: <a href=\"http://198.51.100.7/r\">https://www.resonabank.co.jp/</a></body></html>");
        let attachment = b"PK\x03\x04 not really a zip";
        let eml = format!(
            "From: =?ISO-2022-JP?B?{}?= <info@resona-secure.example>\r\nTo: taro@example.co.jp\r\nCc: hanako@example.co.jp\r\nReply-To: collect@evil.example\r\nSubject: =?ISO-2022-JP?B?{}?=\r\nMessage-ID: <abc123@resona-secure.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/html; charset=Shift_JIS\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename*=UTF-8''%E6%98%8E%E7%B4%B0.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
            b64(&name),
            b64(&subj),
            b64(&body),
            b64(attachment)
        );
        let mut rec = record("smtp");
        let mut sink = VecSink::default();
        let env = Envelope {
            mail_from: Some("bounce@evil.example".into()),
            rcpt_to: vec!["taro@example.co.jp".into(), "jiro@example.co.jp".into()],
        };
        process_message(
            eml.as_bytes(),
            &env,
            Direction::ToServer,
            false,
            &mut rec,
            &mut sink,
        );
        let m = rec.mail.unwrap();
        assert_eq!(m.subject.as_deref(), Some("【重要】口座確認のお願い"));
        assert_eq!(m.from.as_deref(), Some("info@resona-secure.example"));
        assert_eq!(m.from_display.as_deref(), Some("りそな銀行"));
        assert_eq!(
            m.to,
            vec![
                "taro@example.co.jp",
                "hanako@example.co.jp",
                "jiro@example.co.jp"
            ]
        );
        assert_eq!(m.reply_to.as_deref(), Some("collect@evil.example"));
        assert_eq!(m.mail_from.as_deref(), Some("bounce@evil.example"));
        assert_eq!(
            m.message_id.as_deref(),
            Some("abc123@resona-secure.example")
        );
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].name, "明細.zip");
        assert_eq!(m.attachments[0].bytes, attachment.len() as u64);
        assert_eq!(
            m.attachments[0].content_type.as_deref(),
            Some("application/zip")
        );
        assert_eq!(
            m.links,
            vec![Link {
                text: "https://www.resonabank.co.jp/".into(),
                href: "http://198.51.100.7/r".into()
            }]
        );
        let kinds: Vec<_> = sink.objects.iter().map(|o| o.0.kind).collect();
        assert_eq!(kinds, vec!["mail", "attachment", "mail-body"]);
        assert_eq!(sink.objects[0].1, eml.as_bytes());
        assert_eq!(sink.objects[1].1, attachment);
        assert_eq!(m.eml_sha256, Some(rec.files[0].sha256.clone()));
    }
}

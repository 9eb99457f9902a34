//! A mail inside an object (an attached `.eml`, a `message/rfc822` part): its bodies and
//! the text of its attachments, recursively up to the depth limit. Charsets (ISO-2022-JP,
//! Shift_JIS, EUC-JP, UTF-8), encoded-words and quoted-printable/base64 are decoded by
//! `mail-parser`, the parser the analyzer uses for mails on the wire.
//!
//! Top-level mails need none of this: the analyzer stores their bodies (`mail-body`) and
//! attachments as objects of their own, which are extracted one by one.

use crate::{Budget, Failure, Object, Part, Text};
use mail_parser::{MessageParser, MimeHeaders};

/// Most parts looked at in one mail.
const MAX_PARTS: usize = 256;

pub fn extract(
    bytes: &[u8],
    depth: u32,
    budget: &mut Budget<'_>,
    out: &mut Vec<Text>,
) -> Result<(), Failure> {
    let Some(m) = MessageParser::default().parse(bytes) else {
        return Err(Failure::Malformed);
    };
    if let Some(subject) = m.subject() {
        let t = budget.take_text(format!("{subject}\n"));
        out.push(Text {
            part: Part::Body,
            inner_name: None,
            text: t,
        });
    }
    let mut ids: Vec<u32> = m
        .text_body
        .iter()
        .chain(m.html_body.iter())
        .copied()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for i in ids.into_iter().take(MAX_PARTS) {
        budget.check_time()?;
        let Some(part) = m.parts.get(i as usize) else {
            continue;
        };
        let Some(text) = part.text_contents() else {
            continue;
        };
        let text = if part.is_text_html() {
            crate::html::to_text(text, budget.text_left().saturating_add(1))
        } else {
            text.to_string()
        };
        let text = budget.take_text(text);
        out.push(Text {
            part: Part::Body,
            inner_name: None,
            text,
        });
    }
    for part in m.attachments().take(MAX_PARTS) {
        budget.check_time()?;
        let ct = part.content_type().map(|c| match &c.c_subtype {
            Some(sub) => format!("{}/{}", c.c_type, sub),
            None => c.c_type.to_string(),
        });
        let name = part.attachment_name().map(str::to_string);
        let obj = Object {
            kind: "attachment",
            content_type: ct.as_deref(),
            name: name.as_deref(),
        };
        // A message/rfc822 part is parsed by mail-parser already: its raw bytes are the
        // nested message.
        let data = part.contents();
        let mut inner = Vec::new();
        match crate::extract_into(
            obj,
            data,
            Part::File,
            name.as_deref(),
            depth + 1,
            budget,
            &mut inner,
        ) {
            Ok(_) => out.extend(inner),
            Err(Failure::Timeout) => return Err(Failure::Timeout),
            // One bad attachment does not hide the others.
            Err(_) => {}
        }
    }
    Ok(())
}

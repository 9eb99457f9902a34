//! ZIP archives: DOCX/XLSX/PPTX text, and the entries of other archives.
//!
//! Office Open XML files are ZIPs of XML parts; their text is the character data of
//! elements named `t` (`w:t` in Word, `a:t` in PowerPoint, `t` in Excel's shared and
//! inline strings), paragraphs end at `p`, `si`, `row`. Other ZIPs: each entry extracted
//! as an object of its own (documents, text, nested archives) up to the depth limit.
//!
//! Limits (bombs): each entry is read through `take` with what is left of the inflate
//! budget, entries past `max_entries` are skipped, XML parts larger than the budget fail
//! the object with `InflateLimit`. A password-protected entry fails with `Encrypted`.

use crate::{Budget, Failure, Object, Part, Text};
use std::io::{Cursor, Read};

/// Which parts of an OOXML file hold its text.
fn text_part(name: &str) -> bool {
    let xml = name.ends_with(".xml");
    xml && (name == "word/document.xml"
        || name.starts_with("word/header")
        || name.starts_with("word/footer")
        || name == "word/footnotes.xml"
        || name == "word/endnotes.xml"
        || name == "xl/sharedStrings.xml"
        || name.starts_with("xl/worksheets/sheet")
        || name.starts_with("ppt/slides/slide")
        || name.starts_with("ppt/notesSlides/notesSlide"))
}

pub fn extract(bytes: &[u8], depth: u32, budget: &mut Budget<'_>) -> Result<Vec<Text>, Failure> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| Failure::Malformed)?;
    let names: Vec<String> = zip
        .file_names_raw()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let office = names.iter().any(|n| n == "[Content_Types].xml")
        && names
            .iter()
            .any(|n| n.starts_with("word/") || n.starts_with("xl/") || n.starts_with("ppt/"));
    let mut out = Vec::new();
    let mut doc = String::new();
    let mut order: Vec<usize> = (0..zip.len()).collect();
    if office {
        // Document order: slides and sheets by number, not by their place in the archive.
        order.sort_by_key(|&i| natural_key(names.get(i).map_or("", String::as_str)));
    }
    for i in order {
        budget.check_time()?;
        if !budget.entry() {
            break;
        }
        let Ok(mut entry) = zip.by_index(i) else {
            // The zip crate reports encryption when an entry is opened without a password.
            return Err(encrypted_or_malformed(&mut zip, i));
        };
        if entry.is_dir() {
            continue;
        }
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if office && !text_part(&name) {
            continue;
        }
        let left = budget.inflate_left();
        if entry.size() > left as u64 {
            return Err(Failure::InflateLimit);
        }
        let mut data = Vec::new();
        let read = (&mut entry)
            .take(left as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|_| Failure::Malformed)?;
        budget.inflated(read)?;
        if office {
            let xml = String::from_utf8_lossy(&data);
            doc.push_str(&xml_text(&xml));
        } else {
            let obj = Object {
                kind: "attachment",
                content_type: None,
                name: Some(&name),
            };
            let mut inner = Vec::new();
            match crate::extract_into(
                obj,
                &data,
                Part::File,
                Some(&name),
                depth + 1,
                budget,
                &mut inner,
            ) {
                Ok(_) => out.extend(inner),
                Err(e @ (Failure::Timeout | Failure::InflateLimit)) => return Err(e),
                Err(_) => {}
            }
        }
    }
    if office {
        let text = budget.take_text(doc);
        out.push(Text {
            part: Part::File,
            inner_name: None,
            text,
        });
    }
    Ok(out)
}

fn encrypted_or_malformed(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, i: usize) -> Failure {
    match zip.by_index_raw(i) {
        Ok(e) if e.encrypted() => Failure::Encrypted,
        _ => Failure::Malformed,
    }
}

/// `slide10.xml` after `slide9.xml`.
fn natural_key(name: &str) -> (String, u64) {
    let digits: String = name.chars().filter(|c| c.is_ascii_digit()).collect();
    let stem: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
    (stem, digits.parse().unwrap_or(0))
}

/// The character data of `t` elements (any namespace prefix); line breaks after
/// paragraphs and rows, tabs and spaces for `tab` elements and cells.
pub fn xml_text(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    let mut in_t = false;
    while let Some(lt) = rest.find('<') {
        if in_t {
            out.push_str(&crate::html::decode_entities(&rest[..lt]));
        }
        rest = &rest[lt..];
        let gt = rest.find('>').unwrap_or(rest.len().saturating_sub(1));
        let tag = &rest[1..gt.max(1)];
        rest = &rest[(gt + 1).min(rest.len())..];
        let closing = tag.starts_with('/');
        let self_closing = tag.ends_with('/');
        let qname = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = qname.rsplit(':').next().unwrap_or("");
        match local {
            "t" if !self_closing => in_t = !closing,
            "p" | "si" | "row" | "br" | "cr"
                if (closing || self_closing) && !out.is_empty() && !out.ends_with('\n') =>
            {
                out.push('\n');
            }
            "tab" | "c" if !closing => out.push('\t'),
            _ => {}
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_runs_of_word_and_excel() {
        let x = r#"<w:document><w:body><w:p><w:r><w:t>ご本人</w:t></w:r><w:r><w:t xml:space="preserve">確認 &amp; ID</w:t></w:r></w:p><w:p><w:r><w:t>請求書</w:t></w:r></w:p></w:body></w:document>"#;
        assert_eq!(xml_text(x), "ご本人確認 & ID\n請求書\n");
        let s =
            r#"<sst><si><t>口座番号</t></si><si><r><t>パス</t></r><r><t>ワード</t></r></si></sst>"#;
        assert_eq!(xml_text(s), "口座番号\nパスワード\n");
    }
}

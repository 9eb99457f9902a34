//! Extraction through `extract`: each kind of object, and hostile ones.

use super::*;
use std::io::Write;

fn obj<'a>(kind: &'a str, ct: Option<&'a str>, name: Option<&'a str>) -> Object<'a> {
    Object {
        kind,
        content_type: ct,
        name,
    }
}

fn all_text(e: &Extracted) -> String {
    e.texts
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn docx_text_is_extracted() {
    let docx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        (
            "word/document.xml",
            "<w:document><w:body><w:p><w:r><w:t>請求書のご確認</w:t></w:r></w:p></w:body></w:document>"
                .as_bytes(),
        ),
        ("word/media/image1.png", b"\x89PNG...."),
    ]);
    let e = extract(
        obj("attachment", None, Some("a.docx")),
        &docx,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(all_text(&e), "請求書のご確認\n");
    assert_eq!(e.texts[0].part, Part::File);
}

#[test]
fn zip_bomb_stops_at_the_inflate_limit() {
    let zeros = vec![b'a'; 4 << 20];
    let z = zip_of(&[("big.txt", &zeros)]);
    let limits = Limits {
        max_inflated: 1 << 20,
        ..Limits::default()
    };
    assert_eq!(
        extract(obj("attachment", None, Some("x.zip")), &z, &limits),
        Err(Failure::InflateLimit)
    );
}

#[test]
fn nested_zip_entries_are_extracted() {
    let inner = zip_of(&[("memo.txt", "パスワードは別途".as_bytes())]);
    let outer = zip_of(&[("inner.zip", &inner)]);
    let e = extract(
        obj("attachment", None, Some("x.zip")),
        &outer,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(all_text(&e), "パスワードは別途");
    assert_eq!(e.texts[0].inner_name.as_deref(), Some("memo.txt"));
}

#[test]
fn pdf_text_with_flate_and_ucs2_font() {
    let mut content = Vec::new();
    let mut z = flate2::write::ZlibEncoder::new(&mut content, flate2::Compression::default());
    let jp: Vec<u8> = "ご本人確認"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let mut s = b"BT /F1 12 Tf 72 712 Td (Account frozen) Tj ET BT /F2 12 Tf 72 700 Td <".to_vec();
    for b in &jp {
        s.extend_from_slice(format!("{b:02X}").as_bytes());
    }
    s.extend_from_slice(b"> Tj ET");
    z.write_all(&s).unwrap();
    z.finish().unwrap();
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Page /Resources << /Font << /F1 2 0 R /F2 3 0 R >> >> /Contents 4 0 R >> endobj\n\
2 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n\
3 0 obj << /Type /Font /Subtype /Type0 /BaseFont /HeiseiMin-W3 /Encoding /UniJIS-UCS2-H >> endobj\n"
        .to_vec();
    pdf.extend_from_slice(
        format!(
            "4 0 obj << /Length {} /Filter /FlateDecode >>\nstream\n",
            content.len()
        )
        .as_bytes(),
    );
    pdf.extend_from_slice(&content);
    pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    let e = extract(
        obj("attachment", Some("application/pdf"), None),
        &pdf,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(all_text(&e), "Account frozen\nご本人確認\n");
}

#[test]
fn pdf_to_unicode_cmap() {
    let cmap = b"begincmap 1 begincodespacerange <00> <FF> endcodespacerange 2 beginbfchar <01> <53E3> <02> <5EA7> endbfchar 1 beginbfrange <10> <12> <0041> endbfrange endcmap";
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Resources << /Font << /T1 2 0 R >> >> >> endobj\n2 0 obj << /Type /Font /Subtype /TrueType /ToUnicode 3 0 R >> endobj\n".to_vec();
    pdf.extend_from_slice(format!("3 0 obj << /Length {} >>\nstream\n", cmap.len()).as_bytes());
    pdf.extend_from_slice(cmap);
    pdf.extend_from_slice(b"\nendstream\nendobj\n5 0 obj << /Length 30 >>\nstream\nBT /T1 9 Tf (\\001\\002\\020\\021\\022) Tj ET\nendstream\nendobj\n");
    let e = extract(
        obj("attachment", None, Some("a.pdf")),
        &pdf,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(all_text(&e), "口座ABC\n");
}

#[test]
fn encrypted_pdf_is_counted() {
    let pdf = b"%PDF-1.7\ntrailer << /Encrypt 5 0 R >>";
    assert_eq!(
        extract(obj("attachment", None, None), pdf, &Limits::default()),
        Err(Failure::Encrypted)
    );
}

#[test]
fn attached_mail_gives_its_body_and_attachments() {
    let (subj, _, _) = encoding_rs::ISO_2022_JP.encode("【重要】口座確認");
    let (body, _, _) = encoding_rs::ISO_2022_JP.encode("ご本人確認をお願いします。");
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let eml = format!(
        "From: a@b\r\nSubject: =?ISO-2022-JP?B?{}?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--X\r\nContent-Type: text/plain; charset=Shift_JIS\r\nContent-Disposition: attachment; filename=memo.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--X--\r\n",
        b64(&subj),
        b64(&body),
        b64(&encoding_rs::SHIFT_JIS.encode("請求書在中").0)
    );
    let e = extract(
        obj("attachment", Some("message/rfc822"), None),
        eml.as_bytes(),
        &Limits::default(),
    )
    .unwrap();
    let t = all_text(&e);
    assert!(t.contains("【重要】口座確認"), "{t}");
    assert!(t.contains("ご本人確認をお願いします。"), "{t}");
    assert!(t.contains("請求書在中"), "{t}");
}

#[test]
fn html_and_forms_by_content_type() {
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<html><body><p>ログイン</p></body></html>");
    let e = extract(
        obj("http-body", Some("text/html; charset=Shift_JIS"), None),
        &sjis,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(all_text(&e), "ログイン\n");
    assert_eq!(e.texts[0].part, Part::Body);
    let e = extract(
        obj("http-body", Some("application/x-www-form-urlencoded"), None),
        b"id=taro&pw=secret",
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(all_text(&e), "id taro\npw secret\n");
    let e = extract(
        obj("http-body", Some("image/png"), None),
        b"\x89PNG\x00\x00",
        &Limits::default(),
    )
    .unwrap();
    assert!(e.skipped && e.texts.is_empty());
}

#[test]
fn text_is_cut_at_the_limit() {
    let limits = Limits {
        max_text: 10,
        ..Limits::default()
    };
    let e = extract(
        obj("ftp", None, Some("a.txt")),
        "あいうえおかきくけこ".as_bytes(),
        &limits,
    )
    .unwrap();
    assert!(e.truncated);
    assert_eq!(all_text(&e), "あいう");
}

#[test]
fn too_large_input_is_refused() {
    let limits = Limits {
        max_input: 4,
        ..Limits::default()
    };
    assert_eq!(
        extract(obj("ftp", None, None), b"hello", &limits),
        Err(Failure::TooLarge)
    );
}

/// Mutated documents of every kind: never a panic, always within the limits.
#[test]
fn mutated_inputs_never_panic() {
    let docx = zip_of(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", "<w:p><w:t>本文</w:t></w:p>".as_bytes()),
    ]);
    let pdf = b"%PDF-1.4\n1 0 obj << /Font << /F1 2 0 R >> >> endobj 2 0 obj << /ToUnicode 3 0 R >> endobj 3 0 obj << >> stream\nbeginbfrange <00> <FFFFFFFF> <0041> endbfrange\nendstream endobj 4 0 obj <<>> stream\nBT /F1 1 Tf [(a) -300 <0102>] TJ ET\nendstream".to_vec();
    let seeds: Vec<Vec<u8>> = vec![docx, pdf, b"<html><p>x&#1234;</p>".to_vec()];
    let mut rng = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let limits = Limits {
        time: Duration::from_secs(1),
        ..Limits::default()
    };
    for round in 0..600 {
        let mut b = seeds[round % seeds.len()].clone();
        for _ in 0..(1 + next() % 8) {
            let at = (next() as usize) % b.len().max(1);
            match next() % 3 {
                0 if !b.is_empty() => b[at] = next() as u8,
                1 => b.insert(at.min(b.len()), next() as u8),
                _ => b.truncate(at.max(1)),
            }
        }
        let r = extract(obj("attachment", None, None), &b, &limits);
        assert_ne!(r, Err(Failure::Panic), "round {round}");
        if let Ok(e) = r {
            assert!(e.texts.iter().map(|t| t.text.len()).sum::<usize>() <= limits.max_text);
        }
    }
}

/// A PDF as reportlab writes it: `[ /ASCII85Decode /FlateDecode ]` content, a CID font
/// with the `UniJIS-UCS2-H` encoding (octal-escaped UTF-16 strings) beside Helvetica.
#[test]
fn reportlab_pdf_with_a_japanese_cid_font() {
    let pdf = include_bytes!("../fixtures/reportlab_cid.pdf");
    let e = extract(
        obj("attachment", Some("application/pdf"), None),
        pdf,
        &Limits::default(),
    )
    .unwrap();
    let t = all_text(&e);
    assert!(t.contains("パスワード再設定のご案内"), "{t}");
    assert!(t.contains("Account suspended until confirmation"), "{t}");
}

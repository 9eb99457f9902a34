//! PDF text: a small extractor over the file's streams, written for hostile input.
//!
//! No PDF library: the crates we looked at parse the whole object graph eagerly and
//! allocate what the file claims, which a hostile file abuses. Here: every `stream` is
//! found by scanning, decoded (`FlateDecode`, `ASCII85Decode`, `ASCIIHexDecode`; images
//! and fonts skipped) within the budget, and the text operators (`Tj`, `TJ`, `'`, `"`) of each are read with the font
//! selected by `Tf`. Fonts map codes to text by their `ToUnicode` CMap (`bfchar`,
//! `bfrange`), by a UCS-2 CMap encoding (`UniJIS-UCS2-H`, what reportlab's CID fonts
//! use), or else as single bytes (WinAnsi/Latin-1). Font resource names are resolved
//! document-wide (`/F1 5 0 R`), which is exact for the PDFs office software and reportlab
//! write. Encrypted files (`/Encrypt`) fail with `Encrypted`.

use crate::{Budget, Failure};
use std::collections::HashMap;
use std::io::Read;

/// One stream: the dictionary before it and its decoded bytes.
struct Stream {
    obj: Option<u32>,
    dict: String,
    data: Vec<u8>,
}

/// How a font turns string bytes into text.
#[derive(Clone, Default)]
struct FontMap {
    /// Code (big-endian, `width` bytes) → text, from a ToUnicode CMap.
    cmap: HashMap<u32, String>,
    /// Code width in bytes of the CMap (1 or 2).
    width: usize,
    /// The string bytes are UTF-16BE (a UCS-2 CMap encoding).
    ucs2: bool,
}

pub fn text(bytes: &[u8], budget: &mut Budget<'_>) -> Result<String, Failure> {
    if find(bytes, b"/Encrypt", 0).is_some() {
        return Err(Failure::Encrypted);
    }
    let streams = streams(bytes, budget)?;
    // Object bodies without streams (font dictionaries, resources) and the objects inside
    // object streams.
    let mut dicts: HashMap<u32, String> = HashMap::new();
    collect_objects(bytes, &mut dicts);
    for s in &streams {
        if s.dict.contains("/ObjStm") {
            collect_objects_in_objstm(&s.data, &s.dict, &mut dicts);
        }
        if let Some(n) = s.obj {
            dicts.entry(n).or_insert_with(|| s.dict.clone());
        }
    }
    let by_obj: HashMap<u32, &Stream> = streams.iter().filter_map(|s| Some((s.obj?, s))).collect();
    let mut fonts: HashMap<String, FontMap> = HashMap::new();
    for d in dicts.values() {
        let Some(at) = d
            .match_indices("/Font")
            .map(|(i, _)| i)
            .find(|&i| !d[i + 5..].starts_with(|c: char| c.is_ascii_alphanumeric()))
        else {
            continue;
        };
        let rest = d[at + 5..].trim_start();
        let sub = if let Some(inline) = rest.strip_prefix("<<") {
            inline.split(">>").next().unwrap_or("").to_string()
        } else if let Some(n) = leading_ref(rest) {
            dicts.get(&n).cloned().unwrap_or_default()
        } else {
            continue;
        };
        for (name, obj) in name_refs(&sub) {
            if let Some(fd) = dicts.get(&obj) {
                fonts.insert(name, font_map(fd, &dicts, &by_obj));
            }
        }
    }
    let mut out = String::new();
    for s in &streams {
        budget.check_time()?;
        let d = &s.dict;
        if d.contains("/Subtype") && !d.contains("/Form")
            || d.contains("/Length1")
            || d.contains("/ObjStm")
            || d.contains("/XRef")
            || d.contains("/Metadata")
            || find(&s.data, b"begincmap", 0).is_some()
        {
            continue;
        }
        content_text(
            &s.data,
            &fonts,
            &mut out,
            budget.text_left().saturating_add(1),
        );
        if out.len() > budget.text_left() {
            break;
        }
    }
    if streams.is_empty() {
        return Err(Failure::Malformed);
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The last `needle` in the `BACK_WINDOW` bytes before `before` (bounded: a file of many
/// `stream` keywords and no `obj` must not make each look back to the start).
fn rfind(hay: &[u8], needle: &[u8], before: usize) -> Option<usize> {
    let end = before.min(hay.len());
    let start = end.saturating_sub(BACK_WINDOW);
    hay[start..end]
        .windows(needle.len())
        .rposition(|w| w == needle)
        .map(|p| p + start)
}

/// How far back from `stream` its object header is looked for.
const BACK_WINDOW: usize = 64 << 10;

/// `N G obj` ending right before `at`: N.
fn obj_number_before(bytes: &[u8], obj_kw: usize) -> Option<u32> {
    let head = &bytes[obj_kw.saturating_sub(24)..obj_kw];
    let s = String::from_utf8_lossy(head);
    let mut it = s.split_whitespace().rev();
    let _gen = it.next()?;
    it.next()?.parse().ok()
}

/// Every stream, inflated within the budget.
fn streams(bytes: &[u8], budget: &mut Budget<'_>) -> Result<Vec<Stream>, Failure> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(kw) = find(bytes, b"stream", from) {
        budget.check_time()?;
        from = kw + 6;
        if kw >= 3 && &bytes[kw - 3..kw] == b"end" {
            continue;
        }
        let mut start = kw + 6;
        if bytes.get(start) == Some(&b'\r') {
            start += 1;
        }
        if bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        let obj_kw = rfind(bytes, b"obj", kw);
        let dict_from = obj_kw.map_or(kw.saturating_sub(4096), |o| o + 3);
        let dict = String::from_utf8_lossy(&bytes[dict_from.min(kw)..kw]).into_owned();
        let end = find(bytes, b"endstream", start).unwrap_or(bytes.len());
        from = end.max(from);
        let raw = &bytes[start.min(end)..end];
        let obj = obj_kw.and_then(|o| obj_number_before(bytes, o));
        let Some(data) = decode_filters(&dict, raw, budget)? else {
            continue;
        };
        out.push(Stream { obj, dict, data });
    }
    Ok(out)
}

/// The stream's data through its filters in order (`/Filter /FlateDecode`, or an array
/// such as reportlab's `[ /ASCII85Decode /FlateDecode ]`); `None` for filters we do not
/// read (images: DCT, JPX, CCITT, JBIG2; LZW, RunLength).
fn decode_filters(
    dict: &str,
    raw: &[u8],
    budget: &mut Budget<'_>,
) -> Result<Option<Vec<u8>>, Failure> {
    let Some(at) = dict.find("/Filter") else {
        return Ok(Some(raw.to_vec()));
    };
    let rest = dict[at + 7..].trim_start();
    let names: Vec<&str> = if let Some(arr) = rest.strip_prefix('[') {
        arr.split(']')
            .next()
            .unwrap_or("")
            .split('/')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .take(4)
            .collect()
    } else {
        rest.strip_prefix('/')
            .and_then(|r| {
                r.split(|c: char| c.is_whitespace() || "/>[".contains(c))
                    .next()
            })
            .into_iter()
            .collect()
    };
    let mut data = raw.to_vec();
    for n in names {
        data = match n {
            "FlateDecode" | "Fl" => inflate(&data, budget)?,
            "ASCII85Decode" | "A85" => ascii85(&data),
            "ASCIIHexDecode" | "AHx" => hex_bytes(&String::from_utf8_lossy(
                data.split(|&b| b == b'>').next().unwrap_or(&[]),
            )),
            _ => return Ok(None),
        };
    }
    Ok(Some(data))
}

/// ASCII base-85 (`z` for four zero bytes, `~>` ends it); other characters are skipped.
fn ascii85(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 5 * 4 + 4);
    let mut group = [0u8; 5];
    let mut n = 0;
    for &c in data {
        match c {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = c - b'!';
                n += 1;
                if n == 5 {
                    let v = group.iter().fold(0u64, |a, &d| a * 85 + d as u64);
                    out.extend_from_slice(&(v as u32).to_be_bytes());
                    n = 0;
                }
            }
            _ => {}
        }
    }
    if n > 1 {
        for g in group.iter_mut().skip(n) {
            *g = 84;
        }
        let v = group.iter().fold(0u64, |a, &d| a * 85 + d as u64);
        out.extend_from_slice(&(v as u32).to_be_bytes()[..n - 1]);
    }
    out
}

/// Inflates as much as decodes (a stream cut short keeps what came before the damage).
fn inflate(raw: &[u8], budget: &mut Budget<'_>) -> Result<Vec<u8>, Failure> {
    let left = budget.inflate_left();
    let mut d = flate2::read::ZlibDecoder::new(raw).take(left as u64 + 1);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match d.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                budget.inflated(n)?;
            }
        }
    }
    Ok(out)
}

/// Object bodies `N G obj … endobj` that hold no stream.
fn collect_objects(bytes: &[u8], dicts: &mut HashMap<u32, String>) {
    let mut from = 0;
    while let Some(kw) = find(bytes, b" obj", from) {
        from = kw + 4;
        let Some(n) = obj_number_before(bytes, kw + 1) else {
            continue;
        };
        let end = find(bytes, b"endobj", from).unwrap_or(bytes.len());
        let body = &bytes[from..end];
        let body = match find(body, b"stream", 0) {
            Some(s) => &body[..s],
            None => body,
        };
        if body.len() <= 64 << 10 {
            dicts.insert(n, String::from_utf8_lossy(body).into_owned());
        }
        from = end.max(from);
    }
}

/// The objects of an object stream: `/N` pairs `num offset`, then bodies from `/First`.
fn collect_objects_in_objstm(data: &[u8], dict: &str, dicts: &mut HashMap<u32, String>) {
    let Some(first) = dict_int(dict, "/First") else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let Some(header) = text.get(..(first as usize).min(text.len())) else {
        return;
    };
    let nums: Vec<u64> = header
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let pairs: Vec<(u32, usize)> = nums
        .chunks(2)
        .filter(|c| c.len() == 2)
        .map(|c| (c[0] as u32, first as usize + c[1] as usize))
        .collect();
    for (k, &(num, off)) in pairs.iter().enumerate() {
        let end = pairs.get(k + 1).map_or(data.len(), |p| p.1).min(data.len());
        if off < end {
            dicts.insert(num, String::from_utf8_lossy(&data[off..end]).into_owned());
        }
    }
}

fn dict_int(dict: &str, key: &str) -> Option<u64> {
    let at = dict.find(key)? + key.len();
    dict[at..]
        .split_whitespace()
        .next()?
        .trim_end_matches(['/', '>'])
        .parse()
        .ok()
}

/// `12 0 R` at the start of `s`.
fn leading_ref(s: &str) -> Option<u32> {
    let mut it = s.split_whitespace();
    let n = it.next()?.parse().ok()?;
    let _g: u32 = it.next()?.parse().ok()?;
    it.next()?.starts_with('R').then_some(n)
}

/// `/F1 5 0 R /F2 7 0 R` pairs.
fn name_refs(s: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (i, _) in s.match_indices('/') {
        let rest = &s[i + 1..];
        let end = rest
            .find(|c: char| c.is_whitespace() || "/<>[]()".contains(c))
            .unwrap_or(rest.len());
        if let Some(n) = leading_ref(&rest[end..]) {
            out.push((rest[..end].to_string(), n));
        }
    }
    out
}

fn font_map(fd: &str, dicts: &HashMap<u32, String>, streams: &HashMap<u32, &Stream>) -> FontMap {
    let mut m = FontMap {
        width: 1,
        ..FontMap::default()
    };
    if let Some(at) = fd.find("/Encoding") {
        let enc = fd[at + 9..].trim_start();
        let name: String = enc.chars().take(40).collect();
        if name.contains("UCS2") || name.contains("UTF16") {
            m.ucs2 = true;
        }
        if name.starts_with("/Identity") {
            m.width = 2;
        }
    }
    if let Some(at) = fd.find("/ToUnicode")
        && let Some(n) = leading_ref(&fd[at + 10..])
        && let Some(s) = streams.get(&n)
    {
        parse_cmap(&String::from_utf8_lossy(&s.data), &mut m);
        m.ucs2 = false;
    }
    let _ = dicts;
    m
}

fn hex_bytes(h: &str) -> Vec<u8> {
    let digits: Vec<u8> = h.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|c| {
            let s = std::str::from_utf8(c).unwrap_or("0");
            let v = u8::from_str_radix(s, 16).unwrap_or(0);
            if c.len() == 1 { v << 4 } else { v }
        })
        .collect()
}

fn utf16be(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn code_of(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0u32, |a, &x| (a << 8) | x as u32)
}

/// Most codes a `bfrange` maps, and most entries of one CMap (a hostile CMap of many wide
/// ranges cannot take unbounded time or memory).
const MAX_RANGE: u32 = 65_536;
const MAX_CMAP_ENTRIES: usize = 1 << 18;

fn parse_cmap(text: &str, m: &mut FontMap) {
    let hexes = |s: &str| -> Vec<String> {
        let mut v = Vec::new();
        let mut rest = s;
        while let Some(a) = rest.find(['<', '[', ']']) {
            let c = rest.as_bytes()[a];
            if c == b'[' || c == b']' {
                v.push((c as char).to_string());
                rest = &rest[a + 1..];
                continue;
            }
            let Some(b) = rest[a..].find('>') else { break };
            v.push(rest[a + 1..a + b].to_string());
            rest = &rest[a + b + 1..];
        }
        v
    };
    for sect in text.split("beginbfchar").skip(1) {
        let body = sect.split("endbfchar").next().unwrap_or("");
        let h = hexes(body);
        for pair in h.chunks(2) {
            if let [src, dst] = pair {
                let sb = hex_bytes(src);
                m.width = sb.len().clamp(1, 4);
                m.cmap.insert(code_of(&sb), utf16be(&hex_bytes(dst)));
            }
        }
    }
    for sect in text.split("beginbfrange").skip(1) {
        let body = sect.split("endbfrange").next().unwrap_or("");
        let h = hexes(body);
        let mut i = 0;
        while i + 2 < h.len() {
            let lo_b = hex_bytes(&h[i]);
            let lo = code_of(&lo_b);
            let hi = code_of(&hex_bytes(&h[i + 1]));
            m.width = lo_b.len().clamp(1, 4);
            if h[i + 2] == "[" {
                let mut k = i + 3;
                let mut code = lo;
                while k < h.len() && h[k] != "]" {
                    m.cmap.insert(code, utf16be(&hex_bytes(&h[k])));
                    code = code.saturating_add(1);
                    k += 1;
                }
                i = k + 1;
            } else {
                let dst = hex_bytes(&h[i + 2]);
                let base = utf16be(&dst);
                let mut units: Vec<u16> = base.encode_utf16().collect();
                if m.cmap.len() >= MAX_CMAP_ENTRIES {
                    return;
                }
                for code in lo..=hi.min(lo.saturating_add(MAX_RANGE)) {
                    m.cmap.insert(code, String::from_utf16_lossy(&units));
                    if let Some(last) = units.last_mut() {
                        *last = last.wrapping_add(1);
                    }
                }
                i += 3;
            }
        }
    }
}

fn decode_string(s: &[u8], font: Option<&FontMap>) -> String {
    match font {
        Some(f) if !f.cmap.is_empty() => {
            let w = f.width.max(1);
            s.chunks(w)
                .map(|c| f.cmap.get(&code_of(c)).cloned().unwrap_or_default())
                .collect()
        }
        Some(f) if f.ucs2 => utf16be(s),
        Some(f) if f.width == 2 => String::new(),
        _ if s.starts_with(&[0xFE, 0xFF]) => utf16be(&s[2..]),
        _ => s.iter().map(|&b| b as char).collect(),
    }
}

/// Appends the text shown by the operators of one content stream.
fn content_text(data: &[u8], fonts: &HashMap<String, FontMap>, out: &mut String, max: usize) {
    let mut i = 0;
    let mut font: Option<&FontMap> = None;
    let mut last_name = String::new();
    let mut strings: Vec<Vec<u8>> = Vec::new();
    let mut in_array = false;
    while i < data.len() && out.len() < max {
        let c = data[i];
        match c {
            b'%' => {
                while i < data.len() && data[i] != b'\n' && data[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                let (s, next) = literal(data, i + 1);
                strings.push(s);
                i = next;
                continue;
            }
            b'<' if data.get(i + 1) == Some(&b'<') => i += 1,
            b'<' => {
                let end = data[i..]
                    .iter()
                    .position(|&b| b == b'>')
                    .map_or(data.len(), |e| i + e);
                strings.push(hex_bytes(&String::from_utf8_lossy(&data[i + 1..end])));
                i = end;
            }
            b'[' => {
                in_array = true;
                strings.clear();
            }
            b']' => in_array = false,
            b'-' | b'0'..=b'9' | b'.' if in_array => {
                let end = data[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b'.' || *b == b'-'))
                    .map_or(data.len(), |e| i + e);
                let v: f64 = std::str::from_utf8(&data[i..end])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0.0);
                if v < -200.0 {
                    strings.push(b" ".to_vec());
                    strings.push(Vec::new());
                }
                i = end;
                continue;
            }
            b'/' => {
                let end = data[i + 1..]
                    .iter()
                    .position(|b| b.is_ascii_whitespace() || b"/[]()<>".contains(b))
                    .map_or(data.len(), |e| i + 1 + e);
                last_name = String::from_utf8_lossy(&data[i + 1..end]).into_owned();
                i = end;
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'\'' | b'"' | b'*' => {
                let end = data[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphabetic() || b"'\"*".contains(b)))
                    .map_or(data.len(), |e| i + e);
                let op = &data[i..end];
                match op {
                    b"Tf" => font = fonts.get(&last_name),
                    b"Tj" | b"TJ" | b"'" | b"\"" => {
                        if matches!(op, b"'" | b"\"") && !out.ends_with('\n') {
                            out.push('\n');
                        }
                        let mut k = 0;
                        while k < strings.len() {
                            if strings[k] == b" " && strings.get(k + 1).is_some_and(Vec::is_empty) {
                                out.push(' ');
                                k += 2;
                                continue;
                            }
                            out.push_str(&decode_string(&strings[k], font));
                            k += 1;
                        }
                    }
                    b"Td" | b"TD" | b"T*" | b"ET" if !out.is_empty() && !out.ends_with('\n') => {
                        out.push('\n');
                    }
                    b"BI" => {
                        // Inline image: skip its data up to `EI`.
                        i = find(data, b"EI", end).map_or(data.len(), |e| e + 2);
                        strings.clear();
                        continue;
                    }
                    _ => {}
                }
                if !in_array {
                    strings.clear();
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
}

/// A literal string starting after its `(`: the bytes and the index after its `)`.
fn literal(data: &[u8], mut i: usize) -> (Vec<u8>, usize) {
    let mut depth = 1;
    let mut s = Vec::new();
    while i < data.len() {
        let c = data[i];
        match c {
            b'\\' => {
                i += 1;
                let Some(&e) = data.get(i) else { break };
                match e {
                    b'n' => s.push(b'\n'),
                    b'r' => s.push(b'\r'),
                    b't' => s.push(b'\t'),
                    b'b' => s.push(8),
                    b'f' => s.push(12),
                    b'0'..=b'7' => {
                        let mut v = 0u32;
                        let mut k = 0;
                        while k < 3 && i < data.len() && (b'0'..=b'7').contains(&data[i]) {
                            v = v * 8 + (data[i] - b'0') as u32;
                            i += 1;
                            k += 1;
                        }
                        s.push(v as u8);
                        continue;
                    }
                    b'\r' | b'\n' => {}
                    other => s.push(other),
                }
            }
            b'(' => {
                depth += 1;
                s.push(c);
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return (s, i + 1);
                }
                s.push(c);
            }
            _ => s.push(c),
        }
        i += 1;
    }
    (s, i)
}

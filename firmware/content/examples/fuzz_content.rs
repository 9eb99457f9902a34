//! A mutation fuzzer for the extractors (stable Rust has no cargo-fuzz): each run mutates
//! a seed of the target's kind (bit flips, byte inserts and deletes, interesting tokens,
//! truncation, splices) and extracts it under tight limits. A panic (caught inside
//! `extract` as `Failure::Panic`) or text past the limit fails the run; the input is saved
//! under `firmware/content/fuzz/crashes/<target>/`.
//!
//! Run: `cargo xtask fuzz fulltext --runs N` (each target in its own process, with its
//! peak RSS), or `cargo run --release -p kuroko-content --example fuzz_content --
//! <pdf|ooxml|charset|html|mail|all> --runs N`.

use kuroko_content::{Failure, Limits, Object, extract};
use std::io::Write;
use std::time::{Duration, Instant};

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).expect("zip entry");
        w.write_all(data).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

fn seeds(target: &str) -> Vec<(Vec<u8>, &'static str, Option<&'static str>)> {
    let jp = "ご本人確認のため、ＩＤとパスワードを入力してください。口座が凍結されました。";
    match target {
        "pdf" => vec![
            (include_bytes!("../fixtures/reportlab_cid.pdf").to_vec(), "attachment", Some("application/pdf")),
            (b"%PDF-1.4\n1 0 obj << /Font << /F1 2 0 R >> >> endobj 2 0 obj << /ToUnicode 3 0 R >> endobj 3 0 obj << >> stream\nbeginbfchar <01> <53E3> endbfchar beginbfrange <10> <20> [<0041> <0042>] endbfrange\nendstream endobj 4 0 obj << /Filter [/ASCIIHexDecode] >> stream\n42542028010229205466205b283c3e29202d33303020283c3e295d20544a204554>\nendstream".to_vec(), "attachment", None),
        ],
        "ooxml" => vec![
            (zip_of(&[
                ("[Content_Types].xml", b"<Types/>"),
                ("word/document.xml", format!("<w:document><w:body><w:p><w:r><w:t>{jp}</w:t></w:r><w:tab/></w:p></w:body></w:document>").as_bytes()),
            ]), "attachment", None),
            (zip_of(&[
                ("[Content_Types].xml", b"<Types/>"),
                ("xl/sharedStrings.xml", format!("<sst><si><t>{jp}</t></si><si><r><t>a&amp;b</t></r></si></sst>").as_bytes()),
                ("xl/worksheets/sheet1.xml", b"<row><c t=\"inlineStr\"><is><t>x</t></is></c></row>"),
            ]), "attachment", None),
            (zip_of(&[("inner.zip", &zip_of(&[("a.txt", jp.as_bytes())]))]), "attachment", None),
        ],
        "charset" => vec![
            (encoding_rs::SHIFT_JIS.encode(jp).0.into_owned(), "ftp", None),
            (encoding_rs::EUC_JP.encode(jp).0.into_owned(), "ftp", None),
            (encoding_rs::ISO_2022_JP.encode(jp).0.into_owned(), "ftp", None),
            (format!("user=taro&pw=%E3%83%91{jp}").into_bytes(), "http-body", Some("application/x-www-form-urlencoded")),
            (format!("{{\"a\":[\"{jp}\",1,{{\"b\":null}}]}}").into_bytes(), "http-body", Some("application/json")),
        ],
        "html" => vec![(
            format!("<html><head><meta charset=utf-8><style>x</style><script>y</script></head><body><p>{jp}&amp;&#x3042;&#12354;<br>x<!-- c --></p></body></html>").into_bytes(),
            "http-body",
            Some("text/html"),
        )],
        "mail" => vec![(
            format!("Subject: =?ISO-2022-JP?B?GyRCOXxCVhsoQg==?=\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>{jp}=E3=81=82</p>\r\n--X\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\n{jp}\r\n--X--\r\n").into_bytes(),
            "attachment",
            Some("message/rfc822"),
        )],
        _ => Vec::new(),
    }
}

const TOKENS: &[&[u8]] = &[
    b"stream\n",
    b"endstream",
    b" obj ",
    b"/Filter",
    b"/FlateDecode",
    b"/ASCII85Decode",
    b"<<",
    b">>",
    b"(",
    b")",
    b"\\",
    b"<",
    b">",
    b"Tj",
    b"TJ",
    b"[",
    b"]",
    b"beginbfrange",
    b"<w:t>",
    b"</w:t>",
    b"&#x",
    b"&",
    b";",
    b"<!--",
    b"<script>",
    b"=?",
    b"?=",
    b"\x1b$B",
    b"\x1b(B",
    b"PK\x03\x04",
    b"%",
    b"\r\n--X",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(b: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(b.len() + 1);
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.below(8);
            }
            1 => b.insert(at, rng.next() as u8),
            2 if at < b.len() => {
                let n = rng.below(16).min(b.len() - at);
                b.drain(at..at + n);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(at..at, t.iter().copied());
            }
            4 => b.truncate(at.max(1)),
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = rng.below(64).min(other.len() - from);
                b.splice(at..at, other[from..from + n].iter().copied());
            }
            _ => {
                if !b.is_empty() {
                    let i = at.min(b.len() - 1);
                    b[i] = [0, 0xff, b'0', b'9', b'/', b'<'][rng.below(6)];
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).map(String::as_str).unwrap_or("all");
    let runs: u64 = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let targets: Vec<&str> = if target == "all" {
        vec!["pdf", "ooxml", "charset", "html", "mail"]
    } else {
        vec![target]
    };
    // The panics are caught and counted; the default hook's message for each would drown
    // the summary.
    std::panic::set_hook(Box::new(|_| {}));
    let limits = Limits {
        max_input: 1 << 20,
        max_text: 64 << 10,
        max_inflated: 4 << 20,
        max_entries: 64,
        max_depth: 3,
        time: Duration::from_millis(500),
    };
    let mut failed = false;
    for t in targets {
        let seeds = seeds(t);
        if seeds.is_empty() {
            eprintln!("unknown target `{t}`; targets: pdf ooxml charset html mail all");
            std::process::exit(2);
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ t.len() as u64);
        let started = Instant::now();
        let mut causes = std::collections::BTreeMap::<&str, u64>::new();
        let mut crashes = 0u64;
        let mut slowest = Duration::ZERO;
        for run in 0..runs {
            let (seed, kind, ct) = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())].0;
            let mut input = seed.clone();
            mutate(&mut input, other, &mut rng);
            let obj = Object {
                kind,
                content_type: *ct,
                name: None,
            };
            let t0 = Instant::now();
            let r = extract(obj, &input, &limits);
            slowest = slowest.max(t0.elapsed());
            let bad = match &r {
                Err(Failure::Panic) => true,
                Ok(e) => e.texts.iter().map(|x| x.text.len()).sum::<usize>() > limits.max_text,
                Err(_) => false,
            };
            *causes
                .entry(match &r {
                    Ok(_) => "ok",
                    Err(f) => f.name(),
                })
                .or_default() += 1;
            if bad {
                crashes += 1;
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fuzz/crashes")
                    .join(t);
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(dir.join(format!("run-{run}.bin")), &input);
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{t}: {runs} runs in {secs:.1} s ({:.0}/s), {crashes} crashes, slowest {:?}, outcomes {causes:?}",
            runs as f64 / secs,
            slowest
        );
        failed |= crashes > 0;
    }
    // Peak resident memory of the whole run (every target so far): bounded memory shows
    // as a peak near the seeds' size plus the limits, whatever the number of runs.
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    println!("max RSS {hwm}");
    if failed {
        std::process::exit(1);
    }
}

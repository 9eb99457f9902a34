//! Parser tests: every operator, precedence, round trips and error columns.

use super::ast::{Cmp, Expr, Value};
use super::fields::Field;
use super::{Query, QueryError};

fn p(q: &str) -> Expr {
    Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}")).expr
}

fn e(q: &str) -> QueryError {
    match Query::parse(q) {
        Ok(x) => panic!("{q} parsed as {:?}", x.expr),
        Err(e) => e,
    }
}

fn term(f: Field, v: &str) -> Expr {
    Expr::Term {
        field: Some(f),
        value: Value::Word(v.into()),
    }
}

const NETRAPTOR: &str =
    r#"(protocol:http OR protocol:https) AND NOT(url:(":443" ":80")) AND (method:CONNECT)"#;

#[test]
fn netraptor_example_parses_with_its_meaning() {
    let got = p(NETRAPTOR);
    let want = Expr::And(vec![
        Expr::Or(vec![
            term(Field::Protocol, "http"),
            term(Field::Protocol, "https"),
        ]),
        Expr::Not(Box::new(Expr::AnyOf {
            field: Field::Url,
            values: vec![Value::Phrase(":443".into()), Value::Phrase(":80".into())],
        })),
        term(Field::Method, "CONNECT"),
    ]);
    assert_eq!(got, want);
}

#[test]
fn precedence_not_and_or() {
    // a OR b c  ==  a OR (b AND c)
    assert_eq!(
        p("host:a OR host:b host:c"),
        Expr::Or(vec![
            term(Field::Host, "a"),
            Expr::And(vec![term(Field::Host, "b"), term(Field::Host, "c")]),
        ])
    );
    // NOT binds tighter than AND
    assert_eq!(
        p("NOT host:a AND host:b"),
        Expr::And(vec![
            Expr::Not(Box::new(term(Field::Host, "a"))),
            term(Field::Host, "b")
        ])
    );
    // -term is NOT, and implicit AND joins adjacent terms
    assert_eq!(
        p("host:a -host:b"),
        Expr::And(vec![
            term(Field::Host, "a"),
            Expr::Not(Box::new(term(Field::Host, "b")))
        ])
    );
    // parentheses override
    assert_eq!(
        p("(host:a OR host:b) host:c"),
        Expr::And(vec![
            Expr::Or(vec![term(Field::Host, "a"), term(Field::Host, "b")]),
            term(Field::Host, "c"),
        ])
    );
    assert_eq!(p("*"), Expr::All);
    assert_eq!(
        p("NOT(host:a)"),
        Expr::Not(Box::new(term(Field::Host, "a")))
    );
    assert_eq!(
        p("host:a && host:b || host:c"),
        p("host:a AND host:b OR host:c")
    );
}

#[test]
fn values_of_every_form() {
    assert_eq!(
        p("bytes:>100MB"),
        Expr::Term {
            field: Some(Field::Bytes),
            value: Value::Cmp(Cmp::Gt, "100MB".into())
        }
    );
    assert_eq!(
        p("bytes:>=1GiB"),
        Expr::Term {
            field: Some(Field::Bytes),
            value: Value::Cmp(Cmp::Ge, "1GiB".into())
        }
    );
    assert_eq!(
        p("status:[400 TO 499]"),
        Expr::Term {
            field: Some(Field::Status),
            value: Value::Range {
                lo: Some("400".into()),
                hi: Some("499".into()),
                lo_inclusive: true,
                hi_inclusive: true
            }
        }
    );
    assert_eq!(
        p("status:{400 TO 499}"),
        Expr::Term {
            field: Some(Field::Status),
            value: Value::Range {
                lo: Some("400".into()),
                hi: Some("499".into()),
                lo_inclusive: false,
                hi_inclusive: false
            }
        }
    );
    assert_eq!(
        p("time:[2026-11-18T09:00:00+09:00 TO *]"),
        Expr::Term {
            field: Some(Field::Time),
            value: Value::Range {
                lo: Some("2026-11-18T09:00:00+09:00".into()),
                hi: None,
                lo_inclusive: true,
                hi_inclusive: true
            }
        }
    );
    assert_eq!(p("client:10.0.0.0/8"), term(Field::Client, "10.0.0.0/8"));
    assert_eq!(
        p("server:2001:db8::/32"),
        term(Field::Server, "2001:db8::/32")
    );
    assert_eq!(p("host:*.example.co?"), term(Field::Host, "*.example.co?"));
    assert_eq!(
        p(r#"subject:"quarterly \"report\"""#),
        Expr::Term {
            field: Some(Field::Subject),
            value: Value::Phrase("quarterly \"report\"".into())
        }
    );
    assert_eq!(
        p("method:(GET OR POST put)"),
        Expr::AnyOf {
            field: Field::Method,
            values: vec![
                Value::Word("GET".into()),
                Value::Word("POST".into()),
                Value::Word("put".into())
            ]
        }
    );
    // bare terms, including addresses that contain colons
    assert_eq!(
        p("example"),
        Expr::Term {
            field: None,
            value: Value::Word("example".into())
        }
    );
    assert_eq!(
        p("fe80::1"),
        Expr::Term {
            field: None,
            value: Value::Word("fe80::1".into())
        }
    );
    assert_eq!(
        p("\"two words\""),
        Expr::Term {
            field: None,
            value: Value::Phrase("two words".into())
        }
    );
    // field names are case-insensitive
    assert_eq!(p("HOST:a"), term(Field::Host, "a"));
}

#[test]
fn round_trips() {
    for q in [
        NETRAPTOR,
        "*",
        "host:a OR host:b host:c",
        "NOT (host:a OR host:b) AND -port:22",
        "NOT NOT host:a",
        "bytes:>100MB bytes_up:<=5kB packets:<3 bytes_down:>=1GiB",
        "status:[400 TO 499] OR status:{100 TO *] OR status:[* TO 99}",
        "time:[2026-11-18T09:00:00+09:00 TO 2026-11-18T18:00:00+09:00]",
        "client:10.0.0.0/8 AND server:2001:db8::/32 AND ip:192.168.1.1",
        r#"subject:"a \"quoted\" \\ thing" url:(":443" ":80" x)"#,
        r#"url:foo\:bar\ baz\(x\)"#,
        "host:*.example.com? user_agent:curl*",
        "((host:a OR host:b) AND (host:c OR NOT host:d)) OR host:e",
        "fe80::1 OR 10.1.2.3 OR word",
    ] {
        let first = p(q);
        let printed = first.to_string();
        let second = p(&printed);
        assert_eq!(first, second, "{q} printed as {printed}");
        assert_eq!(printed, second.to_string(), "printing is stable for {q}");
    }
}

#[test]
fn errors_point_at_the_column() {
    let x = e("protocol:http AND hots:x");
    assert_eq!(x.column, 19);
    assert!(x.message.contains("unknown field `hots`"), "{}", x.message);
    assert!(
        x.message.contains("subject"),
        "lists valid fields: {}",
        x.message
    );
    // the caret line sits under the column
    let shown = x.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[2].find('^'), Some(2 + 18), "{shown}");

    assert_eq!(e("(host:a").column, 1);
    assert_eq!(e("host:a)").column, 7);
    assert_eq!(e("host:a AND").column, 11);
    assert_eq!(e("OR host:a").column, 1);
    assert_eq!(e("url:\"abc").column, 5);
    assert_eq!(e("status:[400 TO]").column, 8);
    assert_eq!(e("status:[400 TO 499").column, 8);
    let b = e("bytes:>1XB");
    assert_eq!(b.column, 7);
    assert!(b.message.contains("unit"), "{}", b.message);
    assert_eq!(e("client:10.0.0.0/33").column, 8);
    assert_eq!(e("port:http").column, 6);
    assert_eq!(e("time:yesterday").column, 6);
    assert_eq!(e("host:[a TO b]").column, 6);
    assert_eq!(e("host: x").column, 6);
    assert_eq!(e("method:(GET AND POST)").column, 13);
    assert_eq!(e("").column, 1);
    assert_eq!(e("()").column, 1);
    assert_eq!(e("NOT").column, 4);
    // columns count characters, not bytes
    let j = e("subject:件名 AND nope:x");
    assert_eq!(j.column, 16);
}

#[test]
fn hostile_input_is_bounded() {
    let deep = format!("{}host:a{}", "(".repeat(100), ")".repeat(100));
    assert!(e(&deep).message.contains("nests deeper"));
    let nots = format!("{}host:a", "NOT ".repeat(100));
    assert!(e(&nots).message.contains("nests deeper"));
    let long = "a ".repeat(super::MAX_QUERY_LEN);
    assert!(e(&long).message.contains("longer than"));
    let many = (0..300)
        .map(|i| format!("host:h{i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    assert!(e(&many).message.contains("terms"));
    let stars = format!("host:{}", "a*".repeat(40));
    assert!(e(&stars).message.contains("wildcards"));
}

//! What each construct of the language parses to.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use acta_query::{Expr, Field, Outcome, Query, Term, Value, parse};
use common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn empty_and_whitespace_queries_match_everything() {
    assert_eq!(parse("").unwrap(), Query { expr: None });
    assert_eq!(parse("  \t\n ").unwrap(), Query { expr: None });
}

#[test]
fn field_term_with_span() {
    let q = parse("  actor:alice ").unwrap();
    assert_eq!(
        q.expr,
        Some(Expr::Term(Term {
            field: Field::Actor,
            value: Value::Exact("alice".into()),
            span: 2..13,
        }))
    );
}

#[test]
fn arn_keeps_every_colon_after_the_first() {
    let q = "actor:arn:aws:iam::123456789012:user/alice";
    let Expr::Term(t) = expr(q) else {
        panic!("not a term")
    };
    assert_eq!(t.field, Field::Actor);
    assert_eq!(
        t.value,
        Value::Exact("arn:aws:iam::123456789012:user/alice".into())
    );
    assert_eq!(t.span, 0..q.len());
}

#[test]
fn bare_values_take_punctuation() {
    assert_eq!(
        shape("actor:alice@example.com resource:ns/pod-1.x"),
        and(vec![
            actor("alice@example.com"),
            exact(Field::Resource, "ns/pod-1.x")
        ])
    );
    // `(` inside a word is part of it; `)` ends it.
    assert_eq!(shape("action:f(x"), exact(Field::Action, "f(x"));
    assert_eq!(
        shape("(actor:bob)"),
        actor("bob"),
        "`)` ends the value and closes the group"
    );
}

#[test]
fn quoted_values_and_escapes() {
    assert_eq!(shape(r#"actor:"alice smith""#), actor("alice smith"));
    assert_eq!(shape(r#"actor:"a \"b\" c\\d""#), actor(r#"a "b" c\d"#));
    // Other backslashes are kept as written.
    assert_eq!(
        shape(r#"resource:"C:\Users\x""#),
        exact(Field::Resource, r"C:\Users\x")
    );
    // Quoted values are never wildcards, and keep spaces and parentheses.
    assert_eq!(shape(r#"actor:"a*b?""#), actor("a*b?"));
    assert_eq!(shape(r#"action:"f (x)""#), exact(Field::Action, "f (x)"));
    // The span covers the quotes.
    let Expr::And(items) = expr(r#"x actor:"a b" y"#) else {
        panic!()
    };
    let Expr::Term(t) = &items[1] else { panic!() };
    assert_eq!(t.span, 2..13);
}

#[test]
fn free_text() {
    assert_eq!(shape("AccessDenied"), text("AccessDenied"));
    assert_eq!(shape(r#""Access Denied""#), text("Access Denied"));
    assert_eq!(shape(r#""a:b""#), text("a:b"));
    assert_eq!(shape("Access*"), wild(Field::Text, "Access*"));
    assert_eq!(shape("?x"), wild(Field::Text, "?x"));
    // A word that does not start like `name:` is free text even with a colon.
    assert_eq!(shape("12:30"), text("12:30"));
    assert_eq!(shape("::1"), text("::1"));
    // `text:` names free text explicitly.
    assert_eq!(shape("text:a:b"), text("a:b"));
    // Lowercase operators are words.
    assert_eq!(
        shape("a and b or c not d"),
        and(vec![
            text("a"),
            text("and"),
            text("b"),
            text("or"),
            text("c"),
            text("not"),
            text("d")
        ])
    );
    // Words that only start with an operator are words.
    assert_eq!(
        shape("ANDROID ORACLE NOTE"),
        and(vec![text("ANDROID"), text("ORACLE"), text("NOTE")])
    );
}

#[test]
fn wildcards() {
    assert_eq!(shape("actor:ali*"), wild(Field::Actor, "ali*"));
    assert_eq!(shape("action:Get?bject"), wild(Field::Action, "Get?bject"));
    assert_eq!(shape("region:*"), wild(Field::Region, "*"));
}

#[test]
fn every_field_and_alias() {
    for f in Field::ALL {
        if f == Field::Ip || f == Field::Outcome {
            continue;
        }
        let q = format!("{}:v", f.name());
        assert_eq!(shape(&q), exact(f, "v"), "{q}");
    }
    for (alias, f) in [
        ("user", Field::Actor),
        ("operation", Field::Action),
        ("api", Field::Action),
        ("src_ip", Field::Ip),
        ("status", Field::Outcome),
        ("ACTOR", Field::Actor),
        ("Src_IP", Field::Ip),
        ("Status", Field::Outcome),
        ("Text", Field::Text),
    ] {
        assert_eq!(Field::from_name(alias), Some(f), "{alias}");
    }
    assert_eq!(shape("user:bob"), actor("bob"));
    assert_eq!(
        shape("operation:GetObject"),
        exact(Field::Action, "GetObject")
    );
    assert_eq!(shape("api:GetObject"), exact(Field::Action, "GetObject"));
    assert_eq!(
        shape("SRC_IP:1.2.3.4"),
        term(Field::Ip, Value::Ip(ip("1.2.3.4")))
    );
    assert_eq!(
        shape("status:FAILURE"),
        term(Field::Outcome, Value::Outcome(Outcome::Failure))
    );
    assert_eq!(Field::from_name("nope"), None);
}

#[test]
fn field_and_outcome_names() {
    let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        [
            "actor", "action", "resource", "source", "ip", "account", "region", "outcome",
            "service", "text"
        ]
    );
    for f in Field::ALL {
        assert_eq!(Field::from_name(f.name()), Some(f));
    }
    for o in Outcome::ALL {
        assert_eq!(Outcome::from_name(o.name()), Some(o));
        assert_eq!(
            shape(&format!("outcome:{}", o.name().to_uppercase())),
            term(Field::Outcome, Value::Outcome(o))
        );
    }
    assert_eq!(Outcome::Success.name(), "success");
    assert_eq!(Outcome::Other.name(), "other");
    assert_eq!(
        shape(r#"outcome:"unknown""#),
        term(Field::Outcome, Value::Outcome(Outcome::Unknown))
    );
}

#[test]
fn ip_addresses_and_ranges() {
    assert_eq!(
        shape("ip:10.1.2.3"),
        term(Field::Ip, Value::Ip(ip("10.1.2.3")))
    );
    assert_eq!(
        shape("ip:2001:db8::1"),
        term(Field::Ip, Value::Ip(ip("2001:db8::1")))
    );
    assert_eq!(shape("ip:::1"), term(Field::Ip, Value::Ip(ip("::1"))));
    assert_eq!(
        shape("ip:10.0.0.0/8"),
        term(Field::Ip, Value::Cidr(ip("10.0.0.0"), 8))
    );
    // Host bits are cleared.
    assert_eq!(
        shape("ip:10.1.2.3/8"),
        term(Field::Ip, Value::Cidr(ip("10.0.0.0"), 8))
    );
    assert_eq!(
        shape("ip:192.168.77.200/20"),
        term(Field::Ip, Value::Cidr(ip("192.168.64.0"), 20))
    );
    assert_eq!(
        shape("ip:10.1.2.3/32"),
        term(Field::Ip, Value::Cidr(ip("10.1.2.3"), 32))
    );
    assert_eq!(
        shape("ip:10.1.2.3/0"),
        term(Field::Ip, Value::Cidr(ip("0.0.0.0"), 0))
    );
    assert_eq!(
        shape("ip:2001:db8:abcd:12::5/48"),
        term(Field::Ip, Value::Cidr(ip("2001:db8:abcd::"), 48))
    );
    assert_eq!(
        shape("ip:fe80::1/128"),
        term(Field::Ip, Value::Cidr(ip("fe80::1"), 128))
    );
    assert_eq!(shape("ip:::1/0"), term(Field::Ip, Value::Cidr(ip("::"), 0)));
    assert_eq!(
        shape(r#"ip:"10.0.0.1""#),
        term(Field::Ip, Value::Ip(ip("10.0.0.1")))
    );
}

#[test]
fn boolean_operators() {
    assert_eq!(shape("a AND b"), and(vec![text("a"), text("b")]));
    assert_eq!(shape("a b"), and(vec![text("a"), text("b")]));
    assert_eq!(shape("a OR b"), or(vec![text("a"), text("b")]));
    assert_eq!(shape("NOT a"), not(text("a")));
    assert_eq!(shape("-a"), not(text("a")));
    assert_eq!(shape("-actor:bob"), not(actor("bob")));
    assert_eq!(shape("-(a OR b)"), not(or(vec![text("a"), text("b")])));
    assert_eq!(shape("NOT(a OR b)"), not(or(vec![text("a"), text("b")])));
    assert_eq!(shape("(a)OR(b)"), or(vec![text("a"), text("b")]));
    // `-` inside a word or value is not negation.
    assert_eq!(shape("region:eu-west-1"), exact(Field::Region, "eu-west-1"));
    assert_eq!(shape("a-b"), text("a-b"));
    // The span of a negated term leaves the `-` out.
    let Expr::Not(inner) = expr("-actor:bob") else {
        panic!()
    };
    let Expr::Term(t) = *inner else { panic!() };
    assert_eq!(t.span, 1..10);
}

#[test]
fn precedence_not_and_or() {
    assert_eq!(
        shape("a OR b AND c"),
        or(vec![text("a"), and(vec![text("b"), text("c")])])
    );
    assert_eq!(
        shape("a AND b OR c"),
        or(vec![and(vec![text("a"), text("b")]), text("c")])
    );
    assert_eq!(
        shape("a b OR c d"),
        or(vec![
            and(vec![text("a"), text("b")]),
            and(vec![text("c"), text("d")])
        ])
    );
    assert_eq!(shape("NOT a AND b"), and(vec![not(text("a")), text("b")]));
    assert_eq!(shape("NOT a OR b"), or(vec![not(text("a")), text("b")]));
    assert_eq!(
        shape("(a OR b) c"),
        and(vec![or(vec![text("a"), text("b")]), text("c")])
    );
    assert_eq!(shape("a NOT b"), and(vec![text("a"), not(text("b"))]));
}

#[test]
fn flattening_and_single_groups() {
    assert_eq!(
        shape("a AND b AND c"),
        and(vec![text("a"), text("b"), text("c")])
    );
    assert_eq!(
        shape("a OR b OR c"),
        or(vec![text("a"), text("b"), text("c")])
    );
    assert_eq!(
        shape("a AND (b AND c) d"),
        and(vec![text("a"), text("b"), text("c"), text("d")])
    );
    assert_eq!(
        shape("(a OR b) OR (c OR (d))"),
        or(vec![text("a"), text("b"), text("c"), text("d")])
    );
    assert_eq!(shape("(((a)))"), text("a"));
    assert_eq!(shape("((a b))"), and(vec![text("a"), text("b")]));
    // Different kinds are not merged.
    assert_eq!(
        shape("(a OR b) AND (c OR d)"),
        and(vec![
            or(vec![text("a"), text("b")]),
            or(vec![text("c"), text("d")])
        ])
    );
}

#[test]
fn double_negation_cancels() {
    assert_eq!(shape("NOT NOT a"), text("a"));
    assert_eq!(shape("NOT NOT NOT a"), not(text("a")));
    assert_eq!(shape("--a"), text("a"));
    assert_eq!(shape("NOT -a"), text("a"));
    assert_eq!(shape("NOT (NOT a)"), text("a"));
    assert_eq!(shape("-(-(a b))"), and(vec![text("a"), text("b")]));
    let many = "NOT ".repeat(100_001) + "a";
    assert_eq!(shape(&many), not(text("a")));
}

#[test]
fn nesting_up_to_the_limit() {
    let q = format!("{}a{}", "(".repeat(64), ")".repeat(64));
    assert_eq!(shape(&q), text("a"));
    let q = format!("{}a OR b{}", "(NOT ".repeat(64), ")".repeat(64));
    assert!(parse(&q).is_ok());
}

fn ten_thousand(sep: &str) -> String {
    (1..=10_000)
        .map(|i| format!("actor:a{i}"))
        .collect::<Vec<_>>()
        .join(sep)
}

fn assert_flat(e: &Expr, expect_or: bool) {
    let items = match (e, expect_or) {
        (Expr::Or(items), true) | (Expr::And(items), false) => items,
        _ => panic!("wrong shape"),
    };
    assert_eq!(items.len(), 10_000);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(unspanned(item), actor(&format!("a{}", i + 1)));
    }
}

#[test]
fn ten_thousand_terms_or_and_juxtaposed() {
    for (sep, is_or) in [(" OR ", true), (" ", false), (" AND ", false)] {
        let q = ten_thousand(sep);
        let started = Instant::now();
        let parsed = parse(&q).unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(100), "{sep:?}: {took:?}");
        assert_flat(parsed.expr.as_ref().unwrap(), is_or);
        // The canonical form re-parses to the same tree.
        let again = parse(&parsed.to_string()).unwrap();
        assert_eq!(
            unspanned(again.expr.as_ref().unwrap()),
            unspanned(parsed.expr.as_ref().unwrap())
        );
    }
}

#[test]
fn the_largest_accepted_inputs_parse_quickly() {
    // 100,000 terms, under 1 MiB.
    let q = vec!["a"; 100_000].join(" ");
    let started = Instant::now();
    let Expr::And(items) = expr(&q) else { panic!() };
    assert_eq!(items.len(), 100_000);
    assert!(started.elapsed() < Duration::from_secs(2));
    // Nearly 1 MiB of groups, under the term limit.
    let unit = "(alice_x OR NOT bob_yyy) ";
    let q = unit.repeat((1 << 20) / unit.len());
    let started = Instant::now();
    assert!(parse(&q).is_ok());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn canonical_form() {
    for (q, canonical) in [
        ("", ""),
        ("user:Alice", "actor:Alice"),
        ("a b c", "a AND b AND c"),
        ("a OR b c", "a OR b AND c"),
        ("(a OR b) c", "(a OR b) AND c"),
        ("-(a b) OR c", "NOT (a AND b) OR c"),
        ("-(a OR b)", "NOT (a OR b)"),
        (r#"actor:"alice smith""#, r#"actor:"alice smith""#),
        (r#""a:b""#, r#""a:b""#),
        (r#""AND""#, r#""AND""#),
        (r#""-x""#, r#""-x""#),
        (r#"actor:"a*""#, r#"actor:"a*""#),
        (r#"actor:"q\"\\""#, r#"actor:"q\"\\""#),
        ("actor:-x", r#"actor:"-x""#),
        ("ip:10.1.2.3/8", "ip:10.0.0.0/8"),
        ("src_ip:2001:DB8::1", "ip:2001:db8::1"),
        ("status:FAILURE", "outcome:failure"),
        ("ACTION:Get*", "action:Get*"),
        ("text:a:b", r#""a:b""#),
    ] {
        let parsed = parse(q).unwrap();
        assert_eq!(parsed.to_string(), canonical, "{q}");
        let again = parse(canonical).unwrap();
        assert_eq!(
            again.expr.as_ref().map(unspanned),
            parsed.expr.as_ref().map(unspanned),
            "{q}"
        );
    }
}

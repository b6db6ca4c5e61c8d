//! The reference matching rules: `Value::matches` and `wildcard_match`.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use acta_query::{Outcome, Value, wildcard_match};

fn exact(s: &str) -> Value {
    Value::Exact(s.into())
}

fn ip(s: &str) -> Value {
    Value::Ip(s.parse().unwrap())
}

fn cidr(s: &str, bits: u8) -> Value {
    Value::Cidr(s.parse().unwrap(), bits)
}

#[test]
fn exact_is_whole_value_and_case_insensitive() {
    assert!(exact("alice").matches("alice"));
    assert!(exact("Alice").matches("ALICE"));
    assert!(exact("ÉCOLE").matches("école"));
    assert!(!exact("alice").matches("alice2"));
    assert!(!exact("alice").matches("bob alice"));
    assert!(!exact("alice").matches(""));
    assert!(
        exact("a*b").matches("A*B"),
        "an exact value has no wildcards"
    );
    assert!(!exact("a*b").matches("axb"));
}

#[test]
fn wildcards() {
    for (p, t, want) in [
        ("*", "", true),
        ("*", "anything", true),
        ("?", "", false),
        ("?", "x", true),
        ("?", "é", true),
        ("?", "xy", false),
        ("ali*", "alice", true),
        ("ali*", "ALI", true),
        ("ali*", "xalice", false),
        ("*ice", "alice", true),
        ("*ice", "icex", false),
        ("a*c*e", "abcde", true),
        ("a*c*e", "abcd", false),
        ("Get?bject", "getObject", true),
        ("Get?bject", "GetObjects", false),
        ("*:user/*", "arn:aws:iam::1:user/alice", true),
        ("a**b", "ab", true),
        ("*a*a*a*a*b", &"a".repeat(200), false),
        ("", "", true),
        ("", "x", false),
    ] {
        assert_eq!(wildcard_match(p, t), want, "{p:?} vs {t:?}");
        assert_eq!(Value::Wildcard(p.into()).matches(t), want, "{p:?} vs {t:?}");
    }
}

#[test]
fn addresses_and_ranges() {
    assert!(ip("10.1.2.3").matches("10.1.2.3"));
    assert!(!ip("10.1.2.3").matches("10.1.2.4"));
    assert!(!ip("10.1.2.3").matches("not an ip"));
    assert!(ip("2001:db8::1").matches("2001:DB8:0:0::1"));
    assert!(ip("10.1.2.3").matches("::ffff:10.1.2.3"));
    assert!(cidr("10.0.0.0", 8).matches("10.200.3.4"));
    assert!(!cidr("10.0.0.0", 8).matches("11.0.0.1"));
    assert!(cidr("0.0.0.0", 0).matches("203.0.113.9"));
    assert!(!cidr("0.0.0.0", 0).matches("::1"));
    assert!(cidr("10.1.2.3", 32).matches("10.1.2.3"));
    assert!(!cidr("10.1.2.3", 32).matches("10.1.2.2"));
    assert!(cidr("2001:db8::", 32).matches("2001:db8:ffff::9"));
    assert!(!cidr("2001:db8::", 32).matches("2001:db9::9"));
    assert!(cidr("10.0.0.0", 8).matches("::ffff:10.9.9.9"));
}

#[test]
fn outcomes() {
    assert!(Value::Outcome(Outcome::Failure).matches("failure"));
    assert!(Value::Outcome(Outcome::Failure).matches("Failure"));
    assert!(!Value::Outcome(Outcome::Failure).matches("success"));
}

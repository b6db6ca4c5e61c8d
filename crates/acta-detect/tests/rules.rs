//! Rules end to end: each modifier and condition form on small events, and
//! the reasons bad rules are rejected with.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;

use acta_detect::{Event, Rule, RuleSet};
use serde_json::{Value, json};

fn rule(detection: &str) -> Rule {
    let text = format!(
        "title: t\nid: r1\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n{detection}"
    );
    Rule::parse(&text, Path::new("t.yml")).unwrap_or_else(|e| panic!("{e}"))
}

fn hits(detection: &str, event: Value) -> bool {
    rule(detection).matches(&Event::from_json(&event))
}

#[test]
fn plain_values_are_case_insensitive_with_wildcards() {
    let d = "    sel:\n        eventName: 'Delete*Trail'\n    condition: sel\n";
    assert!(hits(d, json!({"eventName": "deleteTRAIL"})));
    assert!(hits(d, json!({"eventName": "DeleteMyTrail"})));
    assert!(!hits(d, json!({"eventName": "DeleteTrails"})));
    assert!(
        !hits(d, json!({"eventname": "DeleteTrail"})),
        "field names are case-sensitive"
    );
    let d = "    sel:\n        code: 403\n        flag: true\n    condition: sel\n";
    assert!(hits(d, json!({"code": 403, "flag": true})));
    assert!(hits(d, json!({"code": "403", "flag": "TRUE"})));
}

#[test]
fn dotted_paths_and_lists() {
    let d = "    sel:\n        userIdentity.arn|endswith: ':root'\n        tags: b\n    condition: sel\n";
    assert!(hits(
        d,
        json!({"userIdentity": {"arn": "arn:aws:iam::1:root"}, "tags": ["a", "B"]})
    ));
    assert!(!hits(
        d,
        json!({"userIdentity": {"arn": "arn:aws:iam::1:root"}, "tags": ["a"]})
    ));
}

#[test]
fn contains_startswith_endswith_all_and_cased() {
    let d = "    sel:\n        ua|contains|all:\n            - curl\n            - linux\n    condition: sel\n";
    assert!(hits(d, json!({"ua": "CURL/8 (Linux)"})));
    assert!(!hits(d, json!({"ua": "curl/8 (Windows)"})));
    let d = "    sel:\n        ua|startswith|cased: Boto\n    condition: sel\n";
    assert!(hits(d, json!({"ua": "Boto3/1"})));
    assert!(!hits(d, json!({"ua": "boto3/1"})));
    let d = "    sel:\n        ua|contains:\n            - a\\*b\n            - zz\n    condition: sel\n";
    assert!(hits(d, json!({"ua": "xa*by"})));
    assert!(!hits(d, json!({"ua": "xaqby"})));
}

#[test]
fn regex_with_flags() {
    let d = "    sel:\n        arn|re: ':assumed-role/aws:.+'\n    condition: sel\n";
    assert!(hits(d, json!({"arn": "arn:aws:sts::1:assumed-role/aws:x"})));
    assert!(
        !hits(d, json!({"arn": "arn:aws:sts::1:ASSUMED-ROLE/aws:x"})),
        "re is case-sensitive"
    );
    let d = "    sel:\n        arn|re|i: ':assumed-role/aws:.+'\n    condition: sel\n";
    assert!(hits(d, json!({"arn": "arn:aws:sts::1:ASSUMED-ROLE/aws:x"})));
    let d = "    sel:\n        m|re|m: '^b$'\n    condition: sel\n";
    assert!(hits(d, json!({"m": "a\nb\nc"})));
}

#[test]
fn cidr_numbers_null_exists_fieldref() {
    let d = "    sel:\n        ip|cidr:\n            - 10.0.0.0/8\n            - 'fd00::/8'\n    condition: sel\n";
    assert!(hits(d, json!({"ip": "10.3.2.1"})));
    assert!(hits(d, json!({"ip": "fd12::1"})));
    assert!(!hits(d, json!({"ip": "11.0.0.1"})));
    assert!(!hits(d, json!({"ip": "AWS Internal"})));
    let d = "    sel:\n        n|gt: 5\n        n|lte: 10\n    condition: sel\n";
    assert!(hits(d, json!({"n": 10})));
    assert!(hits(d, json!({"n": "5.5"})));
    assert!(!hits(d, json!({"n": 5})));
    let d = "    sel:\n        errorCode: null\n    condition: sel\n";
    assert!(hits(d, json!({"errorCode": null})));
    assert!(hits(d, json!({})));
    assert!(!hits(d, json!({"errorCode": "Denied"})));
    let d = "    sel:\n        a|exists: true\n        b|exists: false\n    condition: sel\n";
    assert!(hits(d, json!({"a": null})));
    assert!(!hits(d, json!({"a": 1, "b": 2})));
    let d = "    sel:\n        arn|fieldref|endswith: user\n    condition: sel\n";
    assert!(hits(
        d,
        json!({"arn": "arn:aws:iam::1:user/Alice", "user": "alice"})
    ));
    assert!(!hits(
        d,
        json!({"arn": "arn:aws:iam::1:user/Alice", "user": "bob"})
    ));
    assert!(!hits(d, json!({"arn": "arn:aws:iam::1:user/Alice"})));
}

#[test]
fn encodings() {
    let d = "    sel:\n        cmd|base64offset|contains: /bin/bash\n    condition: sel\n";
    assert!(hits(
        d,
        json!({"cmd": "echo IC9iaW4vYmFzaCAtaQ== | base64 -d"})
    ));
    let d = "    sel:\n        cmd|base64: ping\n    condition: sel\n";
    assert!(hits(d, json!({"cmd": "cGluZw=="})));
    let d = "    sel:\n        cmd|windash|contains: ' -enc '\n    condition: sel\n";
    assert!(hits(d, json!({"cmd": "powershell /enc AAA"})));
    assert!(hits(d, json!({"cmd": "powershell \u{2013}enc AAA"})));
}

#[test]
fn keywords_search_every_string() {
    let d =
        "    keywords:\n        - 'select \\*'\n        - 'drop tab?e'\n    condition: keywords\n";
    assert!(hits(d, json!({"a": {"b": ["x", "DROP TABLE t"]}})));
    assert!(hits(d, json!({"q": "SELECT * FROM t"})));
    assert!(!hits(d, json!({"q": "select a from t"})));
    let r = rule(d);
    assert!(r.matches(&Event::from_record(b"LOG: drop table users")));
    let d =
        "    kw:\n        '|all':\n            - sshd\n            - fatal\n    condition: kw\n";
    assert!(hits(d, json!({"m": "sshd[1]: Fatal: x"})));
    assert!(!hits(d, json!({"m": "sshd[1]: ok"})));
}

#[test]
fn conditions_over_selections() {
    let d = "    selection_a:\n        a: 1\n    selection_b:\n        b: 1\n    filter_x:\n        x: 1\n    condition: 1 of selection_* and not filter_x\n";
    assert!(hits(d, json!({"b": 1})));
    assert!(hits(d, json!({"b": 1, "x": 2})));
    assert!(!hits(d, json!({"b": 1, "x": 1})));
    let d = "    s1:\n        a: 1\n    s2:\n        - b: 1\n        - c: 1\n    condition: all of them\n";
    assert!(hits(d, json!({"a": 1, "c": 1})));
    assert!(!hits(d, json!({"a": 1})));
    let d = "    s1:\n        a: 1\n    s2:\n        b: 1\n    condition:\n        - s1\n        - s2\n";
    assert!(hits(d, json!({"b": 1})));
}

fn rejected(text: &str) -> String {
    Rule::parse(text, Path::new("bad.yml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_rules_are_rejected_with_file_line_and_reason() {
    let head = "title: t\nlogsource:\n    product: aws\ndetection:\n";
    let e = rejected(&format!(
        "{head}    sel:\n        a|shout: x\n    condition: sel\n"
    ));
    assert!(
        e.starts_with("bad.yml:5:") && e.contains("unknown modifier `shout`"),
        "{e}"
    );
    let e = rejected(&format!(
        "{head}    sel:\n        a|re: '(['\n    condition: sel\n"
    ));
    assert!(
        e.starts_with("bad.yml:5:") && e.contains("bad regular expression"),
        "{e}"
    );
    let e = rejected(&format!(
        "{head}    sel:\n        a: x\n    condition: sel and other\n"
    ));
    assert!(e.starts_with("bad.yml:7:") && e.contains("`other`"), "{e}");
    let e = rejected(&format!(
        "{head}    sel:\n        a: x\n    condition: sel | count() > 5\n"
    ));
    assert!(e.contains("condition"), "{e}");
    let e = rejected("title: t\ndetection: [\n  oops: {\n");
    assert!(e.contains("invalid YAML"), "{e}");
    let e = rejected("title: t\nlogsource: {product: aws}\n");
    assert!(e.contains("no `detection`"), "{e}");
    let e = rejected("\u{0}\u{1}not yaml: [");
    assert!(e.starts_with("bad.yml"), "{e}");
}

#[test]
fn rule_sets_load_directories_and_select_by_source() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/ok.yaml"),
        "title: t\nid: ok\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    sel:\n        eventName: StopLogging\n    condition: sel\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.yml"), "title: [").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let loaded = RuleSet::load_dir(dir.path()).unwrap();
    assert_eq!(loaded.rules.rules().len(), 1);
    assert_eq!(loaded.errors.len(), 1);
    assert!(loaded.errors[0].path.ends_with("bad.yml"));
    let record = br#"{"eventName":"StopLogging"}"#;
    let ids: Vec<_> = loaded
        .rules
        .matches_record("cloudtrail", record)
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(ids, ["ok"]);
    assert!(loaded.rules.matches_record("k8s-audit", record).is_empty());
}

/// Directories named twice, or one inside another, load each rule once.
#[test]
fn overlapping_directories_load_each_rule_once() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/sigma");
    let once = acta_detect::RuleSet::load_dir(&root).unwrap();
    let twice =
        acta_detect::RuleSet::load_dirs(&[root.clone(), root.join("cloud"), root.clone()]).unwrap();
    assert!(once.rules.rules().len() > 100);
    assert_eq!(twice.rules.rules().len(), once.rules.rules().len());
    assert_eq!(twice.errors.len(), once.errors.len());
}

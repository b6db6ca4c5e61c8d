//! Correlation rules end to end: each type firing and not on constructed
//! event streams, windows, groups, chains, limits, the rewritten rules of
//! `rules/sigma-correlation`, and the reasons bad correlations are rejected
//! with.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use acta_detect::{CorrelationType, Correlator, Event, Hit, Limits, RuleSet};
use serde_json::{Value, json};

const MIN: i64 = 60_000;

/// A rule set from one file's text, which must load without errors.
fn set(text: &str) -> RuleSet {
    let loaded = RuleSet::from_texts([(Path::new("c.yml"), text)]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.rules
}

/// The errors of loading these files.
fn load_errors(files: &[(&str, &str)]) -> Vec<String> {
    let loaded = RuleSet::from_texts(files.iter().map(|(p, t)| (Path::new(*p), *t)));
    loaded.errors.iter().map(ToString::to_string).collect()
}

/// Feeds (time, event) in order, then finishes the stream; every hit.
fn run(rules: &RuleSet, source: &str, events: &[(i64, Value)]) -> Vec<Hit> {
    let mut correlator = rules.correlator();
    run_with(rules, &mut correlator, source, events)
}

fn run_with(
    rules: &RuleSet,
    correlator: &mut Correlator,
    source: &str,
    events: &[(i64, Value)],
) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, (time, record)) in events.iter().enumerate() {
        let event = Event::from_json(record);
        let detection = rules.detect(correlator, source, &event, *time, i as u64);
        hits.extend(detection.correlations);
    }
    hits.extend(correlator.finish());
    hits
}

fn call(name: &str, arn: &str) -> Value {
    json!({"eventName": name, "eventSource": "iam.amazonaws.com", "userIdentity": {"arn": arn}})
}

const ALICE: &str = "arn:aws:iam::1:user/alice";
const BOB: &str = "arn:aws:iam::1:user/bob";

fn base(name: &str, event_name: &str) -> String {
    format!(
        "title: {name}\nid: {name}-id\nname: {name}\nlogsource:\n    product: aws\n    service: cloudtrail\ndetection:\n    sel:\n        eventName: '{event_name}'\n    condition: sel\n"
    )
}

fn event_count(condition: &str, timespan: &str) -> RuleSet {
    set(&format!(
        "title: many deletes\nid: many-deletes\nlevel: high\ncorrelation:\n    type: event_count\n    rules:\n        - delete\n    group-by:\n        - userIdentity.arn\n    timespan: {timespan}\n    condition:\n{condition}---\n{}",
        base("delete", "Delete*")
    ))
}

#[test]
fn event_count_fires_at_the_threshold_within_the_timespan() {
    let rules = event_count("        gte: 5\n", "10m");
    let burst: Vec<_> = (0..5)
        .map(|i| (i * MIN, call("DeleteBucket", ALICE)))
        .collect();
    let hits = run(&rules, "cloudtrail", &burst);
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(
        (hit.id.as_str(), hit.title.as_str(), hit.level.as_deref()),
        ("many-deletes", "many deletes", Some("high"))
    );
    assert_eq!(hit.kind, CorrelationType::EventCount);
    assert_eq!(
        hit.group,
        [("userIdentity.arn".to_owned(), Some(ALICE.to_owned()))]
    );
    assert_eq!((hit.start_ms, hit.end_ms, hit.count), (0, 4 * MIN, 5));
    assert_eq!(hit.references, [0, 1, 2, 3, 4]);
    assert!(run(&rules, "cloudtrail", &burst[..4]).is_empty());
    // Calls the base rule does not match are not counted.
    let mut mixed = burst[..4].to_vec();
    mixed.push((4 * MIN, call("GetBucket", ALICE)));
    assert!(run(&rules, "cloudtrail", &mixed).is_empty());
    // Nor records of another source.
    assert!(run(&rules, "k8s-audit", &burst).is_empty());
}

#[test]
fn event_count_windows_slide() {
    let rules = event_count("        gte: 5\n", "10m");
    // Five calls three minutes apart span twelve minutes: never five within ten.
    let spread: Vec<_> = (0..5)
        .map(|i| (i * 3 * MIN, call("DeleteBucket", ALICE)))
        .collect();
    assert!(run(&rules, "cloudtrail", &spread).is_empty());
    // One more call closes the gap: minutes 3 to 13 hold five calls.
    let mut more = spread;
    more.push((13 * MIN, call("DeleteBucket", ALICE)));
    let hits = run(&rules, "cloudtrail", &more);
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].start_ms, hits[0].end_ms), (3 * MIN, 13 * MIN));
    assert_eq!(hits[0].references, [1, 2, 3, 4, 5]);
    // The timespan is inclusive: exactly ten minutes from first to last counts.
    let edge: Vec<_> = [0, 1, 2, 3, 10]
        .iter()
        .map(|m| (m * MIN, call("DeleteBucket", ALICE)))
        .collect();
    assert_eq!(run(&rules, "cloudtrail", &edge).len(), 1);
    let past: Vec<_> = [0, 1, 2, 3]
        .iter()
        .map(|m| (m * MIN, call("DeleteBucket", ALICE)))
        .chain([(10 * MIN + 1, call("DeleteBucket", ALICE))])
        .collect();
    assert!(run(&rules, "cloudtrail", &past).is_empty());
}

#[test]
fn event_count_groups_are_separate() {
    let rules = event_count("        gt: 3\n", "1h");
    let interleaved: Vec<_> = (0..6)
        .map(|i| {
            let who = if i % 2 == 0 { ALICE } else { BOB };
            (i * MIN, call("DeleteBucket", who))
        })
        .collect();
    assert!(
        run(&rules, "cloudtrail", &interleaved).is_empty(),
        "three each is not more than three"
    );
    let mut more = interleaved;
    more.push((7 * MIN, call("DeleteUser", BOB)));
    let hits = run(&rules, "cloudtrail", &more);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].group[0].1.as_deref(), Some(BOB));
    assert_eq!(hits[0].references, [1, 3, 5, 6]);
    // Events lacking the field form a group of their own.
    let anonymous: Vec<_> = (0..4)
        .map(|i| (i * MIN, json!({"eventName": "DeleteBucket"})))
        .collect();
    let hits = run(&rules, "cloudtrail", &anonymous);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].group, [("userIdentity.arn".to_owned(), None)]);
}

#[test]
fn one_burst_gives_one_hit() {
    let rules = event_count("        gte: 10\n", "10m");
    let burst: Vec<_> = (0..60)
        .map(|i| (i * 1000, call("DeleteBucket", ALICE)))
        .collect();
    let hits = run(&rules, "cloudtrail", &burst);
    assert_eq!(hits.len(), 1, "sixty calls in a minute are one burst");
    assert_eq!(hits[0].references, (0..10).collect::<Vec<u64>>());
    // Activity that goes on fires again once a timespan has passed since
    // the hit, on the calls that followed it.
    let ongoing: Vec<_> = (0..60)
        .map(|i| (i * 20_000, call("DeleteBucket", ALICE)))
        .collect();
    let hits = run(&rules, "cloudtrail", &ongoing);
    let ends: Vec<_> = hits.iter().map(|h| h.end_ms / 1000).collect();
    assert_eq!(ends, [180, 800], "calls every 20 s for 20 minutes");
    assert_eq!(hits[1].count, 31, "the calls since the first hit");
    assert_eq!(hits[1].references, (10..41).collect::<Vec<u64>>());
    // Another identity is not kept quiet by alice's hit.
    let mut both = burst;
    both.extend((0..10).map(|i| (70_000 + i * 1000, call("DeleteBucket", BOB))));
    assert_eq!(run(&rules, "cloudtrail", &both).len(), 2);
}

#[test]
fn temporal_types_stay_quiet_after_a_hit() {
    for kind in ["temporal", "temporal_ordered"] {
        let rules = temporal(kind, "");
        let twice = steps(&[
            ("ListUsers", 0, ALICE),
            ("AttachUserPolicy", 1, ALICE),
            ("CreateAccessKey", 2, ALICE),
            ("ListUsers", 3, ALICE),
            ("AttachUserPolicy", 4, ALICE),
            ("CreateAccessKey", 5, ALICE),
            ("ListUsers", 8, ALICE),
            ("AttachUserPolicy", 9, ALICE),
            ("CreateAccessKey", 10, ALICE),
        ]);
        let hits = run(&rules, "cloudtrail", &twice);
        let refs: Vec<_> = hits.iter().map(|h| h.references.clone()).collect();
        // The second set completed while quiet: in any order, the steps of
        // minutes 4, 5 and 8 are a set again once the quiet is over; in
        // order, a sequence must start afresh.
        let second = if kind == "temporal" {
            vec![4, 5, 6]
        } else {
            vec![6, 7, 8]
        };
        assert_eq!(refs, [vec![0, 1, 2], second], "{kind}");
    }
}

#[test]
fn references_are_bounded() {
    let rules = event_count("        gte: 150\n", "1h");
    let burst: Vec<_> = (0..150)
        .map(|i| (i * 1000, call("DeleteBucket", ALICE)))
        .collect();
    let hits = run(&rules, "cloudtrail", &burst);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 150);
    assert_eq!(hits[0].references.len(), acta_detect::MAX_REFERENCES);
    assert_eq!(hits[0].references, (50..150).collect::<Vec<u64>>());
}

#[test]
fn large_thresholds_keep_bounded_runs() {
    let rules = event_count("        gte: 5000\n", "1h");
    let burst: Vec<_> = (0..5000)
        .map(|i| (i * 700, call("DeleteBucket", ALICE)))
        .collect();
    let hits = run(&rules, "cloudtrail", &burst);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 5000);
    let spread: Vec<_> = (0..5000)
        .map(|i| (i * 800, call("DeleteBucket", ALICE)))
        .collect();
    assert!(
        run(&rules, "cloudtrail", &spread).is_empty(),
        "5000 calls over 66 minutes"
    );
}

#[test]
fn late_events_count_within_the_timespan_only() {
    let rules = event_count("        gte: 3\n", "10m");
    let stream = [
        (20 * MIN, call("DeleteBucket", ALICE)),
        (12 * MIN, call("DeleteBucket", ALICE)),
        (5 * MIN, call("DeleteBucket", ALICE)),
        (15 * MIN, call("DeleteBucket", ALICE)),
    ];
    let mut correlator = rules.correlator();
    let hits = run_with(&rules, &mut correlator, "cloudtrail", &stream);
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].start_ms, hits[0].end_ms), (12 * MIN, 20 * MIN));
    assert_eq!(hits[0].references, [1, 3, 0]);
    assert_eq!(
        correlator.stats().late,
        1,
        "minute 5 is more than 10 before 20"
    );
}

fn value_count(condition: &str) -> RuleSet {
    set(&format!(
        "title: spray\nid: spray\ncorrelation:\n    type: value_count\n    rules: failed\n    group-by: src\n    timespan: 1h\n    condition:\n        field: user\n{condition}---\ntitle: failed\nid: failed\nlogsource:\n    product: linux\ndetection:\n    sel:\n        outcome: failure\n    condition: sel\n"
    ))
}

fn login(src: &str, user: Option<&str>) -> Value {
    match user {
        Some(user) => json!({"outcome": "failure", "src": src, "user": user}),
        None => json!({"outcome": "failure", "src": src}),
    }
}

#[test]
fn value_count_counts_distinct_values() {
    let rules = value_count("        gt: 3\n");
    let same_user: Vec<_> = (0..10)
        .map(|i| (i * MIN, login("10.0.0.9", Some("root"))))
        .collect();
    assert!(run(&rules, "syslog", &same_user).is_empty());
    let users = ["root", "admin", "root", "oracle", "admin", "postgres"];
    let spray: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (i as i64 * MIN, login("10.0.0.9", Some(u))))
        .collect();
    let hits = run(&rules, "syslog", &spray);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 4);
    assert_eq!(hits[0].end_ms, 5 * MIN);
    assert_eq!(
        hits[0].group,
        [("src".to_owned(), Some("10.0.0.9".to_owned()))]
    );
    assert_eq!(hits[0].references, [0, 1, 2, 3, 4, 5]);
    // Four users from two sources, and events without the field, do not fire.
    let split = [
        (0, login("10.0.0.1", Some("a"))),
        (MIN, login("10.0.0.1", Some("b"))),
        (2 * MIN, login("10.0.0.2", Some("c"))),
        (3 * MIN, login("10.0.0.2", Some("d"))),
        (4 * MIN, login("10.0.0.1", None)),
        (5 * MIN, login("10.0.0.1", None)),
    ];
    assert!(run(&rules, "syslog", &split).is_empty());
    // Distinct values must fall in the timespan.
    let slow: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .enumerate()
        .map(|(i, u)| (i as i64 * 30 * MIN, login("10.0.0.1", Some(u))))
        .collect();
    assert!(run(&rules, "syslog", &slow).is_empty());
}

#[test]
fn upper_bounds_are_decided_when_the_window_closes() {
    // Between two and three distinct users from a source in an hour.
    let rules = value_count("        gte: 2\n        lte: 3\n");
    let stream = [
        (0, login("a", Some("u1"))),
        (MIN, login("a", Some("u2"))),
        (2 * MIN, login("b", Some("u1"))),
        (3 * MIN, login("b", Some("u2"))),
        (4 * MIN, login("b", Some("u3"))),
        (5 * MIN, login("b", Some("u4"))),
        (6 * MIN, login("c", Some("u1"))),
    ];
    let mut correlator = rules.correlator();
    let mut open = Vec::new();
    for (i, (time, record)) in stream.iter().enumerate() {
        let event = Event::from_json(record);
        open.extend(
            rules
                .detect(&mut correlator, "syslog", &event, *time, i as u64)
                .correlations,
        );
    }
    assert!(open.is_empty(), "nothing is decided while windows are open");
    // Source `a`'s window (minutes 0 to 60) closes once the clock passes it.
    let hits = correlator.advance(61 * MIN);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].group[0].1.as_deref(), Some("a"));
    assert_eq!(
        (hits[0].count, hits[0].start_ms, hits[0].end_ms),
        (2, 0, MIN)
    );
    assert_eq!(hits[0].references, [0, 1]);
    // `b` had four users, `c` one: neither fires.
    assert!(correlator.advance(120 * MIN).is_empty());
    assert_eq!(correlator.stats().groups, 0);

    // Fewer than three deletes in ten minutes, decided at the end of the stream.
    let rules = event_count("        lt: 3\n", "10m");
    let stream = [
        (0, call("DeleteBucket", ALICE)),
        (MIN, call("DeleteBucket", BOB)),
        (2 * MIN, call("DeleteBucket", BOB)),
        (3 * MIN, call("DeleteBucket", BOB)),
        (20 * MIN, call("DeleteBucket", BOB)),
    ];
    let hits = run(&rules, "cloudtrail", &stream);
    let summary: Vec<_> = hits
        .iter()
        .map(|h| (h.group[0].1.clone().unwrap(), h.count, h.references.clone()))
        .collect();
    assert_eq!(
        summary,
        [(ALICE.to_owned(), 1, vec![0]), (BOB.to_owned(), 1, vec![4])],
        "bob's three deletes in minutes 1 to 3 are not fewer than three"
    );
    let rules = event_count("        eq: 2\n", "10m");
    let hits = run(&rules, "cloudtrail", &stream);
    assert!(hits.is_empty(), "{hits:?}");
}

fn temporal(kind: &str, extra: &str) -> RuleSet {
    set(&format!(
        "title: recon then escalation\nid: seq\ncorrelation:\n    type: {kind}\n    rules:\n        - recon\n        - escalate\n        - persist\n    group-by:\n        - userIdentity.arn\n    timespan: 5m\n{extra}---\n{}---\n{}---\n{}",
        base("recon", "ListUsers"),
        base("escalate", "AttachUserPolicy"),
        base("persist", "CreateAccessKey")
    ))
}

fn steps(names: &[(&str, i64, &str)]) -> Vec<(i64, Value)> {
    names
        .iter()
        .map(|(name, minute, who)| (minute * MIN, call(name, who)))
        .collect()
}

#[test]
fn temporal_needs_every_rule_in_any_order() {
    let rules = temporal("temporal", "");
    let any_order = steps(&[
        ("CreateAccessKey", 0, ALICE),
        ("ListUsers", 1, ALICE),
        ("AttachUserPolicy", 2, ALICE),
    ]);
    let hits = run(&rules, "cloudtrail", &any_order);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, CorrelationType::Temporal);
    assert_eq!(
        (hits[0].count, hits[0].start_ms, hits[0].end_ms),
        (3, 0, 2 * MIN)
    );
    assert_eq!(hits[0].references, [0, 1, 2]);
    let missing = steps(&[
        ("CreateAccessKey", 0, ALICE),
        ("ListUsers", 1, ALICE),
        ("ListUsers", 2, ALICE),
    ]);
    assert!(run(&rules, "cloudtrail", &missing).is_empty());
    let too_slow = steps(&[
        ("CreateAccessKey", 0, ALICE),
        ("ListUsers", 3, ALICE),
        ("AttachUserPolicy", 6, ALICE),
    ]);
    assert!(run(&rules, "cloudtrail", &too_slow).is_empty());
    let two_people = steps(&[
        ("CreateAccessKey", 0, ALICE),
        ("ListUsers", 1, BOB),
        ("AttachUserPolicy", 2, ALICE),
    ]);
    assert!(run(&rules, "cloudtrail", &two_people).is_empty());
    // A repeat of a rule within the timespan moves its time forward.
    let refreshed = steps(&[
        ("CreateAccessKey", 0, ALICE),
        ("ListUsers", 3, ALICE),
        ("CreateAccessKey", 4, ALICE),
        ("AttachUserPolicy", 7, ALICE),
    ]);
    let hits = run(&rules, "cloudtrail", &refreshed);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].references, [1, 2, 3]);
    assert_eq!((hits[0].start_ms, hits[0].end_ms), (3 * MIN, 7 * MIN));
}

#[test]
fn temporal_conditions_count_rules() {
    let rules = temporal("temporal", "    condition:\n        gte: 2\n");
    let two = steps(&[("CreateAccessKey", 0, ALICE), ("ListUsers", 1, ALICE)]);
    let hits = run(&rules, "cloudtrail", &two);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 2);
    let same_twice = steps(&[("ListUsers", 0, ALICE), ("ListUsers", 1, ALICE)]);
    assert!(run(&rules, "cloudtrail", &same_twice).is_empty());
    // Exactly one kind of step in the timespan, decided when the window closes.
    let rules = temporal("temporal", "    condition:\n        eq: 1\n");
    let hits = run(&rules, "cloudtrail", &same_twice);
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].count, hits[0].references.clone()), (1, vec![0, 1]));
    assert!(run(&rules, "cloudtrail", &two).is_empty());
}

#[test]
fn temporal_ordered_needs_the_listed_order() {
    let rules = temporal("temporal_ordered", "");
    let in_order = steps(&[
        ("ListUsers", 0, ALICE),
        ("AttachUserPolicy", 1, ALICE),
        ("CreateAccessKey", 2, ALICE),
    ]);
    let hits = run(&rules, "cloudtrail", &in_order);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].kind, CorrelationType::TemporalOrdered);
    assert_eq!(hits[0].references, [0, 1, 2]);
    let reversed = steps(&[
        ("CreateAccessKey", 0, ALICE),
        ("AttachUserPolicy", 1, ALICE),
        ("ListUsers", 2, ALICE),
    ]);
    assert!(run(&rules, "cloudtrail", &reversed).is_empty());
    let swapped = steps(&[
        ("ListUsers", 0, ALICE),
        ("CreateAccessKey", 1, ALICE),
        ("AttachUserPolicy", 2, ALICE),
    ]);
    assert!(run(&rules, "cloudtrail", &swapped).is_empty());
    // Noise between the steps does not matter; a later start is found.
    let noisy = steps(&[
        ("ListUsers", 0, ALICE),
        ("CreateAccessKey", 1, ALICE),
        ("ListUsers", 4, ALICE),
        ("AttachUserPolicy", 6, ALICE),
        ("CreateAccessKey", 8, ALICE),
    ]);
    let hits = run(&rules, "cloudtrail", &noisy);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].references, [2, 3, 4]);
    assert_eq!((hits[0].start_ms, hits[0].end_ms), (4 * MIN, 8 * MIN));
    let too_slow = steps(&[
        ("ListUsers", 0, ALICE),
        ("AttachUserPolicy", 3, ALICE),
        ("CreateAccessKey", 6, ALICE),
    ]);
    assert!(run(&rules, "cloudtrail", &too_slow).is_empty());
    let two_people = steps(&[
        ("ListUsers", 0, ALICE),
        ("AttachUserPolicy", 1, BOB),
        ("CreateAccessKey", 2, ALICE),
    ]);
    assert!(run(&rules, "cloudtrail", &two_people).is_empty());
}

#[test]
fn temporal_ordered_sequences_may_repeat_a_rule() {
    let rules = set(&format!(
        "title: twice then once\nid: ttt\ncorrelation:\n    type: temporal_ordered\n    rules: [fail, fail, ok]\n    timespan: 5m\n---\n{}---\n{}",
        base("fail", "ConsoleLoginFailure"),
        base("ok", "ConsoleLogin")
    ));
    let once = steps(&[
        ("ConsoleLoginFailure", 0, ALICE),
        ("ConsoleLogin", 1, ALICE),
    ]);
    assert!(
        run(&rules, "cloudtrail", &once).is_empty(),
        "one failure cannot fill two places"
    );
    let twice = steps(&[
        ("ConsoleLoginFailure", 0, ALICE),
        ("ConsoleLoginFailure", 1, ALICE),
        ("ConsoleLogin", 2, ALICE),
    ]);
    assert_eq!(run(&rules, "cloudtrail", &twice).len(), 1);
}

const CHAIN: &str = "title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 3
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: github
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: github
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
";

#[test]
fn correlations_chain() {
    let rules = set(CHAIN);
    assert_eq!(rules.correlations().len(), 2);
    // Each correlation comes after the ones it refers to, with ids for names.
    assert_eq!(
        rules.correlations()[0].id,
        "a8418a5a-5fc4-46b5-b23b-6c73beb19d41"
    );
    assert_eq!(
        rules.correlations()[1].rules,
        [
            "a8418a5a-5fc4-46b5-b23b-6c73beb19d41",
            "4d0a2c83-c62c-4ed4-b475-c7e23a9269b8"
        ]
    );
    assert!(!rules.correlations()[0].alerts());
    assert!(rules.correlations()[1].alerts());
    let login = |id: u32, user: &str| json!({"EventID": id, "User": user});
    let stream = [
        (0, login(4625, "bob")),
        (MIN, login(4625, "bob")),
        (2 * MIN, login(4625, "bob")),
        (3 * MIN, login(4624, "alice")),
        (4 * MIN, login(4624, "bob")),
    ];
    let hits = run(&rules, "github-audit", &stream);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].id, "b180ead8-d58f-40b2-ae54-c8940995b9b6");
    assert_eq!(hits[0].group, [("User".to_owned(), Some("bob".to_owned()))]);
    assert_eq!(hits[0].references, [0, 1, 2, 4]);
    assert_eq!((hits[0].start_ms, hits[0].end_ms), (2 * MIN, 4 * MIN));
    // Two failures are not "multiple"; a success before the failures is not after them.
    assert!(
        run(
            &rules,
            "github-audit",
            &[stream[0].clone(), stream[1].clone(), stream[4].clone()]
        )
        .is_empty()
    );
    let before = [
        (0, login(4624, "bob")),
        (MIN, login(4625, "bob")),
        (2 * MIN, login(4625, "bob")),
        (3 * MIN, login(4625, "bob")),
    ];
    assert!(run(&rules, "github-audit", &before).is_empty());
}

#[test]
fn referenced_rules_alert_only_with_generate() {
    let text = |top: &str, inner: &str| {
        format!(
            "title: c\nid: c\n{top}correlation:\n{inner}    type: event_count\n    rules: delete\n    timespan: 1m\n    condition:\n        gte: 2\n---\n{}---\n{}",
            base("delete", "Delete*"),
            base("stop", "StopLogging")
        )
    };
    let rules = set(&text("", ""));
    let delete = Event::from_json(&call("DeleteTrail", ALICE));
    let ids = |set: &RuleSet, all: bool| -> Vec<String> {
        let rules: Vec<_> = if all {
            set.matches_all("cloudtrail", &delete).collect()
        } else {
            set.matches("cloudtrail", &delete).collect()
        };
        rules.iter().map(|r| r.id.clone()).collect()
    };
    assert_eq!(ids(&rules, false), Vec::<String>::new());
    assert_eq!(ids(&rules, true), ["delete-id"]);
    assert!(!rules.rules()[0].alerts());
    // Rules of the file that no correlation refers to alert on their own.
    let stop = rules.matches_record("cloudtrail", br#"{"eventName":"StopLogging"}"#);
    assert_eq!(stop.len(), 1);
    assert!(stop[0].alerts());
    // `generate: true`, at the top as the specification has it or in the
    // correlation section as pySigma reads it.
    for (top, inner) in [("generate: true\n", ""), ("", "    generate: true\n")] {
        let rules = set(&text(top, inner));
        assert_eq!(ids(&rules, false), ["delete-id"], "{top}{inner}");
    }
    // `detect` gives the alerting rules and the hits.
    let mut correlator = rules.correlator();
    let first = rules.detect(&mut correlator, "cloudtrail", &delete, 0, 7);
    assert!(first.rules.is_empty() && first.correlations.is_empty());
    let second = rules.detect(&mut correlator, "cloudtrail", &delete, 1000, 8);
    assert!(second.rules.is_empty());
    assert_eq!(second.correlations.len(), 1);
    assert_eq!(second.correlations[0].references, [7, 8]);
}

#[test]
fn references_resolve_across_files_by_id_and_name() {
    let a = base("remote", "DeleteTrail");
    let b = "title: c\nid: c\ncorrelation:\n    type: temporal\n    rules:\n        - remote-id\n        - local\n    timespan: 1m\n---\ntitle: local\nname: local\nlogsource:\n    product: aws\ndetection:\n    sel:\n        eventName: StopLogging\n    condition: sel\n";
    let loaded = RuleSet::from_texts([(Path::new("a.yml"), a.as_str()), (Path::new("b.yml"), b)]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let c = &loaded.rules.correlations()[0];
    assert_eq!(
        c.rules,
        ["remote-id", "b.yml#2"],
        "a rule without id is named by file and document"
    );
    // A name defined in the correlation's own file wins over other files'.
    let other = base("local", "Nothing");
    let loaded = RuleSet::from_texts([
        (Path::new("a.yml"), a.as_str()),
        (Path::new("b.yml"), b),
        (Path::new("c.yml"), other.as_str()),
    ]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.rules.correlations()[0].rules[1], "b.yml#2");
}

#[test]
fn aliases_name_fields_per_rule() {
    let rules = set(&format!(
        "title: error then connection\nid: ec\ncorrelation:\n    type: temporal\n    rules:\n        - internal_error\n        - new_connection\n    group-by:\n        - internal_ip\n    timespan: 10s\n    aliases:\n        internal_ip:\n            internal_error: destination.ip\n            new_connection: source.ip\n---\n{}---\n{}",
        base("internal_error", "Error"),
        base("new_connection", "Connect")
    ));
    let stream = [
        (
            0,
            json!({"eventName": "Error", "destination": {"ip": "10.0.0.1"}}),
        ),
        (
            1000,
            json!({"eventName": "Connect", "source": {"ip": "10.0.0.2"}}),
        ),
        (
            2000,
            json!({"eventName": "Connect", "source": {"ip": "10.0.0.1"}}),
        ),
    ];
    let hits = run(&rules, "cloudtrail", &stream);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].group,
        [("internal_ip".to_owned(), Some("10.0.0.1".to_owned()))]
    );
    assert_eq!(hits[0].references, [0, 2]);
}

#[test]
fn groups_are_capped() {
    let rules = event_count("        gte: 2\n", "1h");
    let mut correlator = Correlator::new(rules.correlations(), Limits { max_groups: 16 });
    for i in 0..100u64 {
        let who = format!("arn:aws:iam::1:user/u{i}");
        let event = Event::from_json(&call("DeleteBucket", &who));
        let hits = rules.detect(&mut correlator, "cloudtrail", &event, i as i64 * 1000, i);
        assert!(hits.correlations.is_empty());
        assert!(correlator.stats().groups <= 16);
    }
    assert!(correlator.stats().evicted >= 84, "{:?}", correlator.stats());
    // The most recent groups are kept: u99's second call fires, u0's does not.
    for (i, who) in [(100, "u99"), (101, "u0")] {
        let event = Event::from_json(&call("DeleteBucket", &format!("arn:aws:iam::1:user/{who}")));
        let hits = rules.detect(&mut correlator, "cloudtrail", &event, i * 1000, i as u64);
        assert_eq!(hits.correlations.len(), usize::from(who == "u99"), "{who}");
    }
    // Groups whose events aged out go first, with nothing lost.
    let mut correlator = Correlator::new(rules.correlations(), Limits { max_groups: 16 });
    for i in 0..100i64 {
        let who = format!("arn:aws:iam::1:user/u{i}");
        let event = Event::from_json(&call("DeleteBucket", &who));
        rules.detect(
            &mut correlator,
            "cloudtrail",
            &event,
            i * 2 * 3_600_000,
            i as u64,
        );
    }
    assert_eq!(correlator.stats().evicted, 0);
}

#[test]
fn correlators_are_deterministic() {
    let rules = set(CHAIN);
    let stream: Vec<_> = (0..400i64)
        .map(|i| {
            let id = if i % 7 == 0 { 4624 } else { 4625 };
            let user = format!("u{}", i % 5);
            (
                i * 20_000 + (i % 3) * 1000,
                json!({"EventID": id, "User": user}),
            )
        })
        .collect();
    let first = run(&rules, "github-audit", &stream);
    assert!(!first.is_empty());
    assert_eq!(first, run(&rules, "github-audit", &stream));
}

#[test]
fn any_times_are_safe() {
    let times = [
        i64::MIN,
        i64::MAX,
        0,
        -1,
        i64::MIN + 1,
        i64::MAX - 1,
        1_700_000_000_000,
        -5 * MIN,
    ];
    let sets = [
        event_count("        gte: 2\n", "1d"),
        event_count("        lt: 3\n", "1s"),
        event_count("        gte: 2000\n", "1d"),
        value_count("        gt: 1\n"),
        value_count("        eq: 2\n"),
        temporal("temporal", ""),
        temporal("temporal", "    condition:\n        lt: 2\n"),
        temporal("temporal_ordered", ""),
        set(CHAIN),
    ];
    let records = [
        call("DeleteBucket", ALICE),
        call("ListUsers", ALICE),
        call("AttachUserPolicy", ALICE),
        call("CreateAccessKey", ALICE),
        login("a", Some("u")),
        login("a", Some("v")),
        json!({"EventID": 4625, "User": "x"}),
        json!({"EventID": 4624, "User": "x"}),
    ];
    for rules in &sets {
        for rotate in 0..times.len() {
            let stream: Vec<_> = (0..64)
                .map(|i| {
                    (
                        times[(i + rotate) % times.len()],
                        records[(i * 3 + rotate) % records.len()].clone(),
                    )
                })
                .collect();
            for source in ["cloudtrail", "syslog", "github-audit"] {
                run(rules, source, &stream);
            }
        }
    }
}

// The rewritten rules of `rules/sigma-correlation`.

fn repo_rules() -> RuleSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/sigma-correlation");
    let loaded = RuleSet::load_dir(&dir).unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.rules
}

#[test]
fn the_rewritten_rules_load() {
    let rules = repo_rules();
    assert_eq!(rules.correlations().len(), 10);
    assert!(rules.correlations().iter().all(|c| c.alerts()));
    assert!(
        rules.rules().iter().all(|r| !r.alerts()),
        "base rules only feed"
    );
    assert!(rules.correlations().iter().all(|c| c.level.is_some()));
}

fn listing_ids(rules: &RuleSet, events: &[(i64, Value)]) -> Vec<Hit> {
    run(rules, "cloudtrail", events)
        .into_iter()
        .filter(|h| h.id == "e9c14b23-47e2-4a8b-8a63-d36618e33d70")
        .collect()
}

fn list_calls(n: i64, every_ms: i64, arn: &str) -> Vec<(i64, Value)> {
    (0..n)
        .map(|i| {
            let name = ["ListBuckets", "ListUsers", "ListRoles"][(i % 3) as usize];
            (
                1_700_000_000_000 + i * every_ms,
                json!({"eventName": name, "eventSource": "iam.amazonaws.com", "userIdentity": {"arn": arn, "type": "IAMUser"}}),
            )
        })
        .collect()
}

#[test]
fn account_enumeration_fires_on_51_list_calls_in_ten_minutes() {
    let rules = repo_rules();
    let hits = listing_ids(&rules, &list_calls(51, 10_000, ALICE));
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].title, "Account Enumeration on AWS");
    assert_eq!(hits[0].level.as_deref(), Some("low"));
    assert_eq!(hits[0].count, 51);
    assert_eq!(
        hits[0].group,
        [("userIdentity.arn".to_owned(), Some(ALICE.to_owned()))]
    );
    assert_eq!(hits[0].references, (0..51).collect::<Vec<u64>>());
    assert!(listing_ids(&rules, &list_calls(50, 10_000, ALICE)).is_empty());
    // 51 calls spread over an hour are never 51 within ten minutes.
    assert!(listing_ids(&rules, &list_calls(51, 72_000, ALICE)).is_empty());
    // Two identities with 30 calls each do not add up.
    let mut two = list_calls(30, 10_000, ALICE);
    two.extend(list_calls(30, 10_000, BOB));
    two.sort_by_key(|(t, _)| *t);
    assert!(listing_ids(&rules, &two).is_empty());
    // The List* calls themselves are no alerts.
    let event = Event::from_json(&list_calls(1, 0, ALICE)[0].1);
    assert_eq!(rules.matches("cloudtrail", &event).count(), 0);
    assert_eq!(rules.matches_all("cloudtrail", &event).count(), 1);
}

#[test]
fn rewritten_storage_and_ses_rules_fire() {
    let rules = repo_rules();
    let s3 = |name: &str, arn: &str| json!({"eventSource": "s3.amazonaws.com", "eventName": name, "userIdentity": {"arn": arn}, "recipientAccountId": "111122223333"});
    let names = [
        "ListBuckets",
        "GetBucketPolicy",
        "GetBucketCors",
        "GetBucketTagging",
        "GetBucketPolicy",
        "GetBucketPublicAccessBlock",
    ];
    let stream: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i as i64 * MIN, s3(n, BOB)))
        .collect();
    let hits = run(&rules, "cloudtrail", &stream);
    let ids: Vec<_> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(
        ids,
        ["4723218f-2048-41f6-bcb0-417f2d784f61"],
        "more than five storage calls"
    );
    assert!(run(&rules, "cloudtrail", &stream[..5]).is_empty());
    let ses = |name: &str, account: &str| json!({"eventSource": "ses.amazonaws.com", "eventName": name, "recipientAccountId": account});
    let stream = [
        (0, ses("UpdateAccountSendingEnabled", "1")),
        (MIN, ses("VerifyEmailIdentity", "2")),
        (2 * MIN, ses("VerifyEmailIdentity", "1")),
    ];
    let hits = run(&rules, "cloudtrail", &stream);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "60b84424-a724-4502-bd0d-cc676e1bc90e");
    assert_eq!(hits[0].references, [0, 2]);
    assert!(
        run(
            &rules,
            "cloudtrail",
            &[
                stream[0].clone(),
                (6 * MIN, ses("VerifyEmailIdentity", "1"))
            ]
        )
        .is_empty()
    );
}

#[test]
fn rewritten_linux_rules_fire() {
    let rules = repo_rules();
    let failure = |user: &str| json!({"pam_message": "authentication failure", "pam_user": user, "pam_rhost": "203.0.113.7"});
    let stream: Vec<_> = ["root", "admin", "oracle", "admin", "test"]
        .iter()
        .enumerate()
        .map(|(i, u)| (i as i64 * 3_600_000, failure(u)))
        .collect();
    let hits = run(&rules, "syslog", &stream);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "fc947f8e-ea81-4b14-9a7b-13f888f94e18");
    assert_eq!(
        hits[0].group,
        [("pam_rhost".to_owned(), Some("203.0.113.7".to_owned()))]
    );
    assert_eq!(hits[0].count, 4);
    assert!(
        run(&rules, "syslog", &stream[..4]).is_empty(),
        "three distinct users"
    );
    // Seven reconnaissance commands in half an hour, on text lines (no `host`: one group).
    let commands = [
        "uname -a",
        "cat /etc/passwd",
        "crontab -l",
        "ifconfig",
        "netstat -tulpn",
        "cat /etc/resolv.conf",
        "iptables -L",
    ];
    let mut correlator = rules.correlator();
    let mut hits = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let line = format!("Nov 21 10:0{i}:00 host bash[42]: alice ran {command}");
        let event = Event::from_record(line.as_bytes());
        hits.extend(
            rules
                .detect(&mut correlator, "syslog", &event, i as i64 * MIN, i as u64)
                .correlations,
        );
    }
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "444ade84-c362-4260-b1f3-e45e20e1a905");
    assert_eq!(hits[0].group, [("host".to_owned(), None)]);
}

// Bad correlations.

fn correlation(body: &str) -> String {
    format!(
        "title: c\nid: c\ncorrelation:\n{body}---\n{}",
        base("r", "X")
    )
}

fn one_error(text: &str) -> String {
    let errors = load_errors(&[("bad.yml", text)]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].clone()
}

#[test]
fn bad_correlations_are_rejected_with_file_line_and_reason() {
    let ok =
        "    type: event_count\n    rules: r\n    timespan: 1m\n    condition:\n        gte: 2\n";
    assert!(load_errors(&[("ok.yml", &correlation(ok))]).is_empty());
    let cases: &[(&str, &str, &str)] = &[
        (
            "    type: event_count\n    rules:\n        - r\n        - nope\n    timespan: 1m\n    condition:\n        gte: 2\n",
            "bad.yml:7:",
            "unknown rule `nope`",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 10 minutes\n    condition:\n        gte: 2\n",
            "bad.yml:6:",
            "bad timespan `10 minutes`",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 0s\n    condition:\n        gte: 2\n",
            "bad.yml:6:",
            "longer than zero",
        ),
        (
            "    type: value_count\n    rules: r\n    timespan: 1h\n    condition:\n        gte: 2\n",
            "bad.yml:7:",
            "needs the `field`",
        ),
        (
            "    type: event_counts\n    rules: r\n    timespan: 1h\n    condition:\n        gte: 2\n",
            "bad.yml:4:",
            "unknown correlation type `event_counts`",
        ),
        (
            "    type: value_sum\n    rules: r\n    timespan: 1h\n    condition:\n        gte: 2\n",
            "bad.yml:4:",
            "`value_sum` is not supported",
        ),
        (
            "    rules: r\n    timespan: 1h\n    condition:\n        gte: 2\n",
            "bad.yml:3:",
            "no correlation `type`",
        ),
        (
            "    type: event_count\n    rules: r\n    condition:\n        gte: 2\n",
            "bad.yml:3:",
            "no `timespan`",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n",
            "bad.yml:3:",
            "no `condition`",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n    condition:\n        more: 2\n",
            "bad.yml:7:",
            "unknown condition `more`",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n    condition:\n        gt: 5\n        lt: 6\n",
            "bad.yml:7:",
            "no count satisfies",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n    condition:\n        gte: -1\n",
            "bad.yml:7:",
            "whole number",
        ),
        (
            "    type: event_count\n    rules: []\n    timespan: 1h\n    condition:\n        gte: 1\n",
            "bad.yml:5:",
            "`rules` must name",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n    groupby: x\n    condition:\n        gte: 1\n",
            "bad.yml:7:",
            "unknown key `groupby`",
        ),
        (
            "    type: temporal_ordered\n    rules: [r, r]\n    timespan: 1h\n    condition:\n        gte: 1\n",
            "bad.yml:7:",
            "all its rules match in order",
        ),
        (
            "    type: temporal\n    rules: [r, r]\n    timespan: 1h\n",
            "bad.yml:5:",
            "listed twice",
        ),
        (
            "    type: temporal\n    rules: r\n    timespan: 1h\n    condition:\n        gte: 2\n",
            "bad.yml:7:",
            "more than the 1 rules",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n    condition:\n        field: user\n        gte: 2\n",
            "bad.yml:7:",
            "only for value_count",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n    group-by: [ip]\n    aliases:\n        ip:\n            other: src\n    condition:\n        gte: 2\n",
            "bad.yml:10:",
            "which `rules` does not list",
        ),
        (
            "    type: event_count\n    rules: r\n    timespan: 1h\n    generate: maybe\n    condition:\n        gte: 2\n",
            "bad.yml:7:",
            "`generate` must be true or false",
        ),
    ];
    for (body, at, reason) in cases {
        let e = one_error(&correlation(body));
        assert!(e.starts_with(at) && e.contains(reason), "{body}\n=> {e}");
    }
}

#[test]
fn correlations_of_unusable_or_cyclic_rules_are_rejected() {
    // A referenced rule that is itself unusable.
    let text = "title: c\nid: c\ncorrelation:\n    type: event_count\n    rules: broken\n    timespan: 1m\n    condition:\n        gte: 2\n---\ntitle: broken\nname: broken\nlogsource:\n    product: aws\ndetection:\n    sel:\n        a|shout: x\n    condition: sel\n";
    let errors = load_errors(&[("bad.yml", text)]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("bad.yml:15:") && e.contains("unknown modifier")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("bad.yml:5:")
                && e.contains("refers to `broken`, which is unusable")),
        "{errors:?}"
    );
    // Correlations referring to each other.
    let cycle = "title: a\nid: a\ncorrelation:\n    type: event_count\n    rules: b\n    timespan: 1m\n    condition:\n        gte: 2\n---\ntitle: b\nid: b\ncorrelation:\n    type: event_count\n    rules: a\n    timespan: 1m\n    condition:\n        gte: 2\n";
    let errors = load_errors(&[("c.yml", cycle)]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.contains("in a cycle")),
        "{errors:?}"
    );
    // A correlation over an unusable correlation.
    let chained = "title: outer\nid: outer\ncorrelation:\n    type: event_count\n    rules: inner\n    timespan: 1m\n    condition:\n        gte: 2\n---\ntitle: inner\nid: inner\ncorrelation:\n    type: event_count\n    rules: nowhere\n    timespan: 1m\n    condition:\n        gte: 2\n";
    let errors = load_errors(&[("c.yml", chained)]);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("c.yml:5:")
                && e.contains("correlation `inner`, which is unusable")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("c.yml:14:") && e.contains("unknown rule `nowhere`")),
        "{errors:?}"
    );
    // A name two other files define.
    let a = base("twin", "A");
    let b = base("twin", "B").replace("id: twin-id", "id: twin-other");
    let c = "title: c\nid: c\ncorrelation:\n    type: event_count\n    rules: twin\n    timespan: 1m\n    condition:\n        gte: 2\n";
    let errors = load_errors(&[("a.yml", a.as_str()), ("b.yml", b.as_str()), ("c.yml", c)]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("c.yml:5:") && errors[0].contains("ambiguous"),
        "{errors:?}"
    );
    // A detection rule alone cannot be a correlation.
    let e = acta_detect::Rule::parse(c, Path::new("c.yml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("c.yml:3:") && e.contains("rule set"), "{e}");
}

#[test]
fn multi_document_files_load_every_document() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# leading comment\n---\n{}---\n\n---\n{}...\n",
        base("one", "A"),
        base("two", "B")
    );
    std::fs::write(dir.path().join("two.yml"), text).unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        format!("{}---\ntitle: [\n", base("three", "C")),
    )
    .unwrap();
    let loaded = RuleSet::load_dir(dir.path()).unwrap();
    let ids: Vec<_> = loaded.rules.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["three-id", "one-id", "two-id"]);
    assert_eq!(loaded.errors.len(), 1);
    let e = loaded.errors[0].to_string();
    assert!(
        e.contains("bad.yml:12:") && e.contains("invalid YAML"),
        "{e}"
    );
    let hits = loaded
        .rules
        .matches_record("cloudtrail", br#"{"eventName":"b"}"#);
    assert_eq!(hits.len(), 1);
    assert!(PathBuf::from(&hits[0].path).ends_with("two.yml"));
}

//! Behavioural detectors on constructed histories: steady actors stay
//! quiet, each departure is reported once, memory stays bounded, and the
//! same history gives the same anomalies.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use acta_detect::behaviour::{Anomaly, Behaviour, Config, Kind, Observation, Outcome};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 2024-01-01T00:00Z, a Monday.
const START: i64 = 1_704_067_200_000;

/// An event, owned; [`Ev::obs`] borrows it as the detectors read it.
#[derive(Debug, Clone)]
struct Ev {
    index: u64,
    time_ms: i64,
    source: String,
    actor: String,
    action: String,
    service: String,
    resources: Vec<compact_str::CompactString>,
    ip: String,
    user_agent: String,
    outcome: Outcome,
}

impl Ev {
    fn obs(&self) -> Observation<'_> {
        fn some(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        Observation {
            index: self.index,
            time_ms: self.time_ms,
            source: &self.source,
            actor: some(&self.actor),
            action: some(&self.action),
            service: some(&self.service),
            resources: &self.resources,
            ip: some(&self.ip),
            user_agent: some(&self.user_agent),
            outcome: self.outcome,
        }
    }
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const READS: &[&str] = &[
    "GetObject",
    "ListObjects",
    "HeadObject",
    "GetBucketLocation",
];
const IPS: &[&str] = &["198.51.100.7", "198.51.100.8"];
const AGENT: &str = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22";

/// A history being built: events get consecutive ledger indexes.
struct History {
    events: Vec<Ev>,
    rng: Rng,
}

impl History {
    fn new() -> History {
        History {
            events: Vec::new(),
            rng: Rng(0x9e37_79b9_7f4a_7c15),
        }
    }

    fn next_index(&self) -> u64 {
        self.events.len() as u64
    }

    /// An ordinary event of `actor` at `time_ms`: one of two IPs, the usual
    /// agent, a read or (with `delete`) a deletion, on one of 20 objects.
    fn push(&mut self, actor: &str, time_ms: i64, delete: bool) -> u64 {
        let n = self.events.len();
        let action = if delete {
            "DeleteObject"
        } else {
            READS[n % READS.len()]
        };
        let index = self.next_index();
        self.events.push(Ev {
            index,
            time_ms,
            source: "cloudtrail".into(),
            actor: actor.into(),
            action: action.into(),
            service: "s3.amazonaws.com".into(),
            resources: vec![format!("arn:aws:s3:::reports/{}", n % 20).into()],
            ip: IPS[n % 2].into(),
            user_agent: AGENT.into(),
            outcome: Outcome::Success,
        });
        index
    }

    /// `days` of steady work from `first_day`: about 50 events a day between
    /// 09:00 and 17:00 UTC, `deletes` of them deletions.
    fn steady(&mut self, actor: &str, first_day: i64, days: i64, deletes: u64) {
        for day in first_day..first_day + days {
            let count = 45 + self.rng.below(11);
            for i in 0..count {
                let minute = 9 * 60 + i as i64 * 480 / count as i64;
                let time = START + day * DAY + minute * MINUTE + self.rng.below(30) as i64 * 1000;
                let delete = i % (count / deletes.max(1)).max(1) == 0 && deletes > 0;
                self.push(actor, time, delete);
            }
        }
    }

    /// A working day with `per_hour(hour)` deletions in each hour from 09
    /// to 16, among 4 reads an hour.
    fn deleting_day(&mut self, actor: &str, day: i64, per_hour: &mut dyn FnMut(i64) -> u64) {
        for hour in 9..17 {
            let deletes = per_hour(hour);
            let total = deletes + 4;
            for i in 0..total {
                let time =
                    START + day * DAY + hour * HOUR + (i as i64 * 59 * MINUTE) / total as i64;
                self.push(actor, time, i < deletes);
            }
        }
    }

    fn last_mut(&mut self) -> &mut Ev {
        self.events.last_mut().unwrap()
    }
}

fn run_with(config: Config, events: &[Ev]) -> Vec<Anomaly> {
    let mut behaviour = Behaviour::new(config).unwrap();
    let mut out = Vec::new();
    for event in events {
        behaviour.observe(&event.obs(), &mut out);
    }
    out
}

fn run(events: &[Ev]) -> Vec<Anomaly> {
    run_with(Config::default(), events)
}

fn kinds(anomalies: &[Anomaly]) -> Vec<Kind> {
    anomalies.iter().map(|a| a.kind).collect()
}

#[test]
fn a_steady_actor_raises_nothing() {
    let mut h = History::new();
    h.steady("alice", 0, 30, 5);
    assert!(h.events.len() > 1400);
    let anomalies = run(&h.events);
    assert!(anomalies.is_empty(), "{anomalies:#?}");
}

#[test]
fn a_new_ip_after_learning_is_reported_once() {
    let mut h = History::new();
    h.steady("alice", 0, 30, 5);
    let index = h.push("alice", START + 30 * DAY + 10 * HOUR, false);
    h.last_mut().ip = "203.0.113.9".into();
    // The same IP again, later: known by now.
    h.push("alice", START + 30 * DAY + 11 * HOUR, false);
    h.last_mut().ip = "203.0.113.9".into();
    let anomalies = run(&h.events);
    assert_eq!(kinds(&anomalies), [Kind::NewIp], "{anomalies:#?}");
    let a = &anomalies[0];
    assert_eq!(a.actor, "alice");
    assert_eq!(a.source, "cloudtrail");
    assert_eq!(a.value, "203.0.113.9");
    assert_eq!(a.events, [index]);
    assert_eq!(a.severity_id, 2);
    assert_eq!(a.time, START + 30 * DAY + 10 * HOUR);
    assert_eq!(
        a.message,
        "alice used a new source IP 203.0.113.9 (2 IPs known over 30 days)"
    );
    let json = serde_json::to_value(a).unwrap();
    assert_eq!(json["kind"], "new_ip");
    assert_eq!(json["baseline"]["known"], 2);
    assert_eq!(json["baseline"]["days"], 30);
}

#[test]
fn ipv6_addresses_count_by_network() {
    let mut h = History::new();
    h.steady("alice", 0, 10, 5);
    let time = START + 10 * DAY + 10 * HOUR;
    let first = h.push("alice", time, false);
    h.last_mut().ip = "2001:db8:7:1:8d2e:11ff:fe00:1".into();
    // The same /64 the next day, with another interface identifier.
    h.push("alice", time + DAY, false);
    h.last_mut().ip = "2001:db8:7:1:4a1:9c3b:77e0:2f".into();
    let anomalies = run(&h.events);
    assert_eq!(kinds(&anomalies), [Kind::NewIp], "{anomalies:#?}");
    assert_eq!(anomalies[0].events, [first]);
}

#[test]
fn each_new_value_kind_is_reported() {
    let mut h = History::new();
    h.steady("alice", 0, 10, 5);
    let time = START + 10 * DAY + 10 * HOUR;
    let agent = h.push("alice", time, false);
    h.last_mut().user_agent = "curl/8.5.0".into();
    let resource = h.push("alice", time + MINUTE, false);
    h.last_mut().resources = vec!["arn:aws:s3:::payroll/2024.csv".into()];
    let api = h.push("alice", time + 2 * MINUTE, false);
    h.last_mut().action = "GetBucketAcl".into();
    let anomalies = run(&h.events);
    assert_eq!(
        kinds(&anomalies),
        [Kind::NewUserAgent, Kind::NewResource, Kind::NewApi],
        "{anomalies:#?}"
    );
    assert_eq!(anomalies[0].events, [agent]);
    assert_eq!(anomalies[0].value, "curl/8.5.0");
    assert_eq!(anomalies[1].events, [resource]);
    assert_eq!(anomalies[1].value, "arn:aws:s3:::payroll/2024.csv");
    assert_eq!(anomalies[2].events, [api]);
    assert_eq!(
        anomalies[2].message,
        "alice called GetBucketAcl (s3.amazonaws.com) for the first time (5 APIs known over 10 days)"
    );
}

#[test]
fn nothing_is_reported_while_learning() {
    let mut h = History::new();
    h.steady("alice", 0, 3, 5);
    // Day 3: a new IP, a new agent, at 03:00, and many deletions.
    for i in 0..40 {
        h.push("alice", START + 3 * DAY + 3 * HOUR + i * MINUTE, true);
        h.last_mut().ip = format!("203.0.113.{i}");
        h.last_mut().user_agent = format!("agent/{i}");
    }
    h.steady("alice", 4, 3, 5);
    assert!(run(&h.events).is_empty());
    // The values learnt while learning stay known afterwards.
    h.steady("alice", 7, 10, 5);
    h.push("alice", START + 17 * DAY + 10 * HOUR, false);
    h.last_mut().ip = "203.0.113.5".into();
    assert!(run(&h.events).is_empty());
}

#[test]
fn an_actor_new_to_a_source_learns_its_vocabulary() {
    let mut h = History::new();
    h.steady("alice", 0, 20, 5);
    // alice shows up in another source, with its own APIs and resources.
    for (i, action) in ["repo.create", "git.clone", "repo.update"]
        .iter()
        .enumerate()
    {
        h.push(
            "alice",
            START + 20 * DAY + 10 * HOUR + i as i64 * MINUTE,
            false,
        );
        let e = h.last_mut();
        e.source = "github-audit".into();
        e.service = String::new();
        e.action = (*action).into();
        e.resources = vec![format!("acme/repo-{i}").into()];
    }
    let anomalies = run(&h.events);
    assert!(anomalies.is_empty(), "{anomalies:#?}");
    // A week later it is learnt there too.
    h.steady("alice", 21, 7, 5);
    h.push("alice", START + 28 * DAY + 10 * HOUR, false);
    let e = h.last_mut();
    e.source = "github-audit".into();
    e.service = String::new();
    e.action = "repo.transfer".into();
    e.resources = vec!["acme/repo-0".into()];
    assert_eq!(kinds(&run(&h.events)), [Kind::NewApi]);
}

#[test]
fn a_spike_of_deletions_is_reported_once() {
    let mut h = History::new();
    let mut rng = Rng(7);
    for day in 0..20 {
        h.deleting_day("bob", day, &mut |_| 1 + rng.below(5));
    }
    assert!(run(&h.events).is_empty(), "steady deletions");
    // Day 20, 14:00: thirty deletions in the hour, ten times the usual.
    let first = h.next_index();
    for i in 0..30 {
        h.push("bob", START + 20 * DAY + 14 * HOUR + i * MINUTE, true);
    }
    let anomalies = run(&h.events);
    assert_eq!(kinds(&anomalies), [Kind::ActionSpike], "{anomalies:#?}");
    let a = &anomalies[0];
    assert_eq!(a.severity_id, 4);
    assert_eq!(a.value, "2024-01-21T14:00Z");
    assert!(a.events.len() <= 32);
    assert_eq!(a.events[0], first);
    let json = serde_json::to_value(a).unwrap();
    let b = &json["baseline"];
    assert_eq!(b["median"], 3.0);
    // The window holds the 335 hours before 14:00 on day 20: from 15:00 on
    // day 6, two working hours that day and eight on each of days 7 to 19.
    assert_eq!(b["buckets"], 2 + 13 * 8);
    let threshold = b["threshold"].as_f64().unwrap();
    let count = b["count"].as_u64().unwrap();
    assert!(count as f64 > threshold && count >= 10, "{json}");
    // The event that crossed the threshold completes the anomaly.
    assert_eq!(*a.events.last().unwrap(), first + count - 1);
    assert!(
        a.message.starts_with(&format!(
            "bob made {count} privileged or destructive actions in the hour from 2024-01-21T14:00Z; usually 3"
        )),
        "{}",
        a.message
    );
}

#[test]
fn a_steady_high_deletion_rate_is_not_a_spike() {
    let mut h = History::new();
    let mut rng = Rng(11);
    for day in 0..30 {
        h.deleting_day("svc", day, &mut |_| 25 + rng.below(10));
    }
    let anomalies = run(&h.events);
    assert!(anomalies.is_empty(), "{anomalies:#?}");
}

#[test]
fn deletions_by_an_actor_that_never_deletes_count_against_zeros() {
    let mut h = History::new();
    h.steady("carol", 0, 20, 0);
    for i in 0..12 {
        h.push("carol", START + 20 * DAY + 11 * HOUR + i * MINUTE, true);
    }
    let anomalies = run(&h.events);
    assert_eq!(
        kinds(&anomalies),
        [Kind::NewApi, Kind::ActionSpike],
        "{anomalies:#?}"
    );
    let json = serde_json::to_value(&anomalies[1]).unwrap();
    assert_eq!(json["baseline"]["median"], 0.0);
    assert_eq!(json["baseline"]["count"], 10, "min_count reached");
}

#[test]
fn an_unusual_hour_is_reported_once() {
    let mut h = History::new();
    h.steady("alice", 0, 30, 5);
    let night = h.push("alice", START + 30 * DAY + 3 * HOUR, false);
    // The same night, and the next: not reported again.
    h.push("alice", START + 30 * DAY + 3 * HOUR + 20 * MINUTE, false);
    h.push("alice", START + 30 * DAY + 4 * HOUR + 10 * MINUTE, false);
    h.push("alice", START + 31 * DAY + 3 * HOUR, false);
    // Starting an hour early is not unusual.
    h.push("alice", START + 31 * DAY + 8 * HOUR, false);
    let anomalies = run(&h.events);
    assert_eq!(kinds(&anomalies), [Kind::UnusualHour], "{anomalies:#?}");
    let a = &anomalies[0];
    assert_eq!(a.events, [night]);
    assert_eq!(a.value, "03:00");
    assert!(
        a.message
            .starts_with("alice was active at 03:00 UTC: 0.0% of its "),
        "{}",
        a.message
    );
}

#[test]
fn denied_then_allowed() {
    let mut h = History::new();
    let t = START + 10 * HOUR;
    let fail = |h: &mut History, time: i64, action: &str, outcome: Outcome| {
        let i = h.push("dave", time, false);
        h.last_mut().action = action.into();
        h.last_mut().outcome = outcome;
        i
    };
    let f1 = fail(&mut h, t, "PutBucketPolicy", Outcome::Failure);
    let f2 = fail(&mut h, t + MINUTE, "PutBucketPolicy", Outcome::Failure);
    let other = fail(&mut h, t + 2 * MINUTE, "GetObject", Outcome::Success);
    let ok = fail(&mut h, t + 3 * MINUTE, "PutBucketPolicy", Outcome::Success);
    // A second success ends nothing.
    fail(&mut h, t + 4 * MINUTE, "PutBucketPolicy", Outcome::Success);
    // A failure, and the success too late.
    fail(&mut h, t + HOUR, "DeleteBucket", Outcome::Failure);
    fail(&mut h, t + 2 * HOUR, "DeleteBucket", Outcome::Success);
    // A failure, then an unknown outcome, then a failure of something else.
    fail(&mut h, t + 3 * HOUR, "PutObject", Outcome::Failure);
    fail(&mut h, t + 3 * HOUR + MINUTE, "PutObject", Outcome::Unknown);
    fail(&mut h, t + 3 * HOUR + MINUTE, "GetObject", Outcome::Failure);
    let anomalies = run(&h.events);
    assert_eq!(
        kinds(&anomalies),
        [Kind::DeniedThenAllowed],
        "{anomalies:#?}"
    );
    let a = &anomalies[0];
    assert_ne!(other, ok);
    assert_eq!(a.events, [f1, f2, ok]);
    assert_eq!(a.severity_id, 3);
    assert_eq!(
        a.message,
        "dave failed PutBucketPolicy (s3.amazonaws.com) 2 times, then succeeded 120 s after the last failure"
    );
}

#[test]
fn values_per_actor_are_capped() {
    let mut config = Config::default();
    config.new_ip.learning_days = 0;
    let mut behaviour = Behaviour::new(config).unwrap();
    let mut out = Vec::new();
    let resources: Vec<compact_str::CompactString> = Vec::new();
    let mut ip = String::new();
    for i in 0..1_000_000u32 {
        use std::fmt::Write;
        ip.clear();
        write!(ip, "10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255).unwrap();
        let obs = Observation {
            index: u64::from(i),
            time_ms: START + i64::from(i) * 1000,
            source: "cloudtrail",
            actor: Some("scanner"),
            action: None,
            service: None,
            resources: &resources,
            ip: Some(&ip),
            user_agent: None,
            outcome: Outcome::Unknown,
        };
        behaviour.observe(&obs, &mut out);
    }
    assert_eq!(behaviour.known_values("scanner", Kind::NewIp), Some(10_000));
    assert_eq!(
        behaviour.known_values("scanner", Kind::NewUserAgent),
        Some(0)
    );
    assert_eq!(behaviour.known_values("nobody", Kind::NewIp), None);
    assert_eq!(behaviour.known_values("scanner", Kind::ActionSpike), None);
    // At most 10 a day, and none once the actor is full (10,000 values in
    // under 3 hours).
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|a| a.kind == Kind::NewIp));
}

#[test]
fn actors_are_capped_least_recent_first() {
    let config = Config {
        max_actors: 1000,
        ..Config::default()
    };
    let mut behaviour = Behaviour::new(config).unwrap();
    let mut out = Vec::new();
    let mut h = History::new();
    // alice works steadily while 5,000 one-off actors pass by.
    for day in 0..20 {
        h.steady("alice", day, 1, 5);
        for i in 0..250 {
            h.push(
                &format!("visitor-{day}-{i}"),
                START + day * DAY + 12 * HOUR,
                false,
            );
        }
    }
    for event in &h.events {
        behaviour.observe(&event.obs(), &mut out);
        assert!(behaviour.actors() <= 1000);
    }
    assert!(out.is_empty(), "{out:#?}");
    assert_eq!(behaviour.known_values("alice", Kind::NewIp), Some(2));
    assert_eq!(behaviour.known_values("visitor-0-0", Kind::NewIp), None);
    assert!(
        behaviour
            .known_values("visitor-19-249", Kind::NewIp)
            .is_some()
    );
}

/// A history with something of everything.
fn eventful() -> Vec<Ev> {
    let mut h = History::new();
    let mut rng = Rng(3);
    for day in 0..15 {
        h.deleting_day("bob", day, &mut |_| rng.below(4));
        h.steady("alice", day, 1, 3);
    }
    h.push("alice", START + 15 * DAY + 2 * HOUR, false);
    h.last_mut().ip = "203.0.113.1".into();
    for i in 0..40 {
        h.push("bob", START + 15 * DAY + 10 * HOUR + i * MINUTE, true);
        h.last_mut().outcome = if i % 2 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        h.last_mut().resources = vec![format!("arn:aws:s3:::archive/{i}").into()];
    }
    h.events
}

#[test]
fn the_same_history_gives_the_same_anomalies() {
    let events = eventful();
    let first = run(&events);
    let second = run(&events);
    assert_eq!(first, second);
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&second).unwrap()
    );
    for kind in [
        Kind::NewIp,
        Kind::NewResource,
        Kind::UnusualHour,
        Kind::ActionSpike,
        Kind::DeniedThenAllowed,
    ] {
        assert!(first.iter().any(|a| a.kind == kind), "{kind}: {first:#?}");
    }
    // Ten new resources, and ten retries, a day at most.
    let count = |kind| first.iter().filter(|a| a.kind == kind).count();
    assert_eq!(count(Kind::NewResource), 10);
    assert_eq!(count(Kind::DeniedThenAllowed), 10);
}

#[test]
fn disabled_detectors_are_silent() {
    let events = eventful();
    let mut config = Config::default();
    config.new_ip.enabled = false;
    config.new_user_agent.enabled = false;
    config.new_resource.enabled = false;
    config.new_api.enabled = false;
    config.unusual_hour.enabled = false;
    config.action_spike.enabled = false;
    config.denied_then_allowed.enabled = false;
    assert!(run_with(config, &events).is_empty());
}

#[test]
fn any_times_in_any_order_are_accepted() {
    let mut h = History::new();
    h.steady("alice", 0, 10, 5);
    let mut rng = Rng(5);
    let extremes = [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX];
    for i in 0..2000 {
        let time = match i % 4 {
            0 => extremes[rng.below(6) as usize],
            1 => START + 10 * DAY - rng.below(20 * DAY as u64) as i64,
            _ => START + 10 * DAY + rng.below(3 * DAY as u64) as i64,
        };
        h.push("alice", time, i % 3 == 0);
        h.last_mut().outcome = if i % 2 == 0 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
    }
    let first = run(&h.events);
    assert_eq!(first, run(&h.events));
}

#[test]
fn configuration_reads_from_toml_with_defaults() {
    let config: Config = toml::from_str(
        "max_actors = 5000\n\
         [new_resource]\nenabled = false\n\
         [action_spike]\nbucket_minutes = 30\nmin_count = 20\n\
         [privileged]\nextra = [\"*Snapshot*\"]\n",
    )
    .unwrap();
    assert_eq!(config.max_actors, 5000);
    assert!(!config.new_resource.enabled);
    assert_eq!(config.new_resource.max_values, 10_000);
    assert_eq!(config.action_spike.bucket_minutes, 30);
    assert_eq!(config.action_spike.window_days, 14);
    assert_eq!(config.privileged.extra, ["*Snapshot*"]);
    assert_eq!(config.unusual_hour, Config::default().unusual_hour);
    assert!(Behaviour::new(config).is_ok());

    let typo = toml::from_str::<Config>("[action_spike]\nmin_cuont = 3\n");
    assert!(typo.unwrap_err().to_string().contains("min_cuont"));

    let bad: Config = toml::from_str("[action_spike]\nbucket_minutes = 0\n").unwrap();
    let error = Behaviour::new(bad).unwrap_err();
    assert_eq!(error.field, "action_spike.bucket_minutes");
    let huge: Config =
        toml::from_str("[action_spike]\nbucket_minutes = 1\nwindow_days = 365\n").unwrap();
    assert_eq!(
        Behaviour::new(huge).unwrap_err().field,
        "action_spike.window_days"
    );
    let severity: Config = toml::from_str("[new_ip]\nseverity_id = 9\n").unwrap();
    assert_eq!(
        Behaviour::new(severity).unwrap_err().field,
        "new_ip.severity_id"
    );
}

#[test]
fn configured_privileged_actions_spike() {
    let mut config = Config::default();
    config.privileged.extra = vec!["ModifySnapshotAttribute".into()];
    let mut h = History::new();
    h.steady("erin", 0, 10, 0);
    for i in 0..15 {
        h.push("erin", START + 10 * DAY + 11 * HOUR + i * MINUTE, false);
        h.last_mut().action = "ModifySnapshotAttribute".into();
    }
    assert_eq!(
        kinds(&run_with(config, &h.events)),
        [Kind::NewApi, Kind::ActionSpike]
    );
    assert_eq!(kinds(&run(&h.events)), [Kind::NewApi]);
}

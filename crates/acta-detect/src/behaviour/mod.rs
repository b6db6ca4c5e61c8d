//! Behavioural anomalies: each actor against its own history.
//!
//! [`Behaviour`] follows the events of the ledger in order, one
//! [`Observation`] each, learns per actor what is usual, and reports what is
//! not as [`Anomaly`] values:
//!
//! | kind | when |
//! |---|---|
//! | `new_ip`, `new_user_agent`, `new_resource`, `new_api` | the actor uses a value of that kind for the first time, after learning |
//! | `unusual_hour` | the actor is active at an hour of the day (UTC) it rarely is and has not been lately ([`UnusualHourConfig`]) |
//! | `action_spike` | the actor's privileged or destructive actions in a bucket of time far exceed its median, by its MAD ([`SpikeConfig`], [`privileged`]) |
//! | `denied_then_allowed` | an action of the actor failed, then succeeded soon after ([`DeniedThenAllowedConfig`]) |
//!
//! # Learning
//!
//! Nothing is reported about an actor until its learning period is over
//! (7 days by default, per detector), counted in event time from its first
//! event; for new values, from its first value of the kind and its first
//! event in the event's source, whichever is later, so an actor that shows
//! up in a new source does not report the whole vocabulary of that source.
//! History accumulates all the while. A new value is reported once: from
//! then on it is known.
//!
//! # Determinism
//!
//! The state is a function of the observations in order, and nothing else:
//! time is the events' time, never the clock's; no map's iteration order
//! reaches the output; values are remembered by a fixed 64-bit hash. So the
//! same observations in the same order give the same anomalies, and the
//! state is rebuilt by replaying the ledger. Events a little out of order
//! are counted where they belong (a spike is only judged on the newest
//! bucket); any times are accepted.
//!
//! # Cost
//!
//! An event costs a few hash lookups: the actor, its source, one per value
//! and resource, and the action's classification (cached per action). The
//! memory is bounded: values per actor and kind ([`NewValueConfig`]
//! `max_values`), actors ([`Config::max_actors`], least recently seen
//! forgotten first), buckets per actor (the spike window), runs of
//! failures per actor (16), events linked per anomaly (32). So is the
//! output: a new value or a retry is reported at most `max_alerts_per_day`
//! times per actor and day, a spike once per bucket, an unusual hour once
//! per `quiet_days`.

mod config;
mod hash;
mod hour;
pub mod privileged;
mod retry;
mod spike;
mod values;

use serde::Serialize;

pub use config::{
    Config, ConfigError, DeniedThenAllowedConfig, MAX_SPIKE_BUCKETS, NewValueConfig,
    PrivilegedConfig, SpikeConfig, UnusualHourConfig,
};
pub use privileged::{Classifier, is_privileged};

use config::DAY_MS;
use hash::{HashedMap, hash_ip, hash_pair, hash_str};
use hour::Hours;
use retry::Retries;
use spike::{Activity, Scratch};
use values::Known;

/// Whether the action of an event succeeded (OCSF `status_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded (`status_id` 1).
    Success,
    /// It failed or was denied (`status_id` 2).
    Failure,
    /// Not known.
    Unknown,
}

/// What the detectors read of one event.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The event's index in the ledger.
    pub index: u64,
    /// When it happened (`time`), in milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The acta source it came from (`cloudtrail`, `k8s-audit`…).
    pub source: &'a str,
    /// Who acted: the actor's name, or ARN, or uid. Events without one are
    /// ignored.
    pub actor: Option<&'a str>,
    /// The action (`api.operation`).
    pub action: Option<&'a str>,
    /// The service of the action (`api.service.name`).
    pub service: Option<&'a str>,
    /// The resources acted on (`resources[].uid`, or the name when there is
    /// no uid).
    pub resources: &'a [compact_str::CompactString],
    /// The source IP (`src_endpoint.ip`).
    pub ip: Option<&'a str>,
    /// The user agent (`http_request.user_agent`).
    pub user_agent: Option<&'a str>,
    /// Whether the action succeeded.
    pub outcome: Outcome,
}

/// A kind of anomaly: which detector raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// First use of a source IP.
    NewIp,
    /// First use of a user agent.
    NewUserAgent,
    /// First action on a resource.
    NewResource,
    /// First call of an API (service and action).
    NewApi,
    /// Activity at an hour unusual for the actor.
    UnusualHour,
    /// A spike of privileged or destructive actions.
    ActionSpike,
    /// A failed action, then the same action succeeding.
    DeniedThenAllowed,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::NewIp,
        Kind::NewUserAgent,
        Kind::NewResource,
        Kind::NewApi,
        Kind::UnusualHour,
        Kind::ActionSpike,
        Kind::DeniedThenAllowed,
    ];

    /// The kind's name (`new_ip`…), as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NewIp => "new_ip",
            Kind::NewUserAgent => "new_user_agent",
            Kind::NewResource => "new_resource",
            Kind::NewApi => "new_api",
            Kind::UnusualHour => "unusual_hour",
            Kind::ActionSpike => "action_spike",
            Kind::DeniedThenAllowed => "denied_then_allowed",
        }
    }

    /// The slot of a new-value kind in an actor's values.
    fn values_slot(self) -> Option<usize> {
        match self {
            Kind::NewIp => Some(0),
            Kind::NewUserAgent => Some(1),
            Kind::NewResource => Some(2),
            Kind::NewApi => Some(3),
            _ => None,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A behavioural anomaly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// The detector that raised it.
    pub kind: Kind,
    /// The actor, as in the observation.
    pub actor: String,
    /// The source of the event that raised it.
    pub source: String,
    /// OCSF `severity_id`: 1 informational, 2 low, 3 medium, 4 high.
    pub severity_id: u8,
    /// The time of the event that raised it, in milliseconds since the Unix
    /// epoch.
    pub time: i64,
    /// One line for people: `alice used a new source IP 203.0.113.9 (2 IPs
    /// known over 31 days)`.
    pub message: String,
    /// The value concerned: the IP, user agent, resource or action, the
    /// hour (`03:00`), the start of the bucket (`2024-05-01T14:00Z`).
    /// Values longer than 512 bytes are cut, with `…`.
    pub value: String,
    /// Ledger indexes of the events that raised it, oldest first; the last
    /// is the event that completed it. At most 32.
    pub events: Vec<u64>,
    /// The figures it was judged on.
    pub baseline: Baseline,
}

/// The figures an anomaly was judged on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Baseline {
    /// A new value.
    Known {
        /// Values of the kind the actor had used before.
        known: u64,
        /// Whole days since the actor's first value of the kind.
        days: i64,
    },
    /// An unusual hour.
    Hour {
        /// The hour of the day (UTC).
        hour: u8,
        /// The fraction of the actor's events at that hour and its
        /// neighbours.
        share: f64,
        /// The actor's events in the histogram.
        events: u64,
        /// Days without activity at those hours.
        quiet_days: u32,
    },
    /// A spike.
    Spike {
        /// Privileged or destructive actions in the bucket so far.
        count: u64,
        /// Median count per active bucket of the window.
        median: f64,
        /// Median absolute deviation of those counts (unscaled).
        mad: f64,
        /// The count it had to exceed.
        threshold: f64,
        /// Active buckets in the baseline.
        buckets: u64,
        /// Bucket length in minutes.
        bucket_minutes: u32,
    },
    /// Denied then allowed.
    Retry {
        /// Failures in the run.
        failures: u64,
        /// Milliseconds from the last failure to the success.
        elapsed_ms: i64,
        /// Time of the first failure, in milliseconds since the Unix epoch.
        first_failure_ms: i64,
    },
}

/// The most sources whose first event is remembered per actor; an actor
/// seen in more is taken as learnt in the others from its first event.
const MAX_SOURCES: usize = 32;

/// Classifications remembered; the cache is emptied when it holds more.
const MAX_CLASSIFIED: usize = 1 << 16;

/// Longest value kept in an anomaly, in bytes.
const MAX_VALUE: usize = 512;

/// The behavioural detectors and what they learnt.
#[derive(Debug)]
pub struct Behaviour {
    config: Config,
    classifier: Classifier,
    actors: HashedMap<Actor>,
    /// Observations with an actor so far: the recency of actors.
    seq: u64,
    /// Whether an action (by its key) is privileged or destructive.
    classified: HashedMap<bool>,
    /// Buckets in the spike window.
    buckets: usize,
    scratch: Scratch,
}

/// What is known of one actor.
#[derive(Debug)]
struct Actor {
    /// Its first event's time.
    first_ms: i64,
    /// The observation that last named it.
    last_seq: u64,
    /// Its first source (by hash) and its first event's time there.
    source: (u64, i64),
    /// The same for the other sources it was seen in.
    more_sources: Vec<(u64, i64)>,
    /// Values used.
    values: Known,
    hours: Hours,
    activity: Option<Activity>,
    retries: Retries,
}

/// The event being observed, as the detectors report it.
pub(crate) struct Seen<'o, 'a> {
    obs: &'o Observation<'a>,
    actor: &'a str,
    /// When the actor was first seen in the event's source.
    source_first_ms: i64,
}

impl Seen<'_, '_> {
    fn anomaly(
        &self,
        kind: Kind,
        severity_id: u8,
        message: String,
        value: String,
        events: Vec<u64>,
        baseline: Baseline,
    ) -> Anomaly {
        Anomaly {
            kind,
            actor: self.actor.to_owned(),
            source: self.obs.source.to_owned(),
            severity_id,
            time: self.obs.time_ms,
            message,
            value,
            events,
            baseline,
        }
    }
}

impl Behaviour {
    /// Detectors configured by `config`, with nothing learnt yet.
    pub fn new(config: Config) -> Result<Behaviour, ConfigError> {
        config.validate()?;
        let buckets = usize::try_from(config.spike_buckets()).unwrap_or(usize::MAX);
        Ok(Behaviour {
            classifier: Classifier::new(&config.privileged),
            config,
            actors: HashedMap::default(),
            seq: 0,
            classified: HashedMap::default(),
            buckets,
            scratch: Scratch::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Actors remembered.
    pub fn actors(&self) -> usize {
        self.actors.len()
    }

    /// Distinct values of a new-value kind remembered for an actor (`None`
    /// for an unknown actor or another kind).
    pub fn known_values(&self, actor: &str, kind: Kind) -> Option<usize> {
        let slot = kind.values_slot()?;
        let actor = self.actors.get(&hash_str(actor))?;
        actor.values.len(slot)
    }

    /// Learns from the next event of the ledger, and adds the anomalies it
    /// raises to `out`.
    pub fn observe(&mut self, obs: &Observation<'_>, out: &mut Vec<Anomaly>) {
        let Some(actor_name) = obs.actor.filter(|a| !a.is_empty()) else {
            return;
        };
        self.seq += 1;
        let t = obs.time_ms;
        let config = &self.config;
        let action = obs.action.filter(|a| !a.is_empty());
        let api_key = action.map(|a| hash_pair(hash_str(obs.service.unwrap_or("")), hash_str(a)));
        let privileged = match (action, api_key) {
            (Some(action), Some(key))
                if config.action_spike.enabled || config.denied_then_allowed.privileged_only =>
            {
                match self.classified.get(&key) {
                    Some(p) => *p,
                    None => {
                        let p = self.classifier.is_privileged(obs.service, action);
                        if self.classified.len() >= MAX_CLASSIFIED {
                            self.classified.clear();
                        }
                        self.classified.insert(key, p);
                        p
                    }
                }
            }
            _ => false,
        };

        let source_key = hash_str(obs.source);
        let before = self.actors.len();
        let buckets = self.buckets;
        let actor = self
            .actors
            .entry(hash_str(actor_name))
            .or_insert_with(|| Actor {
                first_ms: t,
                last_seq: 0,
                source: (source_key, t),
                more_sources: Vec::new(),
                values: Known::default(),
                hours: Hours::default(),
                activity: config.action_spike.enabled.then(|| Activity::new(buckets)),
                retries: Retries::default(),
            });
        actor.last_seq = self.seq;
        actor.first_ms = actor.first_ms.min(t);
        let seen = Seen {
            obs,
            actor: actor_name,
            source_first_ms: actor.source_first(source_key, t),
        };

        let values = &mut actor.values;
        if config.new_ip.enabled
            && let Some(ip) = obs.ip.filter(|v| !v.is_empty())
        {
            values.observe(&config.new_ip, Kind::NewIp, &seen, hash_ip(ip), ip, out);
        }
        if config.new_user_agent.enabled
            && let Some(agent) = obs.user_agent.filter(|v| !v.is_empty())
        {
            let key = hash_str(agent);
            values.observe(
                &config.new_user_agent,
                Kind::NewUserAgent,
                &seen,
                key,
                agent,
                out,
            );
        }
        if config.new_resource.enabled {
            for resource in obs.resources.iter().filter(|v| !v.is_empty()) {
                let key = hash_str(resource);
                let c = &config.new_resource;
                values.observe(c, Kind::NewResource, &seen, key, resource, out);
            }
        }
        if config.new_api.enabled
            && let (Some(action), Some(key)) = (action, api_key)
        {
            values.observe(&config.new_api, Kind::NewApi, &seen, key, action, out);
        }
        if config.unusual_hour.enabled {
            actor
                .hours
                .observe(&config.unusual_hour, actor.first_ms, &seen, out);
        }
        if let Some(activity) = &mut actor.activity {
            activity.observe(
                &config.action_spike,
                privileged,
                actor.first_ms,
                &seen,
                &mut self.scratch,
                out,
            );
        }
        let d = &config.denied_then_allowed;
        if d.enabled
            && (privileged || !d.privileged_only)
            && let (Some(action), Some(key)) = (action, api_key)
        {
            actor.retries.observe(d, key, action, &seen, out);
        }

        if self.actors.len() > before && self.actors.len() > self.config.max_actors {
            self.forget_least_recent();
        }
    }

    /// Forgets the least recently seen actors: enough to be back at
    /// `max_actors`, and a sixteenth of it more, so that sweeps are rare.
    fn forget_least_recent(&mut self) {
        let max = self.config.max_actors;
        let excess = self.actors.len().saturating_sub(max) + (max / 16).max(1);
        let mut recency: Vec<u64> = self.actors.values().map(|a| a.last_seq).collect();
        let Some(nth) = excess.checked_sub(1).filter(|n| *n < recency.len()) else {
            self.actors.clear();
            return;
        };
        let (_, cutoff, _) = recency.select_nth_unstable(nth);
        let cutoff = *cutoff;
        self.actors.retain(|_, a| a.last_seq > cutoff);
    }
}

impl Actor {
    /// When the actor was first seen in a source (by hash), learning that
    /// it is seen there at `t`.
    fn source_first(&mut self, source: u64, t: i64) -> i64 {
        let known = std::iter::once(&mut self.source)
            .chain(&mut self.more_sources)
            .find(|(s, _)| *s == source);
        if let Some((_, first)) = known {
            *first = (*first).min(t);
            return *first;
        }
        if self.more_sources.len() + 1 < MAX_SOURCES {
            self.more_sources.push((source, t));
            return t;
        }
        self.first_ms
    }
}

/// A value as an anomaly shows it: cut to [`MAX_VALUE`] bytes.
fn display(value: &str) -> String {
    if value.len() <= MAX_VALUE {
        return value.to_owned();
    }
    let mut end = MAX_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut shown = value.get(..end).unwrap_or_default().to_owned();
    shown.push('…');
    shown
}

/// `1 day`, `2 days`.
fn counted(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A time as `2024-05-01T14:00Z` (UTC, to the minute).
fn utc_minute(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let minutes = ms.rem_euclid(DAY_MS) / 60_000;
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's
    // `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}Z",
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_minutes() {
        assert_eq!(utc_minute(0), "1970-01-01T00:00Z");
        assert_eq!(utc_minute(1_714_572_000_000), "2024-05-01T14:00Z");
        assert_eq!(utc_minute(951_782_400_000), "2000-02-29T00:00Z");
        assert_eq!(utc_minute(-60_000), "1969-12-31T23:59Z");
        assert!(!utc_minute(i64::MAX).is_empty());
        assert!(!utc_minute(i64::MIN).is_empty());
    }

    #[test]
    fn long_values_are_cut_on_a_character() {
        let long = "é".repeat(400);
        let shown = display(&long);
        assert!(shown.len() <= MAX_VALUE + '…'.len_utf8());
        assert!(shown.ends_with('…'));
        assert_eq!(display("short"), "short");
    }
}

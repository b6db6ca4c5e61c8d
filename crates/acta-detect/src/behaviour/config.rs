//! Configuration of the behavioural detectors.
//!
//! Every field has a default ([`Config::default`]), so a configuration file
//! names only what it changes; an unknown field is an error, so a typo is
//! not silently ignored. In TOML:
//!
//! ```toml
//! max_actors = 200000
//!
//! [new_resource]
//! enabled = false
//!
//! [action_spike]
//! bucket_minutes = 30
//! min_count = 20
//!
//! [privileged]
//! extra = ["*Snapshot*"]
//! ```

use serde::Deserialize;

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The most buckets a spike history may hold per actor (`window_days` ×
/// buckets per day): two bytes and one bit each, per actor that makes
/// privileged or destructive actions.
pub const MAX_SPIKE_BUCKETS: u64 = 100_000;

/// All the behavioural detectors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The most actors remembered at once (default 1,000,000). Past it, the
    /// least recently seen sixteenth of them are forgotten in one sweep (so
    /// the cost per event stays constant); a forgotten actor that comes
    /// back starts learning afresh. An actor costs about 0.6 KB, 10 to 20
    /// bytes per remembered value, and, once it has made a privileged or
    /// destructive action, two bytes per spike bucket (0.7 KB with the
    /// default window).
    pub max_actors: usize,
    /// First use of a source IP (`src_endpoint.ip`); IPv6 addresses count by
    /// their /64 network.
    pub new_ip: NewValueConfig,
    /// First use of a user agent (`http_request.user_agent`).
    pub new_user_agent: NewValueConfig,
    /// First action on a resource (each of `resources[].uid`, or the name
    /// when there is no uid).
    pub new_resource: NewValueConfig,
    /// First call of an API: the action (`api.operation`) within its
    /// service (`api.service.name`).
    pub new_api: NewValueConfig,
    /// Activity at an hour of the day (UTC) unusual for the actor.
    pub unusual_hour: UnusualHourConfig,
    /// A spike of privileged or destructive actions.
    pub action_spike: SpikeConfig,
    /// A failed action that then succeeds.
    pub denied_then_allowed: DeniedThenAllowedConfig,
    /// Which actions are privileged or destructive, beyond the built-in
    /// classification ([`crate::behaviour::privileged`]).
    pub privileged: PrivilegedConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_actors: 1_000_000,
            new_ip: NewValueConfig::default(),
            new_user_agent: NewValueConfig::default(),
            new_resource: NewValueConfig::default(),
            new_api: NewValueConfig::default(),
            unusual_hour: UnusualHourConfig::default(),
            action_spike: SpikeConfig::default(),
            denied_then_allowed: DeniedThenAllowedConfig::default(),
            privileged: PrivilegedConfig::default(),
        }
    }
}

/// A "first use of a new value" detector (IP, user agent, resource, API).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewValueConfig {
    /// Whether the detector runs (default true). A disabled detector keeps
    /// no state.
    pub enabled: bool,
    /// Days of learning (default 7): values are remembered but not
    /// reported until this long after the actor's first value of this kind
    /// and after the actor's first event in the event's source (a source
    /// new to an actor brings its own vocabulary of APIs and resources).
    pub learning_days: u32,
    /// OCSF `severity_id` of the anomalies (default 2, low).
    pub severity_id: u8,
    /// The most distinct values remembered per actor (default 10,000).
    /// An actor that reaches it stops learning and stops being reported
    /// for this kind: for an actor with that many values, one more is not
    /// news.
    pub max_values: u32,
    /// The most anomalies of this kind per actor and UTC day (default 10);
    /// further new values that day are learnt silently.
    pub max_alerts_per_day: u32,
}

impl Default for NewValueConfig {
    fn default() -> NewValueConfig {
        NewValueConfig {
            enabled: true,
            learning_days: 7,
            severity_id: 2,
            max_values: 10_000,
            max_alerts_per_day: 10,
        }
    }
}

/// The unusual-hour detector.
///
/// Each actor has a histogram of its events by hour of the day (UTC) and,
/// per hour, the last day it was active then. An event is unusual when, for
/// its hour and the `neighbour_hours` either side of it, both hold: those
/// hours together have less than `max_share` of the actor's events, and the
/// actor was not active in any of them in the last `quiet_days` days. The
/// second condition makes it fire at most once per actor and hour of the
/// day within `quiet_days`. The histogram covers the actor's whole history;
/// its counts are halved whenever they reach 2²⁰ events in all, so a very
/// busy actor's follows its recent habits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnusualHourConfig {
    /// Whether the detector runs (default true).
    pub enabled: bool,
    /// Days of learning after the actor's first event (default 7).
    pub learning_days: u32,
    /// OCSF `severity_id` of the anomalies (default 2, low).
    pub severity_id: u8,
    /// The fraction of the actor's events below which an hour is rare
    /// (default 0.01).
    pub max_share: f64,
    /// Hours either side that count with the event's hour (default 1), so
    /// starting work an hour early is not unusual. At most 11.
    pub neighbour_hours: u8,
    /// Days without activity at the hour for it to be unusual (default 14).
    pub quiet_days: u32,
    /// Events the actor needs in its history before an hour can be judged
    /// (default 100).
    pub min_events: u32,
}

impl Default for UnusualHourConfig {
    fn default() -> UnusualHourConfig {
        UnusualHourConfig {
            enabled: true,
            learning_days: 7,
            severity_id: 2,
            max_share: 0.01,
            neighbour_hours: 1,
            quiet_days: 14,
            min_events: 100,
        }
    }
}

/// The spike detector: privileged or destructive actions per time bucket
/// against the actor's own robust baseline.
///
/// The baseline is the median and the median absolute deviation (MAD) of
/// the actor's counts over the buckets of the last `window_days` in which
/// it was active at all (so a bucket of ordinary work without a single
/// privileged action counts, as a zero; a bucket the actor was away does
/// not). The newest bucket is reported, once, when its count reaches
/// `min_count` and exceeds `median + mad_multiplier × max(1.4826 × MAD,
/// mad_floor)` (1.4826 × MAD estimates the standard deviation of normal
/// data).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpikeConfig {
    /// Whether the detector runs (default true).
    pub enabled: bool,
    /// Days of learning after the actor's first event (default 7).
    pub learning_days: u32,
    /// OCSF `severity_id` of the anomalies (default 4, high).
    pub severity_id: u8,
    /// Bucket length in minutes (default 60).
    pub bucket_minutes: u32,
    /// Days of buckets in the baseline (default 14).
    pub window_days: u32,
    /// How many (scaled) MADs above the median a spike is (default 5).
    pub mad_multiplier: f64,
    /// The least spread assumed (default 1), so a perfectly regular actor
    /// (MAD 0) is not reported for one action more than usual.
    pub mad_floor: f64,
    /// The least count reported, whatever the baseline (default 10).
    pub min_count: u32,
}

impl Default for SpikeConfig {
    fn default() -> SpikeConfig {
        SpikeConfig {
            enabled: true,
            learning_days: 7,
            severity_id: 4,
            bucket_minutes: 60,
            window_days: 14,
            mad_multiplier: 5.0,
            mad_floor: 1.0,
            min_count: 10,
        }
    }
}

/// The denied-then-allowed detector: an action that failed, then succeeded
/// for the same actor (same service and action) soon after. It needs no
/// history, so it has no learning period.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeniedThenAllowedConfig {
    /// Whether the detector runs (default true).
    pub enabled: bool,
    /// OCSF `severity_id` of the anomalies (default 3, medium).
    pub severity_id: u8,
    /// The longest time from the last failure to the success, in seconds
    /// (default 600); failures closer than this to each other count as one
    /// run.
    pub window_seconds: u32,
    /// Failures in the run needed (default 1).
    pub min_failures: u32,
    /// Only privileged or destructive actions (default false).
    pub privileged_only: bool,
    /// The most anomalies of this kind per actor and UTC day (default 10).
    pub max_alerts_per_day: u32,
}

impl Default for DeniedThenAllowedConfig {
    fn default() -> DeniedThenAllowedConfig {
        DeniedThenAllowedConfig {
            enabled: true,
            severity_id: 3,
            window_seconds: 600,
            min_failures: 1,
            privileged_only: false,
            max_alerts_per_day: 10,
        }
    }
}

/// Additions to the built-in classification of privileged or destructive
/// actions. Patterns match the action name (`api.operation`) as a whole,
/// ASCII case-insensitively; `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivilegedConfig {
    /// Actions that are privileged or destructive too (default none).
    pub extra: Vec<String>,
    /// Actions that are not, whatever the built-in classification says
    /// (default none). Wins over `extra`.
    pub exclude: Vec<String>,
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("behaviour configuration: {field}: {reason}")]
pub struct ConfigError {
    /// The field, as written in the configuration (`action_spike.min_count`).
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn error(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

fn check_severity(field: &'static str, severity_id: u8) -> Result<(), ConfigError> {
    if (1..=6).contains(&severity_id) {
        Ok(())
    } else {
        Err(error(
            field,
            "an OCSF severity_id from 1 (informational) to 6 (fatal)",
        ))
    }
}

fn check_learning(field: &'static str, days: u32) -> Result<(), ConfigError> {
    if days <= 3650 {
        Ok(())
    } else {
        Err(error(field, "at most 3650 days"))
    }
}

impl Config {
    /// Checks every value is in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_actors == 0 {
            return Err(error("max_actors", "at least 1"));
        }
        for (c, severity, learning) in [
            (&self.new_ip, "new_ip.severity_id", "new_ip.learning_days"),
            (
                &self.new_user_agent,
                "new_user_agent.severity_id",
                "new_user_agent.learning_days",
            ),
            (
                &self.new_resource,
                "new_resource.severity_id",
                "new_resource.learning_days",
            ),
            (
                &self.new_api,
                "new_api.severity_id",
                "new_api.learning_days",
            ),
        ] {
            check_severity(severity, c.severity_id)?;
            check_learning(learning, c.learning_days)?;
        }
        let h = &self.unusual_hour;
        check_severity("unusual_hour.severity_id", h.severity_id)?;
        check_learning("unusual_hour.learning_days", h.learning_days)?;
        if !(0.0..=1.0).contains(&h.max_share) {
            return Err(error("unusual_hour.max_share", "a fraction from 0 to 1"));
        }
        if h.neighbour_hours > 11 {
            return Err(error("unusual_hour.neighbour_hours", "at most 11"));
        }
        if h.quiet_days > 3650 {
            return Err(error("unusual_hour.quiet_days", "at most 3650 days"));
        }
        let s = &self.action_spike;
        check_severity("action_spike.severity_id", s.severity_id)?;
        check_learning("action_spike.learning_days", s.learning_days)?;
        if s.bucket_minutes == 0 {
            return Err(error("action_spike.bucket_minutes", "at least 1"));
        }
        if s.window_days == 0 {
            return Err(error("action_spike.window_days", "at least 1"));
        }
        if self.spike_buckets() > MAX_SPIKE_BUCKETS {
            return Err(error(
                "action_spike.window_days",
                format!("window_days × buckets per day must be at most {MAX_SPIKE_BUCKETS}"),
            ));
        }
        if !(s.mad_multiplier.is_finite() && s.mad_multiplier >= 0.0) {
            return Err(error("action_spike.mad_multiplier", "a number, 0 or more"));
        }
        if !(s.mad_floor.is_finite() && s.mad_floor >= 0.0) {
            return Err(error("action_spike.mad_floor", "a number, 0 or more"));
        }
        let d = &self.denied_then_allowed;
        check_severity("denied_then_allowed.severity_id", d.severity_id)?;
        if d.window_seconds == 0 {
            return Err(error("denied_then_allowed.window_seconds", "at least 1"));
        }
        for pattern in self.privileged.extra.iter().chain(&self.privileged.exclude) {
            if pattern.is_empty() {
                return Err(error("privileged", "an empty pattern"));
            }
        }
        Ok(())
    }

    /// Buckets in the spike window (at least 2: the current one and one of
    /// history).
    pub(crate) fn spike_buckets(&self) -> u64 {
        let s = &self.action_spike;
        let window_minutes = u64::from(s.window_days) * 24 * 60;
        window_minutes
            .div_ceil(u64::from(s.bucket_minutes.max(1)))
            .max(2)
    }
}

//! Denied then allowed: an action that failed, then succeeded soon after.

use super::config::{DAY_MS, DeniedThenAllowedConfig};
use super::{Anomaly, Baseline, Kind, Outcome, Seen, display};

/// The most actions with a run of failures remembered per actor; a new one
/// past it replaces the one that failed longest ago.
const MAX_RUNS: usize = 16;

/// A run of failures of one action.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// The action's key (service and action).
    key: u64,
    first_index: u64,
    last_index: u64,
    first_ms: i64,
    last_ms: i64,
    failures: u32,
}

/// An actor's recent runs of failures.
#[derive(Debug)]
pub(crate) struct Retries {
    runs: Vec<Run>,
    /// The UTC day of `alerts`.
    alert_day: i64,
    /// Anomalies reported on `alert_day`.
    alerts: u32,
}

impl Default for Retries {
    fn default() -> Retries {
        Retries {
            runs: Vec::new(),
            alert_day: i64::MIN,
            alerts: 0,
        }
    }
}

impl Retries {
    /// Follows an action with a known outcome: a failure extends or starts
    /// a run, a success ends it (and is reported if it came soon enough).
    pub(crate) fn observe(
        &mut self,
        config: &DeniedThenAllowedConfig,
        key: u64,
        action: &str,
        seen: &Seen<'_, '_>,
        out: &mut Vec<Anomaly>,
    ) {
        let t = seen.obs.time_ms;
        let index = seen.obs.index;
        let window_ms = i64::from(config.window_seconds) * 1000;
        let found = self.runs.iter().position(|r| r.key == key);
        match seen.obs.outcome {
            Outcome::Unknown => {}
            Outcome::Failure => match found.and_then(|i| self.runs.get_mut(i)) {
                Some(run) if t.abs_diff(run.last_ms) <= window_ms.unsigned_abs() => {
                    run.failures = run.failures.saturating_add(1);
                    run.last_index = index;
                    run.last_ms = run.last_ms.max(t);
                }
                Some(run) => *run = Run::new(key, index, t),
                None => {
                    if self.runs.len() >= MAX_RUNS
                        && let Some(oldest) = self
                            .runs
                            .iter()
                            .enumerate()
                            .min_by_key(|(i, r)| (r.last_ms, *i))
                            .map(|(i, _)| i)
                    {
                        self.runs.swap_remove(oldest);
                    }
                    self.runs.push(Run::new(key, index, t));
                }
            },
            Outcome::Success => {
                let Some(run) = found.map(|i| self.runs.swap_remove(i)) else {
                    return;
                };
                let elapsed = t.saturating_sub(run.last_ms);
                if elapsed < 0 || elapsed > window_ms || run.failures < config.min_failures {
                    return;
                }
                let day = t.div_euclid(DAY_MS);
                if day > self.alert_day {
                    self.alert_day = day;
                    self.alerts = 0;
                }
                if self.alerts >= config.max_alerts_per_day {
                    return;
                }
                self.alerts += 1;
                let times = match run.failures {
                    1 => "once".to_owned(),
                    n => format!("{n} times"),
                };
                let name = match seen.obs.service {
                    Some(service) if !service.is_empty() => {
                        format!("{} ({})", display(action), display(service))
                    }
                    _ => display(action),
                };
                let message = format!(
                    "{} failed {name} {times}, then succeeded {} s after the last failure",
                    seen.actor,
                    elapsed / 1000
                );
                let mut events = vec![run.first_index];
                if run.last_index != run.first_index {
                    events.push(run.last_index);
                }
                events.push(index);
                out.push(seen.anomaly(
                    Kind::DeniedThenAllowed,
                    config.severity_id,
                    message,
                    display(action),
                    events,
                    Baseline::Retry {
                        failures: u64::from(run.failures),
                        elapsed_ms: elapsed,
                        first_failure_ms: run.first_ms,
                    },
                ));
            }
        }
    }
}

impl Run {
    fn new(key: u64, index: u64, t: i64) -> Run {
        Run {
            key,
            first_index: index,
            last_index: index,
            first_ms: t,
            last_ms: t,
            failures: 1,
        }
    }
}

//! Activity at an hour of the day unusual for the actor.

use super::config::{DAY_MS, UnusualHourConfig};
use super::{Anomaly, Baseline, Kind, Seen};

const HOUR_MS: i64 = 3_600_000;

/// Counts are halved when their total reaches this, so they never overflow
/// and a very busy actor's histogram follows its recent habits.
const HALVE_AT: u32 = 1 << 20;

/// An actor's events by hour of the day (UTC).
#[derive(Debug)]
pub(crate) struct Hours {
    /// Events per hour of the day.
    counts: [u32; 24],
    /// Sum of `counts`.
    total: u32,
    /// Per hour of the day, the last day (since the epoch, within the
    /// range of `i32`) with an event at that hour (`i32::MIN`: none).
    last_day: [i32; 24],
}

impl Default for Hours {
    fn default() -> Hours {
        Hours {
            counts: [0; 24],
            total: 0,
            last_day: [i32::MIN; 24],
        }
    }
}

impl Hours {
    /// Judges the event's hour against the history, then adds it.
    pub(crate) fn observe(
        &mut self,
        config: &UnusualHourConfig,
        actor_first_ms: i64,
        seen: &Seen<'_, '_>,
        out: &mut Vec<Anomaly>,
    ) {
        let t = seen.obs.time_ms;
        let day = t.div_euclid(DAY_MS);
        let hour = (t.rem_euclid(DAY_MS) / HOUR_MS) as usize;
        let learnt = t.saturating_sub(actor_first_ms) >= i64::from(config.learning_days) * DAY_MS;
        if learnt && self.total >= config.min_events && self.total > 0 {
            self.judge(config, day, hour, seen, out);
        }
        if let Some(c) = self.counts.get_mut(hour) {
            *c += 1;
            self.total += 1;
        }
        if let Some(d) = self.last_day.get_mut(hour) {
            let day = day.clamp(i64::from(i32::MIN) + 1, i64::from(i32::MAX)) as i32;
            *d = (*d).max(day);
        }
        if self.total >= HALVE_AT {
            for c in &mut self.counts {
                *c /= 2;
            }
            self.total = self.counts.iter().sum();
        }
    }

    fn judge(
        &self,
        config: &UnusualHourConfig,
        day: i64,
        hour: usize,
        seen: &Seen<'_, '_>,
        out: &mut Vec<Anomaly>,
    ) {
        let n = usize::from(config.neighbour_hours);
        let since = day.saturating_sub(i64::from(config.quiet_days));
        let mut around = 0u64;
        for h in (hour + 24 - n..=hour + 24 + n).map(|h| h % 24) {
            around += u64::from(self.counts.get(h).copied().unwrap_or(0));
            if self.last_day.get(h).is_some_and(|d| i64::from(*d) >= since) {
                return;
            }
        }
        let share = around as f64 / f64::from(self.total);
        if share >= config.max_share {
            return;
        }
        let within = match n {
            0 => " at that hour".to_owned(),
            1 => " within an hour of it".to_owned(),
            n => format!(" within {n} hours of it"),
        };
        let message = format!(
            "{} was active at {hour:02}:00 UTC: {:.1}% of its {} events fall{within}, none in the last {} days",
            seen.actor,
            share * 100.0,
            self.total,
            config.quiet_days
        );
        out.push(seen.anomaly(
            Kind::UnusualHour,
            config.severity_id,
            message,
            format!("{hour:02}:00"),
            vec![seen.obs.index],
            Baseline::Hour {
                hour: hour as u8,
                share,
                events: u64::from(self.total),
                quiet_days: config.quiet_days,
            },
        ));
    }
}

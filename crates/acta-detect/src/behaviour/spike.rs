//! Spikes of privileged or destructive actions against the actor's robust
//! baseline.

use super::config::{DAY_MS, SpikeConfig};
use super::{Anomaly, Baseline, Kind, Seen, counted, utc_minute};

/// The most events an anomaly links: the first privileged events of the
/// bucket, and the one that crossed the threshold.
pub(crate) const MAX_LINKED: usize = 32;

/// 1.4826 × MAD estimates the standard deviation of normal data.
const MAD_SCALE: f64 = 1.4826;

/// An actor's activity over the spike window, bucket by bucket, in rings
/// indexed by bucket number modulo the window's length.
#[derive(Debug)]
pub(crate) struct Activity {
    /// Buckets in the window.
    buckets: usize,
    /// The newest bucket seen (`i64::MIN`: none yet).
    head: i64,
    /// One bit per bucket: whether the actor did anything in it.
    active: Box<[u64]>,
    /// Privileged or destructive actions per bucket (saturating), from the
    /// actor's first one on: before it, every active bucket counted zero.
    counts: Option<Box<[u16]>>,
    /// The last bucket reported.
    reported: i64,
    /// The first privileged events of the head bucket, by ledger index.
    linked: Vec<u64>,
    /// The baseline of the head bucket, once computed.
    cached: Option<(i64, Stats)>,
}

/// A baseline: median and MAD over the active buckets before the head.
#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    mad: f64,
    buckets: u64,
}

impl Activity {
    /// An empty history of `buckets` buckets.
    pub(crate) fn new(buckets: usize) -> Activity {
        Activity {
            buckets,
            head: i64::MIN,
            active: vec![0; buckets.div_ceil(64)].into_boxed_slice(),
            counts: None,
            reported: i64::MIN,
            linked: Vec::new(),
            cached: None,
        }
    }

    /// Counts the event (`privileged` or not) and, if privileged, judges its
    /// bucket.
    pub(crate) fn observe(
        &mut self,
        config: &SpikeConfig,
        privileged: bool,
        actor_first_ms: i64,
        seen: &Seen<'_, '_>,
        scratch: &mut Scratch,
        out: &mut Vec<Anomaly>,
    ) {
        let t = seen.obs.time_ms;
        let buckets = self.buckets;
        let bucket_ms = i64::from(config.bucket_minutes) * 60_000;
        let bucket = t.div_euclid(bucket_ms);
        let window = buckets as i64;
        if self.head == i64::MIN || bucket.saturating_sub(self.head) >= window {
            self.active.fill(0);
            if let Some(counts) = &mut self.counts {
                counts.fill(0);
            }
            self.advance_to(bucket);
        } else if bucket > self.head {
            for b in self.head + 1..=bucket {
                let slot = slot(b, buckets);
                self.set_active(slot, false);
                if let Some(c) = self.counts.as_mut().and_then(|c| c.get_mut(slot)) {
                    *c = 0;
                }
            }
            self.advance_to(bucket);
        } else if self.head.saturating_sub(bucket) >= window {
            // Older than the window: nothing left to count it in.
            return;
        } else if bucket < self.head {
            // Out of order, into a bucket of the baseline.
            self.cached = None;
        }
        let slot = slot(bucket, buckets);
        self.set_active(slot, true);
        if !privileged {
            return;
        }
        let counts = self
            .counts
            .get_or_insert_with(|| vec![0; buckets].into_boxed_slice());
        let Some(count) = counts.get_mut(slot) else {
            return;
        };
        *count = count.saturating_add(1);
        let count = *count;
        if bucket != self.head {
            // Only the newest bucket is judged.
            return;
        }
        if self.linked.len() < MAX_LINKED - 1 {
            self.linked.push(seen.obs.index);
        }
        if !config.enabled
            || self.reported == bucket
            || u32::from(count) < config.min_count
            || t.saturating_sub(actor_first_ms) < i64::from(config.learning_days) * DAY_MS
        {
            return;
        }
        let stats = match self.cached {
            Some((b, stats)) if b == bucket => stats,
            _ => {
                let stats = self.baseline(slot, scratch);
                self.cached = Some((bucket, stats));
                stats
            }
        };
        let threshold =
            stats.median + config.mad_multiplier * (MAD_SCALE * stats.mad).max(config.mad_floor);
        if f64::from(count) <= threshold {
            return;
        }
        self.reported = bucket;
        let mut events = self.linked.clone();
        if events.last() != Some(&seen.obs.index) {
            events.push(seen.obs.index);
        }
        let start = utc_minute(bucket.saturating_mul(bucket_ms));
        let (span, periods) = if config.bucket_minutes == 60 {
            ("hour".to_owned(), ("active hour", "active hours"))
        } else {
            (
                format!("{} minutes", config.bucket_minutes),
                ("active period", "active periods"),
            )
        };
        let message = format!(
            "{} made {count} privileged or destructive actions in the {span} from {start}; \
             usually {} (MAD {}) over {} of the last {}",
            seen.actor,
            round(stats.median),
            round(stats.mad),
            counted(stats.buckets, periods.0, periods.1),
            counted(u64::from(config.window_days), "day", "days"),
        );
        out.push(seen.anomaly(
            Kind::ActionSpike,
            config.severity_id,
            message,
            start,
            events,
            Baseline::Spike {
                count: u64::from(count),
                median: stats.median,
                mad: stats.mad,
                threshold,
                buckets: stats.buckets,
                bucket_minutes: config.bucket_minutes,
            },
        ));
    }

    fn advance_to(&mut self, bucket: i64) {
        self.head = bucket;
        self.linked.clear();
    }

    fn set_active(&mut self, slot: usize, on: bool) {
        if let Some(word) = self.active.get_mut(slot / 64) {
            let bit = 1u64 << (slot % 64);
            if on {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    fn is_active(&self, slot: usize) -> bool {
        self.active
            .get(slot / 64)
            .is_some_and(|word| word & (1u64 << (slot % 64)) != 0)
    }

    /// Median and MAD of the counts of the active buckets but `head_slot`.
    fn baseline(&self, head_slot: usize, scratch: &mut Scratch) -> Stats {
        scratch.counts.clear();
        if let Some(counts) = &self.counts {
            for (slot, count) in counts.iter().enumerate() {
                if slot != head_slot && self.is_active(slot) {
                    scratch.counts.push(f64::from(*count));
                }
            }
        }
        let buckets = scratch.counts.len() as u64;
        let centre = median(&mut scratch.counts);
        for c in &mut scratch.counts {
            *c = (*c - centre).abs();
        }
        Stats {
            median: centre,
            mad: median(&mut scratch.counts),
            buckets,
        }
    }
}

/// Reusable buffers for baselines.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    counts: Vec<f64>,
}

fn slot(bucket: i64, buckets: usize) -> usize {
    bucket.rem_euclid(buckets as i64) as usize
}

/// The median of the values (0 for none), sorting them.
fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    let at = |i: usize| values.get(i).copied().unwrap_or(0.0);
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        at(n / 2)
    } else {
        (at(n / 2 - 1) + at(n / 2)) / 2.0
    }
}

/// A figure for a message: whole when it is, else one decimal.
fn round(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [3.0]), 3.0);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(round(2.0), "2");
        assert_eq!(round(2.5), "2.5");
    }
}

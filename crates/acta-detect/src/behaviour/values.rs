//! First use of a new value: source IP, user agent, resource, API.

use super::config::{DAY_MS, NewValueConfig};
use super::hash::HashedSet;
use super::{Anomaly, Baseline, Kind, Seen, counted, display};

/// Salts that keep the kinds apart in an actor's one set of hashes.
const SALTS: [u64; 4] = [
    0x5be0_cd19_137e_2179,
    0x1f83_d9ab_fb41_bd6b,
    0x9b05_688c_2b3e_6c1f,
    0x510e_527f_ade6_82d1,
];

/// The values an actor has used, all kinds in one set of salted hashes (one
/// table to reach per event rather than four).
#[derive(Debug, Default)]
pub(crate) struct Known {
    seen: HashedSet,
    kinds: [PerKind; 4],
}

/// What is known of the values of one kind.
#[derive(Debug)]
struct PerKind {
    /// The time of the actor's first value of this kind (`i64::MAX`: none).
    first_ms: i64,
    /// Values of this kind in the set.
    len: u32,
    /// Anomalies reported on `alert_day`.
    alerts: u32,
    /// The UTC day of `alerts`.
    alert_day: i64,
}

impl Default for PerKind {
    fn default() -> PerKind {
        PerKind {
            first_ms: i64::MAX,
            len: 0,
            alerts: 0,
            alert_day: i64::MIN,
        }
    }
}

impl Known {
    /// How many values of the kind in `slot` are known.
    pub(crate) fn len(&self, slot: usize) -> Option<usize> {
        self.kinds.get(slot).map(|k| k.len as usize)
    }

    /// Learns a value (by hash) of a new-value kind and reports it if it
    /// is new and learning is over.
    pub(crate) fn observe(
        &mut self,
        config: &NewValueConfig,
        kind: Kind,
        seen: &Seen<'_, '_>,
        key: u64,
        value: &str,
        out: &mut Vec<Anomaly>,
    ) {
        let Some(slot) = kind.values_slot() else {
            return;
        };
        let (Some(this), Some(salt)) = (self.kinds.get_mut(slot), SALTS.get(slot)) else {
            return;
        };
        let t = seen.obs.time_ms;
        this.first_ms = this.first_ms.min(t);
        let known = this.len;
        // A full actor neither learns nor reports (see `max_values`).
        if known >= config.max_values || !self.seen.insert(key ^ salt) {
            return;
        }
        this.len += 1;
        let start = this.first_ms.max(seen.source_first_ms);
        if t.saturating_sub(start) < i64::from(config.learning_days) * DAY_MS {
            return;
        }
        let day = t.div_euclid(DAY_MS);
        if day > this.alert_day {
            this.alert_day = day;
            this.alerts = 0;
        }
        if this.alerts >= config.max_alerts_per_day {
            return;
        }
        this.alerts += 1;
        let days = t.saturating_sub(this.first_ms) / DAY_MS;
        let shown = display(value);
        let (what, one, many) = match kind {
            Kind::NewIp => ("source IP", "IP", "IPs"),
            Kind::NewUserAgent => ("user agent", "user agent", "user agents"),
            Kind::NewResource => ("resource", "resource", "resources"),
            _ => ("API", "API", "APIs"),
        };
        let history = format!(
            "({} known over {})",
            counted(u64::from(known), one, many),
            counted(u64::try_from(days).unwrap_or(0), "day", "days")
        );
        let message = match (kind, seen.obs.service) {
            (Kind::NewApi, Some(service)) if !service.is_empty() => format!(
                "{} called {shown} ({}) for the first time {history}",
                seen.actor,
                display(service)
            ),
            (Kind::NewApi, _) => {
                format!("{} called {shown} for the first time {history}", seen.actor)
            }
            (Kind::NewResource, _) => {
                format!("{} acted on a new resource {shown} {history}", seen.actor)
            }
            _ => format!("{} used a new {what} {shown} {history}", seen.actor),
        };
        out.push(seen.anomaly(
            kind,
            config.severity_id,
            message,
            shown,
            vec![seen.obs.index],
            Baseline::Known {
                known: u64::from(known),
                days,
            },
        ));
    }
}

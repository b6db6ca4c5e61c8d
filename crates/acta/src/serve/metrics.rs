//! `GET /metrics`: the server's figures in the Prometheus text exposition format (0.0.4).
//!
//! - `acta_http_requests_total{route,code}`: requests answered, by route pattern and status.
//! - `acta_ingest_requests_total`, `acta_ingest_events_total{format}`, `acta_ingest_bytes_total`,
//!   `acta_ingest_rejected_total`: what ingest stored (entries by the format that read them).
//! - `acta_ingest_ack_seconds`: from a request's body being read to its answer (the batch
//!   durable), a histogram.
//! - `acta_reads_recorded_total{route}`: reads of the trail recorded in the ledger.
//! - `acta_ledger_entries`, `acta_checkpoint_age_seconds`: the latest checkpoint's size and age.
//! - `acta_alerts_total{severity}`, `acta_time_to_insight_seconds` (sum and count, from the event
//!   and from its receipt): alerts raised by the server's detection.
//! - `acta_sink_delivered_total{sink}`, `acta_sink_failures_total{sink}`,
//!   `acta_sink_dropped_total{sink}`: alert deliveries.
//! - `acta_writer_up`: 1 while the ledger writer runs.
//!
//! Counters live in memory from the server's start, as Prometheus expects of counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the acknowledgement histogram, in seconds.
const ACK_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    ingest_requests: AtomicU64,
    ingest_bytes: AtomicU64,
    ingest_rejected: AtomicU64,
    events: Mutex<BTreeMap<String, u64>>,
    ack_buckets: [AtomicU64; ACK_BUCKETS.len()],
    ack_count: AtomicU64,
    ack_sum_us: AtomicU64,
    reads: Mutex<BTreeMap<String, u64>>,
    alerts: Mutex<BTreeMap<String, u64>>,
    insight: Mutex<Insight>,
}

#[derive(Debug, Default)]
struct Insight {
    from_event_ms: i128,
    from_receipt_ms: i128,
    count: u64,
}

/// A sink's delivery counts, as the sinks report them.
pub struct SinkFigures {
    pub name: String,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
}

/// Figures read when the metrics are asked for.
pub struct Gauges {
    pub ledger_entries: Option<u64>,
    pub checkpoint_age: Option<Duration>,
    pub writer_up: bool,
    pub sinks: Vec<SinkFigures>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K, by: u64) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += by;
    }
}

/// A label value, escaped as the exposition format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// A request answered with `code`, under its route pattern.
    pub fn request(&self, route: &str, code: u16) {
        bump(&self.requests, (route.to_owned(), code), 1);
    }

    /// An ingest request stored: its entries by format, body bytes, records refused, and the
    /// time from its body being read to its answer.
    pub fn ingested(
        &self,
        by_format: &serde_json::Map<String, serde_json::Value>,
        bytes: u64,
        rejected: u64,
        took: Duration,
    ) {
        self.ingest_requests.fetch_add(1, Ordering::Relaxed);
        self.ingest_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.ingest_rejected.fetch_add(rejected, Ordering::Relaxed);
        for (format, n) in by_format {
            bump(&self.events, format.clone(), n.as_u64().unwrap_or(0));
        }
        let secs = took.as_secs_f64();
        for (bound, bucket) in ACK_BUCKETS.iter().zip(&self.ack_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.ack_count.fetch_add(1, Ordering::Relaxed);
        self.ack_sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A read of the trail recorded in the ledger.
    pub fn read_recorded(&self, route: &str) {
        bump(&self.reads, route.to_owned(), 1);
    }

    /// An alert raised: its severity, and the milliseconds from the event and from its receipt
    /// to the alert.
    pub fn alert(&self, severity: &str, from_event_ms: Option<i64>, from_receipt_ms: Option<i64>) {
        bump(&self.alerts, severity.to_owned(), 1);
        if let (Some(e), Some(r), Ok(mut i)) = (from_event_ms, from_receipt_ms, self.insight.lock())
        {
            i.from_event_ms += i128::from(e);
            i.from_receipt_ms += i128::from(r);
            i.count += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self, g: &Gauges) -> String {
        let mut o = String::with_capacity(4096);
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut o,
            "acta_http_requests_total",
            "counter",
            "HTTP requests answered, by route pattern and status code.",
        );
        if let Ok(m) = self.requests.lock() {
            for ((route, code), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "acta_http_requests_total{{route=\"{}\",code=\"{code}\"}} {n}",
                    label(route)
                );
            }
        }
        head(
            &mut o,
            "acta_ingest_requests_total",
            "counter",
            "Ingest requests stored.",
        );
        let _ = writeln!(
            o,
            "acta_ingest_requests_total {}",
            self.ingest_requests.load(Ordering::Relaxed)
        );
        head(
            &mut o,
            "acta_ingest_events_total",
            "counter",
            "Ledger entries stored by ingest requests, by the format that read them.",
        );
        if let Ok(m) = self.events.lock() {
            for (format, n) in m.iter() {
                let _ = writeln!(
                    o,
                    "acta_ingest_events_total{{format=\"{}\"}} {n}",
                    label(format)
                );
            }
        }
        head(
            &mut o,
            "acta_ingest_bytes_total",
            "counter",
            "Request body bytes stored by ingest.",
        );
        let _ = writeln!(
            o,
            "acta_ingest_bytes_total {}",
            self.ingest_bytes.load(Ordering::Relaxed)
        );
        head(
            &mut o,
            "acta_ingest_rejected_total",
            "counter",
            "Records refused by ingest (over the size limit).",
        );
        let _ = writeln!(
            o,
            "acta_ingest_rejected_total {}",
            self.ingest_rejected.load(Ordering::Relaxed)
        );
        head(
            &mut o,
            "acta_ingest_ack_seconds",
            "histogram",
            "Time from an ingest request's body being read to its answer (the batch durable).",
        );
        for (bound, bucket) in ACK_BUCKETS.iter().zip(&self.ack_buckets) {
            let _ = writeln!(
                o,
                "acta_ingest_ack_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.ack_count.load(Ordering::Relaxed);
        let _ = writeln!(o, "acta_ingest_ack_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            o,
            "acta_ingest_ack_seconds_sum {}",
            self.ack_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(o, "acta_ingest_ack_seconds_count {count}");
        head(
            &mut o,
            "acta_reads_recorded_total",
            "counter",
            "Reads of the trail recorded in the ledger (source acta-access), by route.",
        );
        if let Ok(m) = self.reads.lock() {
            for (route, n) in m.iter() {
                let _ = writeln!(
                    o,
                    "acta_reads_recorded_total{{route=\"{}\"}} {n}",
                    label(route)
                );
            }
        }
        head(
            &mut o,
            "acta_ledger_entries",
            "gauge",
            "Entries covered by the latest checkpoint.",
        );
        if let Some(n) = g.ledger_entries {
            let _ = writeln!(o, "acta_ledger_entries {n}");
        }
        head(
            &mut o,
            "acta_checkpoint_age_seconds",
            "gauge",
            "Seconds since the latest checkpoint was written.",
        );
        if let Some(a) = g.checkpoint_age {
            let _ = writeln!(o, "acta_checkpoint_age_seconds {:.3}", a.as_secs_f64());
        }
        head(
            &mut o,
            "acta_alerts_total",
            "counter",
            "Alerts raised by the server's detection, by severity.",
        );
        if let Ok(m) = self.alerts.lock() {
            for (severity, n) in m.iter() {
                let _ = writeln!(
                    o,
                    "acta_alerts_total{{severity=\"{}\"}} {n}",
                    label(severity)
                );
            }
        }
        head(
            &mut o,
            "acta_time_to_insight_seconds",
            "summary",
            "Time from an event (from=\"event\") or its receipt (from=\"receipt\") to its alert.",
        );
        if let Ok(i) = self.insight.lock() {
            for (from, sum) in [("event", i.from_event_ms), ("receipt", i.from_receipt_ms)] {
                let _ = writeln!(
                    o,
                    "acta_time_to_insight_seconds_sum{{from=\"{from}\"}} {}",
                    sum as f64 / 1000.0
                );
                let _ = writeln!(
                    o,
                    "acta_time_to_insight_seconds_count{{from=\"{from}\"}} {}",
                    i.count
                );
            }
        }
        for (name, help, pick) in [
            (
                "acta_sink_delivered_total",
                "Alerts a sink's receiver accepted.",
                (|s: &SinkFigures| s.delivered) as fn(&SinkFigures) -> u64,
            ),
            (
                "acta_sink_failures_total",
                "Alerts a sink gave up on (a permanent error, or every attempt failed).",
                |s: &SinkFigures| s.failed,
            ),
            (
                "acta_sink_dropped_total",
                "Alerts not queued because a sink's queue was full.",
                |s: &SinkFigures| s.dropped,
            ),
        ] {
            head(&mut o, name, "counter", help);
            for s in &g.sinks {
                let _ = writeln!(o, "{name}{{sink=\"{}\"}} {}", label(&s.name), pick(s));
            }
        }
        head(
            &mut o,
            "acta_writer_up",
            "gauge",
            "1 while the ledger writer runs; 0 once it stopped (ingest refused until a restart).",
        );
        let _ = writeln!(o, "acta_writer_up {}", u8::from(g.writer_up));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_exposition_format() {
        let m = Metrics::default();
        m.request("/api/v1/search", 200);
        m.request("/api/v1/search", 200);
        m.request("/api/v1/ingest", 401);
        let mut formats = serde_json::Map::new();
        formats.insert("cloudtrail".into(), serde_json::json!(3));
        m.ingested(&formats, 900, 1, Duration::from_millis(7));
        m.read_recorded("search");
        m.alert("High", Some(2_000), Some(500));
        m.alert("High", Some(4_000), Some(1_500));
        let text = m.render(&Gauges {
            ledger_entries: Some(42),
            checkpoint_age: Some(Duration::from_millis(1500)),
            writer_up: true,
            sinks: vec![SinkFigures {
                name: "webhook http://x/\"y\"".into(),
                delivered: 2,
                failed: 1,
                dropped: 0,
            }],
        });
        for line in [
            "acta_http_requests_total{route=\"/api/v1/search\",code=\"200\"} 2",
            "acta_http_requests_total{route=\"/api/v1/ingest\",code=\"401\"} 1",
            "acta_ingest_events_total{format=\"cloudtrail\"} 3",
            "acta_ingest_bytes_total 900",
            "acta_ingest_rejected_total 1",
            "acta_ingest_ack_seconds_bucket{le=\"0.005\"} 0",
            "acta_ingest_ack_seconds_bucket{le=\"0.01\"} 1",
            "acta_ingest_ack_seconds_bucket{le=\"+Inf\"} 1",
            "acta_ingest_ack_seconds_count 1",
            "acta_reads_recorded_total{route=\"search\"} 1",
            "acta_ledger_entries 42",
            "acta_checkpoint_age_seconds 1.500",
            "acta_alerts_total{severity=\"High\"} 2",
            "acta_time_to_insight_seconds_sum{from=\"event\"} 6",
            "acta_time_to_insight_seconds_count{from=\"receipt\"} 2",
            "acta_sink_failures_total{sink=\"webhook http://x/\\\"y\\\"\"} 1",
            "acta_writer_up 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        // Every sample line names a metric declared by a TYPE line.
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(
                declared.iter().any(|d| name.starts_with(d)),
                "{name} undeclared"
            );
        }
    }
}

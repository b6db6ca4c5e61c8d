//! Detection on the ingest path: Sigma rules, their correlations and the behavioural detectors,
//! turned into alerts.
//!
//! Sigma rules are evaluated on each record's raw fields by the normaliser threads (in parallel,
//! [`crate::normalise::Matched`]); everything that needs order — correlation windows and each
//! actor's history — runs here, one batch at a time, in ledger order, once the ledger has
//! acknowledged the batch. Every alert is an OCSF Detection Finding (class 2004) that names the
//! rule or detector, its severity, the actor and the ledger entries that raised it, and records
//! three times: the first event's time, when acta received it, and when the alert was raised (the
//! time to insight is the difference). The pipeline appends findings to the ledger under the
//! source `acta-finding` (alerts are evidence too) and hands them to the sinks.
//!
//! The behavioural detectors learn from history: on start they are fed every entry already in the
//! ledger, in order, without alerting, so their state is rebuilt deterministically from the
//! ledger.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use acta_detect::behaviour::{self, Anomaly, Behaviour, Observation, Outcome};
use acta_detect::{Correlator, Hit, RuleSet};
use acta_index::Row;
use acta_ingest::formats::finding::SOURCE as FINDING_SOURCE;
use acta_ingest::formats::{Format, Registry};
use acta_ledger::now_ms;
use anyhow::{Context as _, Result, anyhow, bail};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::normalise::Done;
use crate::sinks::{Alert, SinkConfig};
use crate::store::{Prepared, restored_row};

/// The detection configuration file (`acta ingest --detect FILE`, TOML).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directories of Sigma rules (detection and correlation rules), relative to the file.
    pub rules: Vec<PathBuf>,
    /// The lowest Sigma `level` that raises an alert (`informational`, `low`, `medium`, `high`,
    /// `critical`); rules below it still feed correlations. Default: every level.
    pub min_level: Option<String>,
    /// The behavioural detectors (`[behaviour.new_ip]`, `[behaviour.action_spike]`…).
    pub behaviour: behaviour::Config,
    /// Where alerts go besides the ledger (`[[sink]]`).
    pub sink: Vec<SinkConfig>,
}

impl Config {
    /// Reads a configuration file; rule directories are taken relative to it.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for dir in &mut config.rules {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        Ok(config)
    }
}

/// One alert, ready to append to the ledger and hand to sinks.
pub struct Finding {
    /// The finding's JSON: exactly the ledger entry.
    pub json: String,
    /// What sinks are sent.
    pub alert: Option<Alert>,
}

/// What detection did during a run.
#[derive(Debug, Default)]
pub struct Counts {
    /// Entries replayed into the behavioural detectors' history on start.
    pub replayed: u64,
    /// Entries evaluated.
    pub evaluated: u64,
    /// Alerts raised, by kind of analytic.
    pub sigma: u64,
    pub correlations: u64,
    pub anomalies: u64,
    /// Sum of (alert time − first event time) and of (alert time − receipt), milliseconds.
    pub insight_ms: i128,
    pub detection_ms: i128,
}

impl Counts {
    pub fn alerts(&self) -> u64 {
        self.sigma + self.correlations + self.anomalies
    }
}

/// Detection state of one ingest run.
pub struct Detector {
    rules: Arc<RuleSet>,
    correlator: Correlator,
    behaviour: Behaviour,
    anomalies: Vec<Anomaly>,
    /// Sigma rules and correlations below this severity raise no alert.
    min_severity: u8,
    pub counts: Counts,
}

impl Detector {
    /// Loads the rules of `config`; unusable rules are reported on standard error and left out.
    pub fn new(config: &Config) -> Result<Detector> {
        let mut rules = RuleSet::default();
        if !config.rules.is_empty() {
            let loaded =
                RuleSet::load_dirs(&config.rules).context("cannot read the Sigma rules")?;
            for error in &loaded.errors {
                eprintln!("acta: unusable rule: {error}");
            }
            if loaded.rules.rules().is_empty() {
                eprintln!("acta: no usable Sigma rule in the rules directories");
            }
            rules = loaded.rules;
        }
        let behaviour = Behaviour::new(config.behaviour.clone())?;
        let min_severity = match config.min_level.as_deref() {
            None => 0,
            Some(level) => match level_severity(Some(level)) {
                0 => bail!(
                    "min_level `{level}`: expected informational, low, medium, high or critical"
                ),
                s => s,
            },
        };
        // Rules that can raise no alert (below min_level) and feed no correlation are not
        // evaluated at all.
        if min_severity > 0 {
            rules = rules.without(|rule| level_severity(rule.level.as_deref()) < min_severity);
        }
        Ok(Detector {
            min_severity,
            correlator: rules.correlator(),
            rules: Arc::new(rules),
            behaviour,
            anomalies: Vec::new(),
            counts: Counts::default(),
        })
    }

    /// The Sigma rules, for the normaliser threads.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.clone()
    }

    /// Feeds every entry already in the ledger to the behavioural detectors, without alerting
    /// (but for the records acta writes itself).
    pub fn replay(
        &mut self,
        ledger_dir: &Path,
        registry: &Registry,
        progress: &ProgressBar,
    ) -> Result<u64> {
        let entries = match acta_ledger::read::Entries::open(ledger_dir) {
            Ok(e) => e,
            Err(_) if !ledger_dir.exists() => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        progress.set_length(entries.len());
        let mut done = 0;
        for entry in entries.starting_at(0) {
            let entry = entry?;
            let (p, _) = restored_row(registry, entry.index, &entry.envelope, &entry.payload)?;
            if !Format::is_reserved_source(&p.row.source) {
                self.behaviour
                    .observe(&observation(&p.row), &mut self.anomalies);
                self.anomalies.clear();
            }
            done += 1;
            progress.inc(1);
        }
        self.counts.replayed += done;
        Ok(done)
    }

    /// Evaluates a batch the ledger stored as entries `first..`, in order; the alerts it raises
    /// are added to `out`. The records acta writes itself (findings, and the access records of
    /// reads of the trail) are not evaluated.
    pub fn observe_batch(&mut self, first: u64, source: &str, done: &Done, out: &mut Vec<Finding>) {
        if Format::is_reserved_source(source) {
            return;
        }
        let mut matched = done.matched.iter().peekable();
        for (i, prepared) in done.rows.iter().enumerate() {
            let index = first + i as u64;
            let row = &prepared.row;
            self.counts.evaluated += 1;
            if let Some(m) = matched.next_if(|m| m.record == i) {
                let rules = self.rules.clone();
                let mut ids: Vec<&str> = Vec::with_capacity(m.rules.len());
                for rule in m.rules.iter().filter_map(|r| rules.rules().get(*r)) {
                    ids.push(&rule.id);
                    if rule.alerts() && level_severity(rule.level.as_deref()) >= self.min_severity {
                        self.counts.sigma += 1;
                        out.push(self.finish(Draft {
                            uid: format!("sigma:{}:{index}", rule.id),
                            analytic: &rule.id,
                            name: &rule.title,
                            kind: "sigma",
                            type_id: 1,
                            severity_id: level_severity(rule.level.as_deref()),
                            message: format!(
                                "{} by {}",
                                row.action.as_deref().unwrap_or("an event"),
                                row.actor.as_deref().unwrap_or("an unknown actor")
                            ),
                            row,
                            entries: vec![index],
                            first_time: row.time,
                            ingest_time: done.received_at_ms,
                            extra: json!({"rule_path": rule.path.display().to_string()}),
                        }));
                    }
                }
                if let Some(event) = &m.event {
                    let hits = self.correlator.observe(&ids, row.time, event, index);
                    self.correlations(hits, row, done.received_at_ms, out);
                }
            }
            // Rows carry their ledger index only once stored.
            let mut seen = observation(row);
            seen.index = index;
            self.behaviour.observe(&seen, &mut self.anomalies);
            for (k, anomaly) in std::mem::take(&mut self.anomalies).iter().enumerate() {
                self.counts.anomalies += 1;
                let finding = self.anomaly(anomaly, row, index, k, done.received_at_ms);
                out.push(finding);
            }
        }
        // Windows whose condition has an upper bound close as the stream's time passes them.
        if let Some(last) = done.rows.last() {
            let latest = done
                .rows
                .iter()
                .map(|p| p.row.time)
                .max()
                .unwrap_or(last.row.time);
            let hits = self.correlator.advance(latest);
            let context = Row {
                source: source.into(),
                time: latest,
                ..Row::default()
            };
            self.correlations(hits, &context, done.received_at_ms, out);
        }
    }

    /// The end of the stream: closes every open correlation window; the alerts they raise are
    /// added to `out`.
    pub fn finish_stream(&mut self, out: &mut Vec<Finding>) {
        let hits = self.correlator.finish();
        let context = Row {
            time: hits.iter().map(|h| h.end_ms).max().unwrap_or_default(),
            ..Row::default()
        };
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        self.correlations(hits, &context, now, out);
    }

    fn correlations(
        &mut self,
        hits: Vec<Hit>,
        row: &Row,
        ingest_time: i64,
        out: &mut Vec<Finding>,
    ) {
        for hit in hits {
            if level_severity(hit.level.as_deref()) < self.min_severity {
                continue;
            }
            self.counts.correlations += 1;
            let finding = self.correlation(&hit, row, ingest_time);
            out.push(finding);
        }
    }

    fn correlation(&mut self, hit: &Hit, row: &Row, ingest_time: i64) -> Finding {
        let group: serde_json::Map<String, Value> = hit
            .group
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
            .collect();
        let who = hit
            .group
            .iter()
            .find_map(|(_, v)| v.clone())
            .unwrap_or_else(|| "the group".to_owned());
        self.finish(Draft {
            uid: format!(
                "correlation:{}:{}",
                hit.id,
                hit.references.last().copied().unwrap_or_default()
            ),
            analytic: &hit.id,
            name: &hit.title,
            kind: "sigma-correlation",
            type_id: 1,
            severity_id: level_severity(hit.level.as_deref()),
            message: format!("{} events of {who} within the window", hit.count),
            row,
            entries: hit.references.clone(),
            first_time: hit.start_ms,
            ingest_time,
            extra: json!({"group": group, "count": hit.count, "type": format!("{:?}", hit.kind)}),
        })
    }

    /// The finding of the `k`th anomaly the event at `index` raised.
    fn anomaly(
        &mut self,
        a: &Anomaly,
        row: &Row,
        index: u64,
        k: usize,
        ingest_time: i64,
    ) -> Finding {
        let entries = if a.events.is_empty() {
            vec![index]
        } else {
            a.events.clone()
        };
        self.finish(Draft {
            uid: format!("behaviour:{}:{index}:{k}", a.kind.as_str()),
            analytic: a.kind.as_str(),
            name: &format!("Behaviour: {}", a.kind.as_str().replace('_', " ")),
            kind: "behaviour",
            type_id: 2,
            severity_id: a.severity_id,
            message: a.message.clone(),
            row,
            first_time: a.time.min(row.time),
            entries,
            ingest_time,
            extra: json!({"value": a.value, "baseline": a.baseline}),
        })
    }

    fn finish(&mut self, d: Draft<'_>) -> Finding {
        let alert_time = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        self.counts.insight_ms += i128::from(alert_time) - i128::from(d.first_time);
        self.counts.detection_ms += i128::from(alert_time) - i128::from(d.ingest_time);
        let severity = acta_event::Severity::from_id(d.severity_id).name();
        let last_time = d.row.time.max(d.first_time);
        let related: Vec<Related> = d.entries.iter().map(|i| Related { uid: *i }).collect();
        let finding = Out {
            class_uid: 2004,
            class_name: "Detection Finding",
            category_uid: 2,
            category_name: "Findings",
            activity_id: 1,
            activity_name: "Create",
            type_uid: 200_401,
            time: alert_time,
            start_time: d.first_time,
            end_time: last_time,
            severity_id: d.severity_id,
            severity,
            status_id: 1,
            status: "New",
            is_alert: true,
            message: &d.message,
            finding_info: Info {
                uid: &d.uid,
                title: d.name,
                types: [d.kind],
                analytic: Analytic {
                    uid: d.analytic,
                    name: d.name,
                    type_id: d.type_id,
                    r#type: if d.type_id == 1 { "Rule" } else { "Behavioral" },
                },
                created_time: alert_time,
                first_seen_time: d.first_time,
                last_seen_time: last_time,
                related_events: &related,
            },
            actor: d.row.actor.as_deref().map(|name| OutActor {
                user: OutUser { name },
            }),
            src_endpoint: d.row.ip.as_deref().map(|ip| OutEndpoint { ip }),
            metadata: Metadata {
                version: acta_event::OCSF_VERSION,
                product: Product {
                    name: "acta",
                    vendor_name: "acta",
                    version: env!("CARGO_PKG_VERSION"),
                },
            },
            unmapped: Unmapped {
                acta: Times {
                    source: &d.row.source,
                    entries: &d.entries,
                    event_time: d.first_time,
                    ingest_time: d.ingest_time,
                    alert_time,
                    detail: &d.extra,
                },
            },
        };
        // Serialising into a String cannot fail: every key is a string.
        let json = serde_json::to_string(&finding).unwrap_or_default();
        Finding {
            alert: Some(Alert {
                uid: d.uid,
                title: d.name.to_owned(),
                severity: severity.to_owned(),
                severity_id: d.severity_id,
                actor: d.row.actor.as_deref().map(str::to_owned),
                message: d.message,
                time_ms: alert_time,
                json: Arc::from(json.as_str()),
            }),
            json,
        }
    }
}

/// A Detection Finding as serialised (OCSF 1.3 names).
#[derive(Serialize)]
struct Out<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u8,
    activity_name: &'static str,
    type_uid: u32,
    time: i64,
    start_time: i64,
    end_time: i64,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    is_alert: bool,
    message: &'a str,
    finding_info: Info<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<OutActor<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_endpoint: Option<OutEndpoint<'a>>,
    metadata: Metadata,
    unmapped: Unmapped<'a>,
}

#[derive(Serialize)]
struct Info<'a> {
    uid: &'a str,
    title: &'a str,
    types: [&'static str; 1],
    analytic: Analytic<'a>,
    created_time: i64,
    first_seen_time: i64,
    last_seen_time: i64,
    related_events: &'a [Related],
}

#[derive(Serialize)]
struct Analytic<'a> {
    uid: &'a str,
    name: &'a str,
    type_id: u8,
    r#type: &'static str,
}

/// A ledger entry that raised the finding: `{"uid": "42"}`.
struct Related {
    uid: u64,
}

impl Serialize for Related {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("uid", &self.uid.to_string())?;
        m.end()
    }
}

#[derive(Serialize)]
struct OutActor<'a> {
    user: OutUser<'a>,
}

#[derive(Serialize)]
struct OutUser<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct OutEndpoint<'a> {
    ip: &'a str,
}

#[derive(Serialize)]
struct Metadata {
    version: &'static str,
    product: Product,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Unmapped<'a> {
    acta: Times<'a>,
}

#[derive(Serialize)]
struct Times<'a> {
    source: &'a str,
    entries: &'a [u64],
    event_time: i64,
    ingest_time: i64,
    alert_time: i64,
    detail: &'a Value,
}

/// What a finding is made of.
struct Draft<'a> {
    uid: String,
    analytic: &'a str,
    name: &'a str,
    kind: &'static str,
    type_id: u8,
    severity_id: u8,
    message: String,
    row: &'a Row,
    entries: Vec<u64>,
    first_time: i64,
    ingest_time: i64,
    extra: Value,
}

fn observation(row: &Row) -> Observation<'_> {
    Observation {
        index: row.index,
        time_ms: row.time,
        source: &row.source,
        actor: row.actor.as_deref(),
        action: row.action.as_deref(),
        service: row.service.as_deref(),
        resources: &row.resources,
        ip: row.ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
        outcome: match row.outcome {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            _ => Outcome::Unknown,
        },
    }
}

/// OCSF `severity_id` of a Sigma `level`.
fn level_severity(level: Option<&str>) -> u8 {
    match level {
        Some("informational") => 1,
        Some("low") => 2,
        Some("medium") => 3,
        Some("high") => 4,
        Some("critical") => 5,
        _ => 0,
    }
}

/// The rows of findings, as the investigation store takes them.
pub fn finding_rows(
    registry: &Registry,
    findings: &[Finding],
    received_at_ms: i64,
) -> Vec<Prepared> {
    findings
        .iter()
        .map(|f| {
            let n = registry.normalise_lean(
                &acta_ingest::formats::Record {
                    bytes: f.json.as_bytes(),
                    received_at_ms,
                },
                acta_ingest::formats::Choice::Forced(Format::Finding),
            );
            Prepared::new(FINDING_SOURCE, n.event.as_deref(), received_at_ms)
        })
        .collect()
}

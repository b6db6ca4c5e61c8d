//! TEMPORARY STUB (replaced by the sinks branch).
#![allow(dead_code)]
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
pub struct Alert {
    pub uid: String,
    pub title: String,
    pub severity: String,
    pub actor: Option<String>,
    pub message: String,
    pub json: Arc<str>,
}
#[derive(Debug, Deserialize)]
pub enum SinkConfig {
    File { path: String },
}
impl SinkConfig {
    pub fn stderr() -> SinkConfig {
        SinkConfig::File { path: "-".into() }
    }
}
pub struct Sinks;
pub struct SinkReport {
    pub name: String,
    pub delivered: u64,
    pub failed: u64,
    pub dropped: u64,
    pub last_error: Option<String>,
}
impl Sinks {
    pub fn start(_c: &[SinkConfig]) -> anyhow::Result<Sinks> {
        Ok(Sinks)
    }
    pub fn send(&self, a: Alert) {
        eprintln!("alert [{}] {} — {}", a.severity, a.title, a.message);
    }
    pub fn finish(self, _d: Duration) -> Vec<SinkReport> {
        Vec::new()
    }
}

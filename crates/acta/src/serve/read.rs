//! The read routes beyond search and counts: one event with its proof, the alerts, the ledger's
//! state and the caller's own token.
//!
//! - `GET /api/v1/events/{index}`: the entry's normalised event, raw record and inclusion proof to
//!   the latest checkpoint, checked against the data directory's verifier key.
//! - `GET /api/v1/alerts`: acta's findings (source `acta-finding`), newest first, with a summary
//!   by severity and the mean time to insight.
//! - `GET /api/v1/export`: the events a query finds, streamed as NDJSON in ledger order.
//! - `GET /api/v1/ledger`: size, root and age of the latest checkpoint.
//! - `GET /api/v1/me`: the token the request carries (id, name, role).

use std::collections::BTreeMap;
use std::sync::Arc;

use acta_index::TimeRange;
use acta_ingest::formats::finding::SOURCE as FINDING_SOURCE;
use acta_ledger::layout::PAYLOAD_SEGMENT_ENTRIES;
use acta_ledger::read::Entries;
use axum::Json;
use axum::extract::{Path as UrlPath, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use acta_query::{Expr, Field, Term, Value as QValue};
use axum::extract::rejection::QueryRejection;

use super::limits::Refusal;
use super::{ApiError, AppState, Resource, Seen, bad_request, internal};
use crate::tokens::Action;
use crate::units;

/// Most alerts one request lists.
const MAX_ALERTS: usize = 1_000;
/// Alerts the summary reads at most (the newest ones); it says when there were more.
const SUMMARY_ALERTS: usize = 10_000;
/// Deepest alert a listing pages to.
const MAX_ALERT_OFFSET: usize = 10_000;

pub(super) async fn event(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    seen: Seen,
    UrlPath(index): UrlPath<String>,
) -> Result<Json<Value>, Refusal> {
    let caller = st.caller(&headers)?;
    st.limits.rate(&headers)?;
    let index: u64 = index.parse().map_err(|_| {
        bad_request(format!(
            "`{}` is not a ledger index (a whole number from 0)",
            index.chars().take(40).collect::<String>()
        ))
    })?;
    let _turn = st.reads.acquire().await.map_err(internal)?;
    let st2 = Arc::clone(&st);
    let view = tokio::task::spawn_blocking(move || {
        crate::commands::entry_view(&st2.data, &st2.registry, index)
    })
    .await
    .map_err(internal)?
    .map_err(internal)?
    .ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("entry {index} is not covered by the latest checkpoint"),
        )
    })?;
    let json = view.to_json();
    // The entry's own source is what the policies are asked about.
    let source = json["source"].as_str().unwrap_or_default().to_owned();
    if !st.allows(&caller, Action::Read, &Resource::Source(source), "event")? {
        let message = format!(
            "the policies do not let token {} (role `{}`) read entry {index}",
            caller.id, caller.role
        );
        return Err(st
            .refuse_read(&caller, &seen, "event", json!({ "index": index }), message)
            .await
            .into());
    }
    st.record_read(&caller, &seen, "event", json!({ "index": index }), 1)
        .await?;
    Ok(Json(json))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertParams {
    #[serde(default)]
    q: String,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
}

pub(super) async fn alerts(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    seen: Seen,
    params: Result<UrlQuery<AlertParams>, QueryRejection>,
) -> Result<Json<Value>, Refusal> {
    let caller = st.caller(&headers)?;
    st.limits.rate(&headers)?;
    let UrlQuery(p) = params.map_err(|e| bad_request(e.body_text()))?;
    let (asked, range) = super::asked(&p.q, p.since.as_deref(), p.until.as_deref())?;
    let limit = p.limit.unwrap_or(100).min(MAX_ALERTS);
    if p.offset > MAX_ALERT_OFFSET {
        return Err(bad_request(format!("offset may be at most {MAX_ALERT_OFFSET}")).into());
    }
    let _turn = st.reads.acquire().await.map_err(internal)?;
    let scope = st.read_scope(&caller, &seen, "alerts").await?;
    let params =
        json!({"q": p.q, "since": p.since, "until": p.until, "limit": limit, "offset": p.offset});
    // Alerts are the source `acta-finding`: a caller limited to some sources sees them only if
    // the policies let it read that source.
    if !scope.covers(FINDING_SOURCE) {
        let message = format!(
            "the policies do not let token {} (role `{}`) read `{FINDING_SOURCE}`, where alerts are",
            caller.id, caller.role
        );
        return Err(st
            .refuse_read(&caller, &seen, "alerts", params, message)
            .await
            .into());
    }
    // The caller's query as one operand: `source:acta-finding AND (q)`, built as a tree, then
    // narrowed to the caller's sources.
    let findings = Expr::Term(Term {
        field: Field::Source,
        value: QValue::Exact(FINDING_SOURCE.to_owned()),
        span: 0..0,
    });
    let query = scope.narrow(acta_query::Query {
        expr: Some(match asked.expr {
            None => findings,
            Some(e) => Expr::And(vec![findings, e]),
        }),
    });
    let st2 = Arc::clone(&st);
    let answer =
        tokio::task::spawn_blocking(move || alert_answer(&st2, &query, range, limit, p.offset))
            .await
            .map_err(internal)?
            .map_err(internal)?;
    st.record_read(&caller, &seen, "alerts", params, answer.1)
        .await?;
    Ok(Json(answer.0))
}

/// The page of alerts and the summary, and how many alerts matched.
fn alert_answer(
    st: &AppState,
    query: &acta_query::Query,
    range: TimeRange,
    limit: usize,
    offset: usize,
) -> anyhow::Result<(Value, u64)> {
    st.index.reload()?;
    let (total, page) = st
        .index
        .page(query, range, SUMMARY_ALERTS.max(limit + offset), 0)?;
    // Newest first, as the index gives them.
    let newest: Vec<u64> = page.iter().map(|h| h.index).collect();
    let mut sorted = newest.clone();
    sorted.sort_unstable();
    let payloads: BTreeMap<u64, Vec<u8>> = payloads(st, &sorted)?.into_iter().collect();
    let mut by_severity: BTreeMap<(u8, String), u64> = BTreeMap::new();
    let (mut insight, mut detection, mut timed) = (0i128, 0i128, 0i128);
    let mut listed = Vec::new();
    for (n, index) in newest.iter().enumerate() {
        let Some(f) = payloads
            .get(index)
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
        else {
            continue;
        };
        let sev = u8::try_from(f["severity_id"].as_u64().unwrap_or(0)).unwrap_or(0);
        let sev_name = f["severity"].as_str().unwrap_or("Unknown").to_owned();
        *by_severity.entry((sev, sev_name)).or_default() += 1;
        let t = &f["unmapped"]["acta"];
        let times = (
            t["event_time"].as_i64(),
            t["ingest_time"].as_i64(),
            t["alert_time"].as_i64(),
        );
        if let (Some(ev), Some(ing), Some(al)) = times {
            insight += i128::from(al) - i128::from(ev);
            detection += i128::from(al) - i128::from(ing);
            timed += 1;
        }
        let since = |from: Option<i64>| from.zip(times.2).and_then(|(f, al)| al.checked_sub(f));
        if n < offset || listed.len() >= limit {
            continue;
        }
        let info = &f["finding_info"];
        let actor = &f["actor"]["user"];
        listed.push(json!({
            "index": index,
            "time": f["time"].as_i64().map(units::timestamp),
            "rule": info["analytic"]["uid"],
            "title": info["title"],
            "kind": info["types"][0],
            "severity": f["severity"],
            "severity_id": sev,
            "message": f["message"],
            "actor": actor["name"].as_str().or_else(|| actor["uid"].as_str()),
            "ip": f["src_endpoint"]["ip"],
            "entries": t["entries"],
            "mtti_event_ms": since(times.0),
            "mtti_receipt_ms": since(times.1),
        }));
    }
    let mean = |sum: i128| (timed > 0).then(|| i64::try_from(sum / timed).unwrap_or(i64::MAX));
    let summarised = newest.len() as u64;
    let v = json!({
        "total": total,
        "offset": offset,
        "alerts": listed,
        "summary": {
            "alerts": summarised,
            "complete": summarised == total,
            "by_severity": by_severity.iter().rev().map(|((_, s), n)| (s.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "mtti_event_ms": mean(insight),
            "mtti_receipt_ms": mean(detection),
        },
    });
    Ok((v, total))
}

/// The stored payloads of `wanted` (increasing ledger indices): one walk per payload segment that
/// holds any of them.
fn payloads(st: &AppState, wanted: &[u64]) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    let dir = st.data.ledger_dir();
    let mut out = Vec::with_capacity(wanted.len());
    let mut next = 0;
    while let Some(&first) = wanted.get(next) {
        let end = (first / PAYLOAD_SEGMENT_ENTRIES + 1) * PAYLOAD_SEGMENT_ENTRIES;
        for e in Entries::open(&dir)?.starting_at(first) {
            let e = e?;
            while wanted.get(next).is_some_and(|w| *w < e.index) {
                next += 1;
            }
            if wanted.get(next) == Some(&e.index) {
                out.push((e.index, e.payload));
                next += 1;
            }
            if wanted.get(next).is_none_or(|w| *w >= end) {
                break;
            }
        }
        // Whatever of this segment was not found (past the stored end) is skipped.
        while wanted.get(next).is_some_and(|w| *w < end) {
            next += 1;
        }
    }
    Ok(out)
}

pub(super) async fn ledger(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    st.authorize(&headers, Action::Read, &Resource::Trail, "ledger")?;
    let st2 = Arc::clone(&st);
    // The newest signed checkpoint (the one proofs lead to), and the one published at
    // /tlog/checkpoint, which follows it within the publishing interval.
    let newest = tokio::task::spawn_blocking(move || {
        acta_ledger::read::TreeReader::open(&st2.data.ledger_dir())?.latest_checkpoint()
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let (published_size, age) = st.published();
    let age_s = age.map(|d| d.as_secs());
    let (checkpoint, note) = match newest {
        Some((c, note)) => (Some(c), note),
        None => (None, String::new()),
    };
    Ok(Json(json!({
        "origin": checkpoint.as_ref().map(|c| c.origin.clone()),
        "size": checkpoint.as_ref().map(|c| c.size),
        "root": checkpoint.as_ref().map(|c| c.root.to_string()),
        "checkpoint": note,
        "published": {
            "size": published_size,
            "age_s": age_s,
        },
        "age_s": age_s,
    })))
}

pub(super) async fn me(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = st.caller(&headers)?;
    Ok(Json(json!({
        "id": caller.id,
        "name": caller.name,
        "role": caller.role,
    })))
}

/// Most events one export request gives; `limit` asks for fewer.
const MAX_EXPORT: usize = 1_000_000;
/// Export bytes handed to the connection at once.
const EXPORT_CHUNK: usize = 64 << 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportParams {
    #[serde(default)]
    q: String,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

/// The body of an export: chunks of NDJSON made on a blocking thread as the client reads them. A
/// failure part-way ends the body with an error, so the client sees a cut transfer rather than a
/// short export.
struct ExportBody(tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>);

impl axum::body::HttpBody for ExportBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|c| c.map(|c| c.map(|bytes| hyper::body::Frame::data(bytes.into()))))
    }
}

/// `GET /api/v1/export`: the events a query finds, as `acta export --format ndjson` writes them
/// (index, source, normalised event), in ledger order, under the latest signed checkpoint, whose
/// size and root are in the `Acta-Checkpoint-Size` and `Acta-Checkpoint-Root` headers. Narrowed
/// to what the caller may read, and recorded, with the number of events, before it is answered.
pub(super) async fn export(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    seen: Seen,
    params: Result<UrlQuery<ExportParams>, QueryRejection>,
) -> Result<axum::response::Response, Refusal> {
    let caller = st.caller(&headers)?;
    st.limits.rate(&headers)?;
    let UrlQuery(p) = params.map_err(|e| bad_request(e.body_text()))?;
    let limit = p.limit.unwrap_or(MAX_EXPORT).min(MAX_EXPORT);
    // Held until the last byte is handed over: a client reading slowly holds one of few.
    let streaming = Arc::clone(&st.exports).try_acquire_owned().map_err(|_| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "as many exports as this server streams at once are under way; retry shortly".into(),
        )
    })?;
    let _turn = st.reads.acquire().await.map_err(internal)?;
    let scope = st.read_scope(&caller, &seen, "export").await?;
    let (query, range) = super::asked(&p.q, p.since.as_deref(), p.until.as_deref())?;
    let query = scope.narrow(query);
    let st2 = Arc::clone(&st);
    let plan = tokio::task::spawn_blocking(move || {
        st2.index.reload()?;
        crate::commands::export_plan(&st2.data, &st2.index, &query, range, limit)
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    let params = json!({"q": p.q, "since": p.since, "until": p.until, "limit": limit});
    st.record_read(&caller, &seen, "export", params, plan.wanted.len() as u64)
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let st2 = Arc::clone(&st);
    let size = plan.checkpoint.size;
    let root = plan.checkpoint.root.to_string();
    tokio::task::spawn_blocking(move || {
        let _streaming = streaming;
        let mut chunk = Vec::with_capacity(EXPORT_CHUNK + 4096);
        let mut open = true;
        let done =
            crate::commands::export_entries(&st2.data, &st2.registry, &plan.wanted, &mut |entry| {
                // INVARIANT: a Value always serialises.
                let _ = serde_json::to_writer(&mut chunk, &entry.export_line());
                chunk.push(b'\n');
                if chunk.len() >= EXPORT_CHUNK {
                    let full =
                        std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK + 4096));
                    // The client went away: stop reading the ledger.
                    open = tx.blocking_send(Ok(full)).is_ok();
                }
                Ok(open)
            });
        match done {
            Ok(()) if open && !chunk.is_empty() => {
                let _ = tx.blocking_send(Ok(chunk));
            }
            Ok(()) => {}
            Err(e) => {
                eprintln!("acta: export cut short: {e:#}");
                let _ = tx.blocking_send(Err(std::io::Error::other("the export failed")));
            }
        }
    });
    let mut response = axum::response::Response::new(axum::body::Body::new(ExportBody(rx)));
    let h = response.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert("acta-checkpoint-size", size.into());
    if let Ok(v) = axum::http::HeaderValue::from_str(&root) {
        h.insert("acta-checkpoint-root", v);
    }
    Ok(response)
}

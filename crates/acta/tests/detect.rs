//! `acta detect` against the reference Sigma oracle (pySigma and its SQLite backend,
//! `crates/acta-detect/tests/sigma-oracle/sigma_oracle.py`): for every rule under `rules/sigma`
//! and every sample file of its log source, the (rule, file, index) matches that `acta detect`
//! prints, framing the files as `acta ingest` does, are the oracle's.
//!
//! The oracle runs under `ACTA_SIGMA_PYTHON` (default `python3`), which `./scripts/test` points
//! at a virtualenv with pySigma installed.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use acta_detect::RuleSet;
use serde_json::Value;

type Match = (String, String, u64);

/// Files whose records acta frames differently from the oracle's one-event-a-line reading, with
/// why; for them the set of (rule, file) is compared instead of (rule, file, index).
const FRAMED_DIFFERENTLY: &[(&str, &str)] = &[
    ("pgaudit/pgaudit.out", MULTI_LINE),
    ("pgaudit/postgres15/postgresql.csv", MULTI_LINE),
    ("pgaudit/postgres15/postgresql.log", MULTI_LINE),
];

const MULTI_LINE: &str = "a statement spanning lines inside quotes is one record for acta (as it is stored), one event a line for the oracle";

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "LICENSE") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn detect_prints_the_oracles_matches() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let testdata = root.join("testdata");
    let rules_dir = root.join("rules/sigma");
    let loaded = RuleSet::load_dir(&rules_dir).unwrap();
    let python = std::env::var("ACTA_SIGMA_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let oracle = root.join("crates/acta-detect/tests/sigma-oracle/sigma_oracle.py");
    let groups: [(&[&str], &str); 6] = [
        (&["cloudtrail"], "cloudtrail"),
        (&["k8s-audit"], "k8s-audit"),
        (&["github-audit", "github-webhook"], "github"),
        (&["gitlab-audit"], "gitlab"),
        (&["syslog", "journald"], "linux"),
        (&["pgaudit"], "pgaudit"),
    ];
    let mut ours: BTreeSet<Match> = BTreeSet::new();
    let mut theirs: BTreeSet<Match> = BTreeSet::new();
    for (sources, dir) in groups {
        let inputs = files(&testdata.join(dir));
        let rule_files: Vec<PathBuf> = loaded
            .rules
            .rules()
            .iter()
            .filter(|r| r.sources().iter().any(|s| sources.contains(s)))
            .map(|r| r.path.clone())
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_acta"))
            .args(["detect", "-o", "ndjson", "--rules"])
            .arg(&rules_dir)
            .args(&inputs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let hit: Value = serde_json::from_str(line).unwrap();
            ours.insert((
                hit["rule"].as_str().unwrap().to_owned(),
                hit["file"].as_str().unwrap().to_owned(),
                hit["index"].as_u64().unwrap(),
            ));
        }
        if rule_files.is_empty() {
            continue;
        }
        let output = Command::new(&python)
            .arg(&oracle)
            .args(&rule_files)
            .arg("--")
            .args(&inputs)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}; ./scripts/test installs pySigma and sets ACTA_SIGMA_PYTHON"));
        assert!(
            output.status.success(),
            "the Sigma oracle failed (./scripts/test installs pySigma and sets ACTA_SIGMA_PYTHON):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let hit: Value = serde_json::from_str(line).unwrap();
            theirs.insert((
                hit["rule"].as_str().unwrap().to_owned(),
                hit["file"].as_str().unwrap().to_owned(),
                hit["index"].as_u64().unwrap(),
            ));
        }
    }
    // Files framed differently are compared by the rules that fire on them, without indices.
    let differs = |f: &str| FRAMED_DIFFERENTLY.iter().any(|(d, _)| f.ends_with(d));
    let coarse = |set: &BTreeSet<Match>| -> BTreeSet<Match> {
        set.iter()
            .map(|(r, f, i)| (r.clone(), f.clone(), if differs(f) { 0 } else { *i }))
            .collect()
    };
    let (ours, theirs) = (coarse(&ours), coarse(&theirs));
    let only_ours: Vec<_> = ours.difference(&theirs).collect();
    let only_theirs: Vec<_> = theirs.difference(&ours).collect();
    for m in &only_ours {
        eprintln!("only acta detect: {} {} #{}", m.0, m.1, m.2);
    }
    for m in &only_theirs {
        eprintln!("only oracle:      {} {} #{}", m.0, m.1, m.2);
    }
    assert!(theirs.len() > 100, "the oracle found almost nothing");
    assert!(only_ours.is_empty() && only_theirs.is_empty());
}

/// Correlation rules (`rules/sigma-correlation`) over the Stratus Red Team detonations: the two
/// bulk detonations raise the two correlations written for them, whatever the order the files
/// are named in, and each hit lists records of its file that its rule counts.
#[test]
fn detect_applies_correlations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let inputs = files(&root.join("testdata/cloudtrail/stratus"));
    let mut reversed = inputs.clone();
    reversed.reverse();
    let mut outputs = Vec::new();
    for order in [&inputs, &reversed] {
        let out = Command::new(env!("CARGO_BIN_EXE_acta"))
            .args(["detect", "-o", "ndjson", "--rules"])
            .arg(root.join("rules/sigma-correlation"))
            .args(order)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("2 correlation hits of 10 correlations"),
            "{stderr}"
        );
        outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    assert_eq!(outputs[0], outputs[1]);
    let hits: Vec<Value> = outputs[0]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected = [
        (
            "76255e09-755e-4675-8b6b-dbce9842cd2a",
            "aws.credential-access.ec2-get-password-data.json",
            6,
            "GetPasswordData",
        ),
        (
            "26ff4080-194e-47e7-9889-ef7602efed0c",
            "aws.discovery.ec2-download-user-data.json",
            11,
            "DescribeInstanceAttribute",
        ),
    ];
    assert_eq!(hits.len(), expected.len(), "{}", outputs[0]);
    for (hit, (rule, file, count, event_name)) in hits.iter().zip(expected) {
        assert_eq!(hit["rule"], rule);
        assert_eq!(hit["correlation"], true);
        assert_eq!(hit["type"], "event_count");
        assert_eq!(hit["count"], count);
        let path = hit["file"].as_str().unwrap();
        assert!(path.ends_with(file), "{path}");
        assert!(hit.get("files").is_none(), "all in one file");
        let arn = hit["group"]["userIdentity.arn"].as_str().unwrap();
        let records: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let indexes = hit["indexes"].as_array().unwrap();
        assert_eq!(indexes.len(), count);
        for i in indexes {
            let record = &records[usize::try_from(i.as_u64().unwrap()).unwrap()];
            assert_eq!(record["eventName"], event_name);
            assert_eq!(record["userIdentity"]["arn"], arn);
        }
    }
}

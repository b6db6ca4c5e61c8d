//! `acta serve --demo`: a data directory that shows something at once.
//!
//! The binary carries the project's real samples (`testdata/`: AWS CloudTrail from Stratus Red
//! Team, Kubernetes audit from Falco, audit2rbac and rbac-tool, GitHub and GitLab audit events,
//! sshd/sudo/su syslog and journald, pgaudit) with their licence files, and the Sigma rules of
//! `rules/` (SigmaHQ, Detection Rule License). `--demo` writes them under `<data-dir>/demo/`, turns
//! detection on with those rules (an `acta.toml` is written if the data directory has none), and
//! when the ledger is empty, stores every sample through the server's own ingest path, raising
//! the alerts the rules find. A data directory that already holds entries is served as it is.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));
}

/// What `prepare` wrote: the sample files to ingest, in order.
pub struct Demo {
    pub samples: Vec<PathBuf>,
    pub dir: PathBuf,
}

/// Whether a file of `testdata/` is a sample to ingest (not a licence, a readme, acta's own
/// findings, or records that need a mapping).
fn is_sample(rel: &str) -> bool {
    rel.starts_with("testdata/")
        && !rel.ends_with("/LICENSE")
        && !rel.ends_with("README.md")
        && !rel.starts_with("testdata/acta/")
        && !rel.starts_with("testdata/json/")
}

/// Writes the samples and rules under `<root>/demo/` (replacing earlier copies) and, if `root`
/// has no `acta.toml`, one that turns detection on with the demo's rules.
pub fn prepare(root: &Path) -> Result<Demo> {
    let dir = root.join("demo");
    let mut samples = Vec::new();
    for (rel, bytes) in embedded::FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&path, bytes)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        if is_sample(rel) {
            samples.push(path);
        }
    }
    let config = root.join(super::config::FILE_NAME);
    if !config.exists() {
        std::fs::write(
            &config,
            "# Written by `acta serve --demo`: detection with the Sigma rules the demo carries.\n\
             [detect]\n\
             rules = [\"demo/rules/sigma\", \"demo/rules/sigma-correlation\"]\n",
        )
        .with_context(|| format!("cannot write `{}`", config.display()))?;
    }
    Ok(Demo { samples, dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_carries_every_source_with_its_licence() {
        let names: Vec<&str> = embedded::FILES.iter().map(|(n, _)| *n).collect();
        for want in [
            "testdata/cloudtrail/stratus/LICENSE",
            "testdata/k8s-audit/falco/LICENSE",
            "testdata/github/LICENSE",
            "testdata/gitlab/LICENSE",
            "testdata/pgaudit/LICENSE",
            "testdata/github/github-audit.ndjson",
            "testdata/linux/auth.log",
            "rules/sigma/LICENSE",
        ] {
            assert!(names.contains(&want), "{want} not embedded");
        }
        assert!(!names.iter().any(|n| n.starts_with("testdata/expected/")));
        assert!(
            names
                .iter()
                .filter(|n| n.starts_with("rules/sigma/"))
                .count()
                > 100
        );
        let dir = tempfile::tempdir().unwrap();
        let demo = prepare(dir.path()).unwrap();
        assert!(demo.samples.len() > 50, "{}", demo.samples.len());
        assert!(demo.samples.iter().all(|p| p.exists()));
        assert!(
            demo.samples
                .iter()
                .all(|p| !p.ends_with("LICENSE") && !p.to_string_lossy().contains("/expected/"))
        );
        let config = std::fs::read_to_string(dir.path().join("acta.toml")).unwrap();
        assert!(config.contains("demo/rules/sigma"));
        // An operator's configuration is kept.
        std::fs::write(dir.path().join("acta.toml"), "# mine\n").unwrap();
        prepare(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("acta.toml")).unwrap(),
            "# mine\n"
        );
    }
}

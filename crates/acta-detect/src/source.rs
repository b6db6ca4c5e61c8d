//! Log sources: which acta sources a rule's `logsource` names.
//!
//! | `logsource` | acta sources |
//! |---|---|
//! | product `aws` (service `cloudtrail` or none) | `cloudtrail` |
//! | product `github` (service `audit` or none) | `github-audit` |
//! | product `gitlab` (service `audit` or none) | `gitlab-audit` |
//! | product `kubernetes` (service `audit` or none) | `k8s-audit` |
//! | product `linux` with no category, any service but `auditd` (`auth`, `sshd`, `sudo`, `syslog`, `cron`, `vsftpd`, …: programs that log through syslog) | `syslog`, `journald` |
//! | category `database` (product none or `postgresql`) | `pgaudit` |
//!
//! Any other log source (Linux `auditd` or process events, GCP, Okta, …)
//! names no acta source yet: such rules load, and match nothing.

use crate::rule::LogSource;

/// The acta sources a `logsource` applies to.
pub fn acta_sources(logsource: &LogSource) -> Vec<&'static str> {
    let product = logsource.product.as_deref();
    let service = logsource.service.as_deref();
    let category = logsource.category.as_deref();
    let service_is = |wanted: &str| service.is_none_or(|s| s == wanted);
    match (product, category) {
        (Some("aws"), _) if service_is("cloudtrail") => vec!["cloudtrail"],
        (Some("github"), _) if service_is("audit") => vec!["github-audit"],
        (Some("gitlab"), _) if service_is("audit") => vec!["gitlab-audit"],
        (Some("kubernetes"), _) if service_is("audit") => vec!["k8s-audit"],
        (Some("linux"), None) if service != Some("auditd") => vec!["syslog", "journald"],
        (None | Some("postgresql"), Some("database")) if service.is_none() => vec!["pgaudit"],
        _ => Vec::new(),
    }
}

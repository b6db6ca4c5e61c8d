//! `acta token create | list | revoke`.

use std::process::ExitCode;

use anyhow::{Result, anyhow};

use crate::datadir::DataDir;
use crate::tokens::{Role, Tokens, tokens_file};
use crate::units;

fn prepared(data: &DataDir) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(data.root())
        .map_err(|e| anyhow!("cannot create `{}`: {e}", data.root().display()))?;
    Ok(tokens_file(data.root()))
}

pub fn create(data: &DataDir, role: &str, name: &str, expires: Option<&str>) -> Result<ExitCode> {
    let role: Role = role.parse().map_err(|e: String| anyhow!("--role: {e}"))?;
    let now = acta_ledger::now_ms() as i64;
    let expires_ms = expires
        .map(|e| {
            acta_query::parse_duration(e)
                .map_err(|err| anyhow!("--expires: {err}"))
                .map(|d| now.saturating_add(d))
        })
        .transpose()?;
    let path = prepared(data)?;
    let mut tokens = Tokens::load(&path)?;
    let (token, record) = tokens.create(role.clone(), name, expires_ms, now)?;
    tokens.save(&path)?;
    println!("{token}");
    eprintln!(
        "created {} token {}{}; it is shown once, keep it",
        role.name(),
        record.id,
        record
            .expires_ms
            .map(|e| format!(", valid until {}", units::timestamp(e)))
            .unwrap_or_default()
    );
    // Roles mean what the server's policies grant them.
    let policies_path = crate::serve::policies_file(data.root());
    let policies = match std::fs::read_to_string(&policies_path) {
        Ok(text) => crate::serve::Policies::parse(&text, &policies_path.display().to_string()),
        Err(_) => crate::serve::Policies::parse(crate::serve::DEFAULT_POLICIES, "built-in"),
    };
    match policies {
        Ok(p) if !p.mentions_role(role.name()) => eprintln!(
            "warning: no policy names role `{}` ({}): grant it something there, or the token may do nothing",
            role.name(),
            policies_path.display()
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: {e:#}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(data: &DataDir) -> Result<ExitCode> {
    let tokens = Tokens::load(&tokens_file(data.root()))?;
    let now = acta_ledger::now_ms() as i64;
    println!(
        "{:<12}  {:<8}  {:<20}  {:<20}  {:<8}  name",
        "id", "role", "created", "expires", "status"
    );
    for t in tokens.records() {
        let status = if t.revoked_ms.is_some() {
            "revoked"
        } else if t.expires_ms.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        println!(
            "{:<12}  {:<8}  {:<20}  {:<20}  {:<8}  {}",
            t.id,
            t.role.name(),
            units::timestamp(t.created_ms),
            t.expires_ms
                .map(units::timestamp)
                .unwrap_or_else(|| "never".into()),
            status,
            t.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn revoke(data: &DataDir, id: &str) -> Result<ExitCode> {
    let path = tokens_file(data.root());
    let mut tokens = Tokens::load(&path)?;
    let now = acta_ledger::now_ms() as i64;
    let record = tokens.revoke(id, now)?.clone();
    tokens.save(&path)?;
    eprintln!("revoked {} token {}", record.role.name(), record.id);
    Ok(ExitCode::SUCCESS)
}

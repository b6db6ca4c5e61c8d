//! acta's own API tokens, kept in `<data-dir>/tokens.json`.
//!
//! A token is `acta_<id>_<secret>`: a 12-hex-digit id that names it in lists and logs, and 32
//! random bytes (base64url). Only the SHA-256 of the whole token is stored, so the file does not
//! let anyone call the API; a presented token is found by its id and its hash compared in
//! constant time. Each token has one role, which the server's Cedar policies grant actions to
//! (built in: `admin` reads, writes and manages tokens, `auditor` reads, `ingest` writes); a token
//! may expire and may be revoked, which takes effect at the server's next request (it rereads the
//! file when it changes).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The token file of a data directory.
pub fn tokens_file(root: &Path) -> PathBuf {
    root.join("tokens.json")
}

/// A token's role: the name the Cedar policies of `acta serve` grant actions to
/// (`Acta::Role::"<name>"`). The built-in policies know `admin` (read, write, manage tokens),
/// `auditor` (read) and `ingest` (write); an operator's policy file may grant others, such as an
/// auditor limited to one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Role(String);

/// What a request does, as the policies see it (`Acta::Action::"read"` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Search, count, read events and alerts.
    Read,
    /// Ingest records.
    Write,
    /// Create, list or revoke tokens.
    Manage,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Manage => "manage",
        }
    }
}

/// The roles the built-in policies grant.
pub const BUILT_IN_ROLES: [&str; 3] = ["admin", "auditor", "ingest"];

impl Role {
    /// The role that manages tokens and does everything else.
    pub fn admin() -> Role {
        Role("admin".to_owned())
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    pub fn is_admin(&self) -> bool {
        self.0 == "admin"
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if ok {
            Ok(Role(s.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a role name: lowercase letters, digits, `-`, `_` and `.`, starting with a letter, at most 64 (built in: {})",
                s.chars().take(80).collect::<String>(),
                BUILT_IN_ROLES.join(", ")
            ))
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(s: String) -> Result<Role, String> {
        s.parse()
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.0
    }
}

/// One token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the whole token, hex.
    pub sha256: String,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<i64>,
}

/// Why a presented token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not of the form `acta_<id>_<secret>`.
    Malformed,
    /// No token with that id and secret.
    Unknown,
    Revoked,
    Expired,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::Malformed => "the bearer token is not an acta token (acta_<id>_<secret>)",
            Refused::Unknown => "unknown bearer token",
            Refused::Revoked => "the bearer token was revoked",
            Refused::Expired => "the bearer token has expired",
        }
    }
}

/// The tokens of a data directory.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    tokens: Vec<Record>,
}

/// Largest token file read, in bytes.
const MAX_FILE: u64 = 16 << 20;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal contents, in time that depends on the length only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// The tokens in `path`; none if the file does not exist.
    pub fn load(path: &Path) -> Result<Tokens> {
        let text = match fs::metadata(path) {
            Ok(m) if m.len() > MAX_FILE => bail!("`{}` is too large", path.display()),
            Ok(_) => fs::read_to_string(path)
                .with_context(|| format!("cannot read `{}`", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Tokens::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("`{}` is damaged", path.display()))
    }

    /// Writes the tokens to `path` (readable by its owner only), through a temporary file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot write `{}`", tmp.display()))?;
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
        }
        fs::rename(&tmp, path).with_context(|| format!("cannot write `{}`", path.display()))?;
        Ok(())
    }

    pub fn records(&self) -> &[Record] {
        &self.tokens
    }

    /// Whether an unrevoked, unexpired admin token exists.
    pub fn has_admin(&self, now_ms: i64) -> bool {
        self.tokens.iter().any(|t| {
            t.role.is_admin() && t.revoked_ms.is_none() && t.expires_ms.is_none_or(|e| e > now_ms)
        })
    }

    /// Creates a token and returns it: the only time its secret is known.
    pub fn create(
        &mut self,
        role: Role,
        name: &str,
        expires_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(String, Record)> {
        let mut id = [0u8; 6];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id).map_err(|e| anyhow!("no randomness: {e}"))?;
        getrandom::fill(&mut secret).map_err(|e| anyhow!("no randomness: {e}"))?;
        let id = hex(&id);
        let token = format!(
            "acta_{id}_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        self.adopt(&token, role, name, expires_ms, now_ms)
            .map(|r| (token, r))
    }

    /// Records a token chosen elsewhere (e.g. `ACTA_ADMIN_TOKEN`), which must have acta's form.
    pub fn adopt(
        &mut self,
        token: &str,
        role: Role,
        name: &str,
        expires_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<Record> {
        let id = parse(token)
            .ok_or_else(|| anyhow!("{}", Refused::Malformed.message()))?
            .to_owned();
        if self.tokens.iter().any(|t| t.id == id) {
            bail!("a token with id {id} exists already");
        }
        let record = Record {
            id,
            name: name.to_owned(),
            role,
            sha256: hex(&Sha256::digest(token.as_bytes())),
            created_ms: now_ms,
            expires_ms,
            revoked_ms: None,
        };
        self.tokens.push(record.clone());
        Ok(record)
    }

    /// Revokes the token with id `id`.
    pub fn revoke(&mut self, id: &str, now_ms: i64) -> Result<&Record> {
        let t = self
            .tokens
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| anyhow!("no token with id `{id}` (`acta token list` shows them)"))?;
        if t.revoked_ms.is_none() {
            t.revoked_ms = Some(now_ms);
        }
        Ok(t)
    }

    /// The record of a presented token, if it may be used now.
    pub fn check(&self, presented: &str, now_ms: i64) -> Result<&Record, Refused> {
        let id = parse(presented).ok_or(Refused::Malformed)?;
        let t = self
            .tokens
            .iter()
            .find(|t| t.id == id)
            .ok_or(Refused::Unknown)?;
        let digest = hex(&Sha256::digest(presented.as_bytes()));
        if !constant_time_eq(digest.as_bytes(), t.sha256.as_bytes()) {
            return Err(Refused::Unknown);
        }
        if t.revoked_ms.is_some() {
            return Err(Refused::Revoked);
        }
        if t.expires_ms.is_some_and(|e| e <= now_ms) {
            return Err(Refused::Expired);
        }
        Ok(t)
    }
}

/// The id of a token of the form `acta_<12 hex digits>_<secret>`.
fn parse(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("acta_")?;
    let (id, secret) = rest.split_once('_')?;
    let ok = id.len() == 12
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && (16..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_token_works_until_revoked_or_expired() {
        let mut t = Tokens::default();
        let (token, rec) = t
            .create("auditor".parse().unwrap(), "ci", Some(2_000), 1_000)
            .unwrap();
        assert!(token.starts_with(&format!("acta_{}_", rec.id)));
        assert!(!serde_json::to_string(&t).unwrap().contains(&token[18..]));
        assert_eq!(t.check(&token, 1_500).unwrap().role.name(), "auditor");
        assert_eq!(t.check(&token, 2_000), Err(Refused::Expired));
        let mut forged = token.clone();
        forged.pop();
        forged.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(t.check(&forged, 1_500), Err(Refused::Unknown));
        assert_eq!(t.check("Bearer x", 1_500), Err(Refused::Malformed));
        t.revoke(&rec.id, 1_600).unwrap();
        assert_eq!(t.check(&token, 1_700), Err(Refused::Revoked));
        assert!(t.revoke("000000000000", 1).is_err());
    }

    #[test]
    fn role_names_are_checked() {
        for ok in ["admin", "auditor", "ingest", "auditor-github", "team.sre_2"] {
            assert_eq!(ok.parse::<Role>().unwrap().name(), ok);
        }
        for bad in ["", "Admin", "-x", "a b", "a\"b", "é", &"a".repeat(65)] {
            assert!(bad.parse::<Role>().is_err(), "{bad}");
        }
        let back: Role = serde_json::from_str("\"auditor\"").unwrap();
        assert_eq!(back.name(), "auditor");
        assert!(serde_json::from_str::<Role>("\"Root!\"").is_err());
    }

    #[test]
    fn the_file_round_trips_and_rejects_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = tokens_file(dir.path());
        let mut t = Tokens::default();
        let (token, _) = t
            .create("ingest".parse().unwrap(), "ship", None, 5)
            .unwrap();
        t.save(&path).unwrap();
        let back = Tokens::load(&path).unwrap();
        assert_eq!(back.check(&token, 10).unwrap().name, "ship");
        fs::write(&path, r#"{"tokens":[],"extra":1}"#).unwrap();
        assert!(Tokens::load(&path).is_err());
        assert!(
            Tokens::load(&dir.path().join("absent.json"))
                .unwrap()
                .records()
                .is_empty()
        );
    }
}

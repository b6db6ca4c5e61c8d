//! The server's configuration file: `acta serve --config FILE`, else `<data-dir>/acta.toml` when
//! it exists, else the defaults.
//!
//! ```toml
//! [receivers.github]          # POST /api/v1/ingest/github
//! secret_env = "ACTA_GITHUB_WEBHOOK_SECRET"   # or secret_file = "…", or secret = "…"
//!
//! [receivers.gitlab]          # POST /api/v1/ingest/gitlab
//! token_file = "gitlab-streaming-token"       # relative to this file
//!
//! [receivers.kubernetes]      # POST /api/v1/ingest/kubernetes
//!
//! [limits]
//! max_body_bytes = "64MiB"
//! requests_per_second = 200
//! ```
//!
//! Unknown keys are errors, each naming the file and the key, so a misspelt limit is never
//! silently ignored. Secrets are read once, at start; no `Debug` output, log line or error message
//! ever holds one ([`Secret`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use acta_ledger::SourceName;
use anyhow::{Context as _, Result, anyhow};
use serde::Deserialize;

/// The name of the configuration file looked for in the data directory.
pub const FILE_NAME: &str = "acta.toml";

/// `acta.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The native receivers (`[receivers.github]`, `[receivers.gitlab]`,
    /// `[receivers.kubernetes]`); each is off unless its section is present.
    pub receivers: Receivers,
    /// Request limits of every ingest route (`[limits]`).
    pub limits: Limits,
    /// Detection on what the server stores (`[detect]`): the keys of `acta ingest --detect`'s
    /// file (`rules`, `min_level`, `[detect.behaviour.*]`, `[[detect.sink]]`), rule directories
    /// relative to this file.
    pub detect: Option<crate::detection::Config>,
    /// The file this configuration was read from; `None` for the defaults.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Receivers {
    pub github: Option<Github>,
    pub gitlab: Option<Gitlab>,
    pub kubernetes: Option<Kubernetes>,
}

/// `[receivers.github]`: GitHub webhook deliveries, signed with a shared secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Github {
    /// `false` turns the receiver off while keeping its section.
    #[serde(default = "on")]
    pub enabled: bool,
    /// Source name of the stored entries; default `github-webhook`.
    pub source: Option<String>,
    /// The webhook secret, written in the file.
    secret: Option<Secret>,
    /// A file holding the webhook secret (surrounding whitespace ignored), relative to this file.
    secret_file: Option<PathBuf>,
    /// An environment variable holding the webhook secret.
    secret_env: Option<String>,
    /// The secret, once read from wherever it is.
    #[serde(skip)]
    resolved: Option<Secret>,
}

/// `[receivers.gitlab]`: GitLab streaming audit events, with the destination's verification
/// token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gitlab {
    #[serde(default = "on")]
    pub enabled: bool,
    /// Source name of the stored entries; default `gitlab-audit`.
    pub source: Option<String>,
    token: Option<Secret>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
    #[serde(skip)]
    resolved: Option<Secret>,
}

/// `[receivers.kubernetes]`: the API server's audit webhook backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    #[serde(default = "on")]
    pub enabled: bool,
    /// Source name of the stored entries; default `k8s-audit`.
    pub source: Option<String>,
}

fn on() -> bool {
    true
}

/// `[limits]`: what one request may ask of the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, as sent (compressed or not).
    pub max_body_bytes: ByteSize,
    /// Largest body once a gzip body is decompressed.
    pub max_decompressed_bytes: ByteSize,
    /// Most records one request may hold (after splitting arrays and envelopes).
    pub max_records: u64,
    /// Requests (ingest and reads of the trail) per second per token, sustained; `0`: no limit.
    pub requests_per_second: f64,
    /// Requests a token may send at once above the sustained rate.
    pub burst: u32,
    /// Longest wait for a request's headers (and for the next request on an idle connection).
    pub header_timeout: Seconds,
    /// Longest time to receive a request's body.
    pub body_timeout: Seconds,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: ByteSize(64 << 20),
            max_decompressed_bytes: ByteSize(256 << 20),
            max_records: 100_000,
            requests_per_second: 1_000.0,
            burst: 2_000,
            header_timeout: Seconds(Duration::from_secs(30)),
            body_timeout: Seconds(Duration::from_secs(60)),
        }
    }
}

impl Config {
    /// The configuration of a data directory: `explicit` (which must exist) if given, else
    /// `<data-dir>/acta.toml` if present, else the defaults. Secrets are read here.
    pub fn load(explicit: Option<&Path>, data_root: &Path) -> Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = data_root.join(FILE_NAME);
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the configuration `{}`", path.display()))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            // Where and what, without the offending line itself: it may hold a secret.
            let (line, column) = e.span().map_or((0, 0), |s| {
                let before = text.get(..s.start).unwrap_or("");
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                (line, column)
            });
            anyhow!("{}:{line}:{column}: {}", path.display(), e.message())
        })?;
        let at = |what: &str| format!("{}: {what}", path.display());
        config.limits.check().map_err(|e| anyhow!("{}", at(&e)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut inline = false;
        if let Some(g) = config.receivers.github.as_mut().filter(|g| g.enabled) {
            inline |= g.secret.is_some();
            check_source(g.source.as_deref(), "[receivers.github]").map_err(|e| anyhow!(at(&e)))?;
            g.resolved = Some(
                resolve(
                    SecretFrom {
                        section: "[receivers.github]",
                        keys: ["secret", "secret_file", "secret_env"],
                        inline: g.secret.take(),
                        file: g.secret_file.as_deref(),
                        env: g.secret_env.as_deref(),
                    },
                    base,
                )
                .map_err(|e| anyhow!(at(&e)))?,
            );
        }
        if let Some(g) = config.receivers.gitlab.as_mut().filter(|g| g.enabled) {
            inline |= g.token.is_some();
            check_source(g.source.as_deref(), "[receivers.gitlab]").map_err(|e| anyhow!(at(&e)))?;
            g.resolved = Some(
                resolve(
                    SecretFrom {
                        section: "[receivers.gitlab]",
                        keys: ["token", "token_file", "token_env"],
                        inline: g.token.take(),
                        file: g.token_file.as_deref(),
                        env: g.token_env.as_deref(),
                    },
                    base,
                )
                .map_err(|e| anyhow!(at(&e)))?,
            );
        }
        if let Some(k) = &config.receivers.kubernetes {
            check_source(k.source.as_deref(), "[receivers.kubernetes]")
                .map_err(|e| anyhow!(at(&e)))?;
        }
        if let Some(d) = config.detect.as_mut() {
            for dir in &mut d.rules {
                if dir.is_relative() {
                    *dir = base.join(&*dir);
                }
            }
        }
        if inline && readable_by_others(&path) {
            eprintln!(
                "acta: warning: `{}` holds a secret and is readable by other users; \
                 `chmod 600` it, or use secret_file/secret_env",
                path.display()
            );
        }
        config.path = Some(path);
        Ok(config)
    }
}

impl Github {
    /// The webhook secret (present once the configuration is loaded and the receiver enabled).
    pub fn secret(&self) -> Option<&Secret> {
        self.resolved.as_ref()
    }
}

impl Gitlab {
    /// The streaming destination's verification token.
    pub fn token(&self) -> Option<&Secret> {
        self.resolved.as_ref()
    }
}

/// A source name given in the file: valid, and not acta's own.
fn check_source(source: Option<&str>, section: &str) -> Result<(), String> {
    let Some(s) = source else { return Ok(()) };
    SourceName::new(s).map_err(|e| format!("{section} source: {e}"))?;
    if acta_ingest::formats::Format::is_reserved_source(s) {
        return Err(format!(
            "{section} source: `{s}` is reserved for the records acta writes itself"
        ));
    }
    Ok(())
}

/// Where one secret comes from, as written in its section.
struct SecretFrom<'a> {
    section: &'static str,
    /// The names of the inline, file and environment keys.
    keys: [&'static str; 3],
    inline: Option<Secret>,
    file: Option<&'a Path>,
    env: Option<&'a str>,
}

fn resolve(from: SecretFrom<'_>, base: &Path) -> Result<Secret, String> {
    let [k_inline, k_file, k_env] = from.keys;
    let given = usize::from(from.inline.is_some())
        + usize::from(from.file.is_some())
        + usize::from(from.env.is_some());
    if given != 1 {
        return Err(format!(
            "{}: give exactly one of `{k_inline}`, `{k_file}` or `{k_env}` (or `enabled = false`)",
            from.section
        ));
    }
    let secret = if let Some(s) = from.inline {
        s
    } else if let Some(file) = from.file {
        let path = base.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{} {k_file}: cannot read `{}`: {e}",
                from.section,
                path.display()
            )
        })?;
        Secret(text.trim().to_owned())
    } else if let Some(var) = from.env {
        let value = std::env::var(var).map_err(|_| {
            format!(
                "{} {k_env}: the environment variable `{var}` is not set (or not UTF-8)",
                from.section
            )
        })?;
        Secret(value.trim().to_owned())
    } else {
        return Err(format!("{}: no secret given", from.section));
    };
    if secret.0.is_empty() {
        return Err(format!("{}: the secret is empty", from.section));
    }
    Ok(secret)
}

fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

impl Limits {
    fn check(&self) -> Result<(), String> {
        if self.max_body_bytes.0 == 0 || self.max_decompressed_bytes.0 == 0 {
            return Err("[limits] byte limits must be more than 0".into());
        }
        if self.max_records == 0 {
            return Err("[limits] max_records must be more than 0".into());
        }
        if !self.requests_per_second.is_finite() || self.requests_per_second < 0.0 {
            return Err("[limits] requests_per_second must be 0 (no limit) or more".into());
        }
        if self.requests_per_second > 0.0 && self.burst == 0 {
            return Err("[limits] burst must be at least 1 when requests_per_second is set".into());
        }
        Ok(())
    }
}

/// A secret from the configuration: never printed, not even in an error about its type.
#[derive(Clone)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret in quotes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom("a secret must be a string, in quotes"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom("a secret must be a string, in quotes"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("a secret must be a string, in quotes"))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom("a secret must be a string, in quotes"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Secret {
    /// The secret's bytes, for a MAC or a comparison; never for output.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// A number of bytes: an integer, or a string with a unit (`"64MiB"`, `"512 KiB"`, `"1GB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn get(self) -> u64 {
        self.0
    }
}

/// Parses `"64MiB"`, `"512 kib"`, `"10MB"`, `"1000"`: binary (`KiB`, `MiB`, `GiB`) and decimal
/// (`KB`, `MB`, `GB`) units, case-insensitive.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid size `{t}`: write e.g. 65536, \"64KiB\" or \"64MiB\""))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "invalid size `{t}`: unknown unit `{other}` (B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("invalid size `{t}`: too large"))
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of bytes, or a string such as \"64MiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration: a string such as `"30s"`, `"2m"` or `"1m30s"` (units `w`, `d`, `h`, `m`, `s`), or
/// a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl Seconds {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30s\" or \"2m\", or a number of seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Seconds, E> {
                if v == 0 {
                    return Err(E::custom("a timeout must be more than 0"));
                }
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a duration cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                let ms = acta_query::parse_duration(v).map_err(E::custom)?;
                if ms <= 0 {
                    return Err(E::custom("a timeout must be more than 0"));
                }
                Ok(Seconds(Duration::from_millis(ms.unsigned_abs())))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acta.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(None, dir.path())
    }

    #[test]
    fn defaults_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::load(None, dir.path()).unwrap();
        assert!(c.path.is_none());
        assert!(c.receivers.github.is_none());
        assert_eq!(c.limits.max_body_bytes.get(), 64 << 20);
        // An explicit file must exist.
        let e = Config::load(Some(&dir.path().join("nope.toml")), dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains("nope.toml"), "{e:#}");
    }

    #[test]
    fn sizes_durations_and_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gl-token"), "tok-123\n").unwrap();
        let path = dir.path().join("acta.toml");
        std::fs::write(
            &path,
            r#"
[receivers.github]
secret = "s3cr3t-value"
source = "gh"
[receivers.gitlab]
token_file = "gl-token"
[receivers.kubernetes]
[limits]
max_body_bytes = "1MiB"
max_decompressed_bytes = 5000000
header_timeout = "2s"
body_timeout = 3
"#,
        )
        .unwrap();
        let c = Config::load(Some(&path), Path::new("/nonexistent")).unwrap();
        let gh = c.receivers.github.as_ref().unwrap();
        assert_eq!(gh.secret().unwrap().expose(), b"s3cr3t-value");
        assert_eq!(gh.source.as_deref(), Some("gh"));
        assert_eq!(
            c.receivers
                .gitlab
                .as_ref()
                .unwrap()
                .token()
                .unwrap()
                .expose(),
            b"tok-123"
        );
        assert!(c.receivers.kubernetes.as_ref().unwrap().enabled);
        assert_eq!(c.limits.max_body_bytes.get(), 1 << 20);
        assert_eq!(c.limits.max_decompressed_bytes.get(), 5_000_000);
        assert_eq!(c.limits.header_timeout.get(), Duration::from_secs(2));
        assert_eq!(c.limits.body_timeout.get(), Duration::from_secs(3));
        // Secrets stay out of debug output.
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(!debug.contains("tok-123"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acta.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        let c: Config = toml::from_str(&text).unwrap();
        let d = Limits::default();
        assert_eq!(c.limits.max_body_bytes, d.max_body_bytes);
        assert_eq!(c.limits.max_decompressed_bytes, d.max_decompressed_bytes);
        assert_eq!(c.limits.max_records, d.max_records);
        assert_eq!(c.limits.header_timeout, d.header_timeout);
        assert_eq!(c.limits.body_timeout, d.body_timeout);
        assert!(c.receivers.github.is_some() && c.receivers.gitlab.is_some());
        assert!(c.receivers.kubernetes.is_some_and(|k| k.enabled));
        // Its files and variables, supplied, make a working configuration.
        let dir = tempfile::tempdir().unwrap();
        let text = text.replace(
            "secret_env = \"ACTA_GITHUB_WEBHOOK_SECRET\"",
            "secret = \"from-the-example\"",
        );
        std::fs::write(dir.path().join("acta.toml"), text).unwrap();
        std::fs::write(dir.path().join("gitlab-streaming-token"), "t0ken\n").unwrap();
        let c = Config::load(None, dir.path()).unwrap();
        assert_eq!(
            c.receivers.gitlab.unwrap().token().unwrap().expose(),
            b"t0ken"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        for (text, wanted) in [
            ("[limits]\nmax_body = 5\n", "max_body"),
            ("[limts]\n", "limts"),
            ("[receivers.github]\n", "exactly one of `secret`"),
            (
                "[receivers.github]\nsecret = \"a\"\nsecret_env = \"B\"\n",
                "exactly one of",
            ),
            (
                "[receivers.gitlab]\ntoken_env = \"ACTA_TEST_UNSET_VARIABLE_42\"\n",
                "ACTA_TEST_UNSET_VARIABLE_42",
            ),
            (
                "[receivers.gitlab]\ntoken_file = \"missing\"\n",
                "token_file",
            ),
            ("[receivers.kubernetes]\nsource = \"Bad Name\"\n", "source"),
            (
                "[receivers.kubernetes]\nsource = \"acta-finding\"\n",
                "reserved",
            ),
            ("[limits]\nmax_body_bytes = \"12XB\"\n", "unknown unit"),
            ("[limits]\nheader_timeout = \"0s\"\n", "more than 0"),
            ("[limits]\nmax_records = 0\n", "max_records"),
            (
                "[limits]\nrequests_per_second = -1.0\n",
                "requests_per_second",
            ),
            ("\n[limits]\n  max_records = \"many\"\n", "acta.toml:3:17:"),
        ] {
            let e = format!("{:#}", load_text(text).unwrap_err());
            assert!(e.contains("acta.toml"), "{text}: {e}");
            assert!(e.contains(wanted), "{text}: {e}");
        }
        // A secret of the wrong type is not shown in the error.
        let e = format!(
            "{:#}",
            load_text("[receivers.github]\nsecret = 987654321\n").unwrap_err()
        );
        assert!(e.contains("in quotes") && !e.contains("987654321"), "{e}");
        // A disabled receiver needs no secret.
        let c = load_text("[receivers.github]\nenabled = false\n").unwrap();
        assert!(c.receivers.github.unwrap().secret().is_none());
    }
}

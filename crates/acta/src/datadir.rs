//! The data directory: where the ledger and the log's keys live.

use std::path::{Path, PathBuf};

use acta_ledger::keys::{KeyFiles, read_verifier};
use acta_ledger::{Ledger, LedgerOptions, VerifierKey};
use anyhow::{Context as _, Result, bail};

/// `<data-dir>/ledger` and `<data-dir>/keys`.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn ledger_dir(&self) -> PathBuf {
        self.root.join("ledger")
    }

    pub fn keys(&self) -> KeyFiles {
        KeyFiles::in_dir(&self.root.join("keys"))
    }

    /// Opens the ledger for writing, creating the directory, the key pair and the ledger as
    /// needed. Recovers from an interrupted write.
    pub fn open_ledger(&self) -> Result<Ledger> {
        let (key, _) = self.keys().load_or_create()?;
        Ok(Ledger::open(
            &self.ledger_dir(),
            key,
            LedgerOptions::default(),
        )?)
    }

    /// Whether a ledger exists here.
    pub fn has_ledger(&self) -> bool {
        self.ledger_dir().join("FORMAT").exists()
    }

    /// The verifier key: `arg` as a key or a file holding one, else the data directory's own.
    pub fn verifier_key(&self, arg: Option<&str>) -> Result<VerifierKey> {
        match arg {
            Some(text) => match VerifierKey::parse(text) {
                Ok(k) => Ok(k),
                Err(parse_err) => {
                    let path = Path::new(text);
                    if path.exists() {
                        Ok(read_verifier(path)?)
                    } else {
                        bail!("`{text}` is neither a verifier key nor a file: {parse_err}")
                    }
                }
            },
            None => {
                let keys = self.keys();
                keys.load_verifier().with_context(|| {
                    format!(
                        "no verifier key given and none in `{}`; pass --key",
                        keys.public.display()
                    )
                })
            }
        }
    }
}

//! The log's key files.
//!
//! The private key (`log.key`, mode 0600) signs checkpoints; the verifier key (`log.pub`) is what
//! auditors and witnesses pin. Both are text, in the forms the Go `note` package uses.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::note::{LogKey, NoteError, VerifierKey};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file operation failed.
    #[error("cannot {op} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file does not hold a valid key.
    #[error("`{}` does not hold a valid key: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: NoteError,
    },
    /// The private key is readable by others.
    #[error("`{}` is readable by other users (mode {mode:04o}); run `chmod 600` on it", path.display())]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// No randomness for a new key.
    #[error("cannot make a new key: no randomness from the operating system ({0})")]
    Random(String),
}

/// Paths of a key pair.
#[derive(Clone, Debug)]
pub struct KeyFiles {
    /// The private key.
    pub private: PathBuf,
    /// The verifier (public) key.
    pub public: PathBuf,
}

impl KeyFiles {
    /// `log.key` and `log.pub` in `dir`.
    pub fn in_dir(dir: &Path) -> KeyFiles {
        KeyFiles {
            private: dir.join("log.key"),
            public: dir.join("log.pub"),
        }
    }

    /// Loads the private key, making a new key pair first if there is none. Returns the key and
    /// whether it was just made.
    pub fn load_or_create(&self) -> Result<(LogKey, bool), KeyError> {
        match fs::read_to_string(&self.private) {
            Ok(text) => {
                let mode = fs::metadata(&self.private)
                    .map_err(|source| KeyError::Io {
                        op: "inspect",
                        path: self.private.clone(),
                        source,
                    })?
                    .permissions()
                    .mode()
                    & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::TooOpen {
                        path: self.private.clone(),
                        mode,
                    });
                }
                let key = LogKey::parse(&text).map_err(|source| KeyError::Invalid {
                    path: self.private.clone(),
                    source,
                })?;
                if !self.public.exists() {
                    self.write_public(&key)?;
                }
                Ok((key, false))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((self.create()?, true)),
            Err(source) => Err(KeyError::Io {
                op: "read",
                path: self.private.clone(),
                source,
            }),
        }
    }

    fn create(&self) -> Result<LogKey, KeyError> {
        let key = LogKey::generate().map_err(|e| KeyError::Random(e.to_string()))?;
        if let Some(dir) = self.private.parent() {
            fs::create_dir_all(dir).map_err(|source| KeyError::Io {
                op: "create directory",
                path: dir.to_owned(),
                source,
            })?;
        }
        // Created with mode 0600 from the start: the key is never readable by others, not even
        // for a moment. `create_new` refuses to overwrite a key another process just made.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.private)
            .map_err(|source| KeyError::Io {
                op: "create",
                path: self.private.clone(),
                source,
            })?;
        f.write_all(format!("{}\n", key.to_private_text()).as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|source| KeyError::Io {
                op: "write",
                path: self.private.clone(),
                source,
            })?;
        self.write_public(&key)?;
        Ok(key)
    }

    fn write_public(&self, key: &LogKey) -> Result<(), KeyError> {
        fs::write(&self.public, format!("{}\n", key.verifier())).map_err(|source| KeyError::Io {
            op: "write",
            path: self.public.clone(),
            source,
        })
    }

    /// Reads the verifier key from `log.pub`.
    pub fn load_verifier(&self) -> Result<VerifierKey, KeyError> {
        read_verifier(&self.public)
    }
}

/// Reads a verifier key from a file holding it as text.
pub fn read_verifier(path: &Path) -> Result<VerifierKey, KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })?;
    VerifierKey::parse(&text).map_err(|source| KeyError::Invalid {
        path: path.to_owned(),
        source,
    })
}

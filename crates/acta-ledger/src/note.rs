//! Signed notes, checkpoints and log keys (<https://c2sp.org/signed-note>,
//! <https://c2sp.org/tlog-checkpoint>).
//!
//! A checkpoint is the text `origin\nsize\nbase64(root)\n`; the log signs it with Ed25519 and
//! appends the signature line `— <key name> base64(key ID || signature)`. Keys are written in the
//! same text forms as the Go `note` package uses, so third-party tools read them:
//! `<name>+<hex key ID>+base64(0x01 || public key)` for verifiers and
//! `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || seed)` for signers.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// Signature type byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;

/// Largest note accepted, in bytes: a checkpoint with dozens of witness signatures fits easily.
pub const MAX_NOTE_LEN: usize = 64 * 1024;

/// Most signature lines accepted in one note (the spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Why a key, note or checkpoint was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key string is malformed.
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    /// The note breaks the signed-note format.
    #[error("malformed signed note: {0}")]
    Malformed(&'static str),
    /// No signature by the expected key is present.
    #[error("no signature by key {0} on the note")]
    Unsigned(String),
    /// A signature by the expected key does not verify.
    #[error("signature by key {0} does not verify: the note was altered or signed by another key")]
    BadSignature(String),
    /// The note text is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(&'static str),
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public);
    let d: [u8; 32] = h.finalize().into();
    let (id, _) = d.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
    *id
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn hex4(id: [u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(id))
}

/// A public key that verifies a log's notes.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{}+{}", self.name, hex4(self.id), BASE64.encode(raw))
    }
}

impl VerifierKey {
    /// Parses `<name>+<hex key ID>+<base64(0x01 || public key)>`.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let text = text.trim();
        // The name cannot hold '+', but base64 can: split from the left.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey("expected <name>+<key id>+<key>"));
        };
        if !valid_key_name(name) {
            return Err(NoteError::BadKey(
                "key name is empty or holds spaces or '+'",
            ));
        }
        let raw = BASE64
            .decode(b64)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let Some((&ALG_ED25519, public)) = raw.split_first() else {
            return Err(NoteError::BadKey("not an Ed25519 key"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::BadKey("Ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| NoteError::BadKey("not a valid Ed25519 public key"))?;
        let id = key_id(name, &public);
        if hex.len() != 8 || hex4(id) != hex.to_ascii_lowercase() {
            return Err(NoteError::BadKey("key ID does not match the key"));
        }
        Ok(VerifierKey {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The key name (for a log: its origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Opens a signed note: checks its format and this key's signature, and returns the text.
    /// Signatures by other keys are ignored, as the spec requires.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (text, signatures) = split_note(note)?;
        let mut verified = false;
        for (name, sig) in signatures {
            let Some((id, sig)) = sig.split_first_chunk::<4>() else {
                continue;
            };
            if name != self.name || *id != self.id {
                continue;
            }
            let sig =
                <[u8; 64]>::try_from(sig).map_err(|_| NoteError::BadSignature(self.to_string()))?;
            self.key
                .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| NoteError::BadSignature(self.to_string()))?;
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::Unsigned(self.to_string()))
        }
    }
}

/// A signature line: key name and decoded signature (key ID, then the signature proper).
type SignatureLine<'a> = (&'a str, Vec<u8>);

/// Splits a note into its text and its signature lines.
fn split_note(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(NoteError::Malformed("note is larger than 64 KiB"));
    }
    if note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed("note holds control characters"));
    }
    let Some(split) = note.rfind("\n\n") else {
        return Err(NoteError::Malformed("no blank line before the signatures"));
    };
    let (text, sigs) = note.split_at(split + 1);
    let sigs = sigs.strip_prefix('\n').unwrap_or(sigs);
    if !sigs.ends_with('\n') {
        return Err(NoteError::Malformed(
            "signature block does not end in a newline",
        ));
    }
    let mut out = Vec::new();
    for line in sigs.trim_end_matches('\n').split('\n') {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(NoteError::Malformed(
                "signature line does not start with an em dash",
            ));
        };
        let Some((name, b64)) = rest.rsplit_once(' ') else {
            return Err(NoteError::Malformed("signature line has no key name"));
        };
        if !valid_key_name(name) {
            return Err(NoteError::Malformed("bad key name in a signature line"));
        }
        let sig = BASE64
            .decode(b64)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        if sig.len() < 5 {
            return Err(NoteError::Malformed("signature is too short"));
        }
        out.push((name, sig));
        if out.len() > MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures"));
        }
    }
    if out.is_empty() {
        return Err(NoteError::Malformed("no signatures"));
    }
    Ok((text, out))
}

/// The log's signing key.
pub struct LogKey {
    verifier: VerifierKey,
    signing: SigningKey,
}

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private part.
        write!(f, "LogKey({})", self.verifier)
    }
}

impl LogKey {
    /// Makes a new key from 32 random bytes. The key name (the log's origin) is `acta/` followed by
    /// 16 hex digits of the public key's SHA-256, so each log has its own origin.
    pub fn generate() -> Result<LogKey, getrandom::Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)?;
        let signing = SigningKey::from_bytes(&seed);
        let public = signing.verifying_key().to_bytes();
        let digest = crate::hash::sha256(&public).to_hex();
        let name = format!("acta/{}", digest.get(..16).unwrap_or(&digest));
        Ok(LogKey::from_parts(name, signing))
    }

    fn from_parts(name: String, signing: SigningKey) -> LogKey {
        let key = signing.verifying_key();
        let id = key_id(&name, key.as_bytes());
        LogKey {
            verifier: VerifierKey { name, id, key },
            signing,
        }
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`.
    pub fn parse(text: &str) -> Result<LogKey, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey(
                "private key does not start with PRIVATE+KEY+",
            ))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey(
                "expected PRIVATE+KEY+<name>+<key id>+<key>",
            ));
        };
        if !valid_key_name(name) {
            return Err(NoteError::BadKey(
                "key name is empty or holds spaces or '+'",
            ));
        }
        let raw = BASE64
            .decode(b64)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let Some((&ALG_ED25519, seed)) = raw.split_first() else {
            return Err(NoteError::BadKey("not an Ed25519 key"));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| NoteError::BadKey("Ed25519 seed is not 32 bytes"))?;
        let key = LogKey::from_parts(name.to_owned(), SigningKey::from_bytes(&seed));
        if hex4(key.verifier.id) != hex.to_ascii_lowercase() {
            return Err(NoteError::BadKey("key ID does not match the key"));
        }
        Ok(key)
    }

    /// The private key in text form. Handle with care: whoever holds it can sign checkpoints.
    pub fn to_private_text(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.signing.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.verifier.name,
            hex4(self.verifier.id),
            BASE64.encode(raw)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// Key name, which is also the log's origin.
    pub fn name(&self) -> &str {
        &self.verifier.name
    }

    /// Signs `text` (which must end in a newline) and returns the complete signed note.
    /// Ed25519 is deterministic: the same text always yields the same note.
    pub fn sign(&self, text: &str) -> String {
        let sig = self.signing.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&self.verifier.id);
        raw.extend_from_slice(&sig.to_bytes());
        format!(
            "{text}\n\u{2014} {} {}\n",
            self.verifier.name,
            BASE64.encode(raw)
        )
    }
}

/// The body of a checkpoint: which log, how many entries, and the tree root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// RFC 6962 root hash at that size.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        )
    }

    /// Parses checkpoint text. Extension lines are accepted and ignored.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(NoteError::BadCheckpoint("no final newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::BadCheckpoint("empty origin"))?;
        let size_text = lines
            .next()
            .ok_or(NoteError::BadCheckpoint("no size line"))?;
        let canonical = size_text == "0" || (!size_text.starts_with('0') && !size_text.is_empty());
        let size: u64 = size_text
            .parse()
            .ok()
            .filter(|_| canonical && size_text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(NoteError::BadCheckpoint(
                "size is not a canonical decimal number",
            ))?;
        let root = lines
            .next()
            .and_then(Hash::from_base64)
            .ok_or(NoteError::BadCheckpoint("root is not base64 of 32 bytes"))?;
        if lines.any(str::is_empty) {
            return Err(NoteError::BadCheckpoint("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// A checkpoint together with the exact signed note it was read from or signed as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed checkpoint.
    pub checkpoint: Checkpoint,
    /// The complete signed note.
    pub note: String,
}

impl SignedCheckpoint {
    /// Signs a checkpoint.
    pub fn sign(key: &LogKey, size: u64, root: Hash) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            origin: key.name().to_owned(),
            size,
            root,
        };
        let note = key.sign(&checkpoint.to_text());
        SignedCheckpoint { checkpoint, note }
    }

    /// Verifies a signed note with `key` and parses the checkpoint in it; the origin must be the
    /// key's name.
    pub fn open(note: &str, key: &VerifierKey) -> Result<SignedCheckpoint, NoteError> {
        let text = key.open(note)?;
        let checkpoint = Checkpoint::parse(text)?;
        if checkpoint.origin != key.name() {
            return Err(NoteError::BadCheckpoint(
                "origin does not match the log key's name",
            ));
        }
        Ok(SignedCheckpoint {
            checkpoint,
            note: note.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn keys_round_trip_and_sign() {
        let key = LogKey::generate().unwrap();
        let again = LogKey::parse(&key.to_private_text()).unwrap();
        assert_eq!(again.verifier(), key.verifier());
        let v = VerifierKey::parse(&key.verifier().to_string()).unwrap();
        let cp = SignedCheckpoint::sign(&key, 42, sha256(b"root"));
        assert!(cp.note.starts_with(&format!("{}\n42\n", key.name())));
        let opened = SignedCheckpoint::open(&cp.note, &v).unwrap();
        assert_eq!(opened.checkpoint.size, 42);
        // Deterministic signatures: re-signing gives the same bytes.
        assert_eq!(
            SignedCheckpoint::sign(&key, 42, sha256(b"root")).note,
            cp.note
        );
    }

    #[test]
    fn go_note_verifier_key_vector() {
        // The example verifier key from the Go note package documentation.
        let v = VerifierKey::parse(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        )
        .unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        let note = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        let text = v.open(note).unwrap();
        assert!(text.starts_with("If you think"));
        let tampered = note.replace("answer", "Answer");
        assert!(matches!(v.open(&tampered), Err(NoteError::BadSignature(_))));
    }

    #[test]
    fn rejects_bad_notes_and_checkpoints() {
        let key = LogKey::generate().unwrap();
        let other = LogKey::generate().unwrap();
        let cp = SignedCheckpoint::sign(&key, 7, sha256(b"r"));
        assert!(matches!(
            other.verifier().open(&cp.note),
            Err(NoteError::Unsigned(_))
        ));
        for bad in [
            "",
            "text\n",
            "text\n\n",
            "a\n\n\u{2014} x AAAA\n",
            "a\u{1}\n\n\u{2014} x AAAAAAAA\n",
        ] {
            assert!(key.verifier().open(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "o\n01\nAAAA\n",
            "o\n1\n",
            "\n1\nAAA=\n",
            "o\n-1\nAAAA\n",
            "o\n1\nroot\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        let ok = Checkpoint {
            origin: "o".into(),
            size: 0,
            root: sha256(b""),
        };
        assert_eq!(Checkpoint::parse(&ok.to_text()).unwrap(), ok);
    }
}

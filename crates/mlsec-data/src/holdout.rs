//! The sealed held-out set: encrypted to a recipient with age (X25519), so
//! that nobody tunes against it by accident; opened only in memory, once
//! per model, every access appended to a hash-chained log that shows any
//! later edit.

use age::secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::io::Write;
use std::path::Path;

/// Largest sealed file or log read.
pub const MAX_SEALED_BYTES: u64 = 8 << 30;
pub const MAX_LOG_BYTES: u64 = 256 << 20;

/// A new identity (secret, `AGE-SECRET-KEY-1…`) and its recipient
/// (public, `age1…`).
pub fn keygen() -> (String, String) {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    (id.to_string().expose_secret().to_string(), recipient)
}

pub fn seal(plaintext: &[u8], recipient: &str) -> Result<Vec<u8>, String> {
    let r: age::x25519::Recipient = recipient
        .trim()
        .parse()
        .map_err(|e| format!("not an age X25519 recipient (age1…): {e}"))?;
    age::encrypt(&r, plaintext).map_err(|e| e.to_string())
}

/// Decrypts in memory; the identity file may hold comments (`# …`).
pub fn open(sealed: &[u8], identity_text: &str) -> Result<Vec<u8>, String> {
    let line = identity_text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .ok_or("no AGE-SECRET-KEY-1… line in the identity file")?;
    let id: age::x25519::Identity = line.parse().map_err(|e| format!("invalid identity: {e}"))?;
    age::decrypt(&id, sealed)
        .map_err(|e| format!("cannot open the sealed set with this identity: {e}"))
}

/// One access to the sealed set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Access {
    pub seq: u64,
    pub time: String,
    pub sealed_sha256: String,
    pub model_sha256: String,
    pub model: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// SHA-256 of the previous entry's line (64 zeros for the first).
    pub prev: String,
    /// SHA-256 of this entry with `hash` empty.
    pub hash: String,
}

impl Access {
    fn digest(&self) -> String {
        let mut e = self.clone();
        e.hash = String::new();
        let bytes = serde_json::to_vec(&e).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(bytes))
    }
}

/// Reads and checks the access log: each entry's hash, the chain, the
/// sequence. `Err` names the first entry that was altered.
pub fn read_log(path: &Path) -> Result<Vec<Access>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX_LOG_BYTES {
        return Err(format!(
            "{}: larger than {MAX_LOG_BYTES} bytes",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out: Vec<Access> = Vec::new();
    let mut prev = "0".repeat(64);
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let a: Access = serde_json::from_str(line)
            .map_err(|e| format!("{}: line {}: {e}", path.display(), i + 1))?;
        if a.seq != out.len() as u64 || a.prev != prev || a.hash != a.digest() {
            return Err(format!(
                "{}: line {} (entry {}) was altered or the chain is broken",
                path.display(),
                i + 1,
                a.seq
            ));
        }
        prev = a.hash.clone();
        out.push(a);
    }
    Ok(out)
}

/// Appends an access to a verified log (created if missing) and returns it.
pub fn append(
    path: &Path,
    sealed_sha256: &str,
    model: &str,
    model_sha256: &str,
    reason: Option<&str>,
) -> Result<Access, String> {
    let log = read_log(path)?;
    let mut a = Access {
        seq: log.len() as u64,
        time: mlsec_sign::intoto::time::format_utc(mlsec_sign::intoto::time::now_utc()),
        sealed_sha256: sealed_sha256.to_string(),
        model_sha256: model_sha256.to_string(),
        model: model.to_string(),
        reason: reason.map(str::to_string),
        prev: log.last().map_or("0".repeat(64), |l| l.hash.clone()),
        hash: String::new(),
    };
    a.hash = a.digest();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut line = serde_json::to_vec(&a).map_err(|e| e.to_string())?;
    line.push(b'\n');
    f.write_all(&line)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.sync_all()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_a_tamper_evident_log() {
        let (id, recipient) = keygen();
        let sealed = seal(b"x,label\n1,a\n", &recipient).unwrap();
        assert_eq!(
            open(&sealed, &format!("# created by mlsec\n{id}\n")).unwrap(),
            b"x,label\n1,a\n"
        );
        let (other, _) = keygen();
        assert!(open(&sealed, &other).is_err());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        append(&log, "s", "m.safetensors", "aa", None).unwrap();
        append(
            &log,
            "s",
            "m.safetensors",
            "aa",
            Some("re-run after a bug fix"),
        )
        .unwrap();
        assert_eq!(read_log(&log).unwrap().len(), 2);
        let text = std::fs::read_to_string(&log)
            .unwrap()
            .replacen("\"aa\"", "\"bb\"", 1);
        std::fs::write(&log, text).unwrap();
        assert!(read_log(&log).unwrap_err().contains("entry 0"));
    }
}

//! Signing keys: ECDSA P-256 and P-384 (what the reference accepts) and
//! Ed25519 (an mlsec extension), as PEM PKCS#8 / SubjectPublicKeyInfo.

use crate::SignError;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use sha2::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "p-256" | "ecdsa-p256" => Some(KeyKind::P256),
            "p384" | "p-384" | "ecdsa-p384" => Some(KeyKind::P384),
            "ed25519" => Some(KeyKind::Ed25519),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::P256 => "ECDSA P-256",
            KeyKind::P384 => "ECDSA P-384",
            KeyKind::Ed25519 => "Ed25519",
        }
    }
}

pub enum PrivateKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

#[derive(Clone)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PrivateKey {
    pub fn generate(kind: KeyKind) -> PrivateKey {
        let mut rng = rand_core_06::OsRng;
        match kind {
            KeyKind::P256 => PrivateKey::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::P384 => PrivateKey::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::Ed25519 => PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
        }
    }

    /// Reads a PKCS#8 PEM private key of any supported kind.
    pub fn from_pem(pem: &str) -> Result<PrivateKey, SignError> {
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::P384(k.into()));
        }
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            return Ok(PrivateKey::Ed25519(k));
        }
        Err(SignError::Key(
            "not a PKCS#8 PEM private key for ECDSA P-256, P-384 or Ed25519".into(),
        ))
    }

    pub fn to_pem(&self) -> Result<String, SignError> {
        let pem = match self {
            PrivateKey::P256(k) => p256::SecretKey::from(k).to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P384(k) => p384::SecretKey::from(k).to_pkcs8_pem(LineEnding::LF),
            // PKCS#8 v1, without the optional public key: OpenSSL-based
            // tools (Python's cryptography, so in-toto and securesystemslib)
            // refuse the v2 form as "extra data".
            PrivateKey::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|e| SignError::Key(e.to_string()))?;
        Ok(pem.to_string())
    }

    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::P256(k) => PublicKey::P256(*k.verifying_key()),
            PrivateKey::P384(k) => PublicKey::P384(*k.verifying_key()),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// Signs a message: ECDSA over SHA-256/SHA-384 of it (DER signature),
    /// Ed25519 over the message itself (64 bytes).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        use p256::ecdsa::signature::Signer;
        match self {
            PrivateKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            PrivateKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign(msg);
                s.to_der().as_bytes().to_vec()
            }
            PrivateKey::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
        }
    }
}

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<PublicKey, SignError> {
        if let Ok(k) = p256::PublicKey::from_public_key_pem(pem) {
            return Ok(PublicKey::P256(k.into()));
        }
        if let Ok(k) = p384::PublicKey::from_public_key_pem(pem) {
            return Ok(PublicKey::P384(k.into()));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            return Ok(PublicKey::Ed25519(k));
        }
        Err(SignError::Key(
            "not a SubjectPublicKeyInfo PEM public key for ECDSA P-256, P-384 or Ed25519".into(),
        ))
    }

    /// Reads a DER SubjectPublicKeyInfo (as in a certificate).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, SignError> {
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::P256(k.into()));
        }
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::P384(k.into()));
        }
        if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_der(der) {
            return Ok(PublicKey::Ed25519(k));
        }
        Err(SignError::Key(
            "the certificate's key is not ECDSA P-256, P-384 or Ed25519".into(),
        ))
    }

    /// Verifies a DER ECDSA signature over a digest computed by the caller
    /// (certificates name their hash; pre-1.0 bundles always used SHA-256).
    /// Always false for Ed25519, which signs messages, not digests.
    pub fn verify_prehash(&self, digest: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        match self {
            PublicKey::P256(k) => p256::ecdsa::Signature::from_der(sig)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            PublicKey::P384(k) => p384::ecdsa::Signature::from_der(sig)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            PublicKey::Ed25519(_) => false,
        }
    }

    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::P384(_) => KeyKind::P384,
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// SubjectPublicKeyInfo PEM: 64-column base64, `\n` line ends.
    pub fn to_pem(&self) -> Result<String, SignError> {
        match self {
            PublicKey::P256(k) => p256::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
            PublicKey::P384(k) => p384::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| SignError::Key(e.to_string()))
    }

    /// The bundle's `publicKey.hint`: hex SHA-256 of the PEM encoding.
    pub fn hint(&self) -> Result<String, SignError> {
        Ok(hex::encode(sha2::Sha256::digest(self.to_pem()?.as_bytes())))
    }

    /// Verifies a signature over `msg`; the comparison inside the curve
    /// libraries is constant time.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        match self {
            PublicKey::P256(k) => {
                p256::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
            }
            PublicKey::P384(k) => {
                p384::ecdsa::Signature::from_der(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
            }
            PublicKey::Ed25519(k) => <[u8; 64]>::try_from(sig).is_ok_and(|b| {
                k.verify(msg, &ed25519_dalek::Signature::from_bytes(&b))
                    .is_ok()
            }),
        }
    }
}

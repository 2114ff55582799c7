//! The certificate method of model signing: the signing certificate and its
//! chain travel in the bundle; the verifier builds a path from the leaf to a
//! self-signed certificate the user trusts, at the time the leaf became
//! valid (the reference sets its OpenSSL store to the leaf's `notBefore`),
//! and requires the leaf to be usable for signing.
//!
//! Path building is written here because no maintained pure-Rust crate
//! validates X.509 paths for ECDSA outside of TLS (webpki requires TLS
//! name checks and server/client EKUs); parsing is the RustCrypto
//! `x509-cert` crate.

use crate::keys::PublicKey;
use crate::SignError;
use sha2::Digest;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// The longest chain followed, leaf and root included.
const MAX_PATH_LEN: usize = 10;

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
const ED25519: &str = "1.3.101.112";
const EKU_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";

/// Reads every certificate of one or more concatenated PEM files.
pub fn load_pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, SignError> {
    let certs = Certificate::load_pem_chain(pem)
        .map_err(|e| SignError::Key(format!("not a PEM certificate list: {e}")))?;
    if certs.is_empty() {
        return Err(SignError::Key("no certificate in the PEM file".into()));
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map_err(|e| SignError::Key(format!("certificate: {e}")))
        })
        .collect()
}

fn parse(der: &[u8], what: &str) -> Result<Certificate, String> {
    Certificate::from_der(der).map_err(|e| format!("{what} is not a DER X.509 certificate: {e}"))
}

/// The certificate's subject public key.
pub fn public_key(cert_der: &[u8]) -> Result<PublicKey, SignError> {
    let cert = parse(cert_der, "the signing certificate").map_err(SignError::Key)?;
    spki_key(&cert).map_err(SignError::Key)
}

fn spki_key(cert: &Certificate) -> Result<PublicKey, String> {
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    PublicKey::from_spki_der(&spki).map_err(|e| e.to_string())
}

fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// Whether `issuer`'s key made `cert`'s signature.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let Ok(key) = spki_key(issuer) else {
        return false;
    };
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return false;
    };
    let Some(sig) = cert.signature.as_bytes() else {
        return false;
    };
    let alg = cert.signature_algorithm.oid.to_string();
    match (alg.as_str(), &key) {
        (ECDSA_SHA256, _) => key.verify_prehash(&sha2::Sha256::digest(&tbs), sig),
        (ECDSA_SHA384, _) => key.verify_prehash(&sha2::Sha384::digest(&tbs), sig),
        (ECDSA_SHA512, _) => key.verify_prehash(&sha2::Sha512::digest(&tbs), sig),
        (ED25519, PublicKey::Ed25519(_)) => key.verify(&tbs, sig),
        _ => false,
    }
}

fn self_signed(cert: &Certificate) -> bool {
    cert.tbs_certificate.issuer == cert.tbs_certificate.subject && signed_by(cert, cert)
}

fn valid_at(cert: &Certificate, t: u64) -> bool {
    let v = &cert.tbs_certificate.validity;
    v.not_before.to_unix_duration().as_secs() <= t && t <= v.not_after.to_unix_duration().as_secs()
}

/// An issuer must be a CA: basicConstraints cA (a version 1 self-signed
/// root, which has no extensions, is accepted as OpenSSL does), and if key
/// usage is stated, keyCertSign.
fn may_issue(cert: &Certificate) -> Result<(), String> {
    let tbs = &cert.tbs_certificate;
    let bc = tbs.get::<BasicConstraints>().map_err(|e| e.to_string())?;
    let v1_root = tbs.extensions.is_none() && tbs.issuer == tbs.subject;
    if !v1_root && !bc.is_some_and(|(_, b)| b.ca) {
        return Err(format!("`{}` is not a CA certificate", subject(cert)));
    }
    if let Some((_, ku)) = tbs.get::<KeyUsage>().map_err(|e| e.to_string())? {
        if !ku.0.contains(KeyUsages::KeyCertSign) {
            return Err(format!(
                "`{}` may not sign certificates (key usage)",
                subject(cert)
            ));
        }
    }
    Ok(())
}

/// Verifies the bundle's chain (`chain[0]` is the signing certificate)
/// against the trusted certificates and returns the signing key.
pub fn verify_chain(chain: &[Vec<u8>], trusted: &[Vec<u8>]) -> Result<PublicKey, String> {
    let leaf_der = chain
        .first()
        .ok_or("the bundle carries no signing certificate")?;
    let leaf = parse(leaf_der, "the signing certificate")?;
    let intermediates = chain[1..]
        .iter()
        .map(|c| parse(c, "a chain certificate"))
        .collect::<Result<Vec<_>, _>>()?;
    let roots = trusted
        .iter()
        .map(|c| parse(c, "a trusted certificate"))
        .collect::<Result<Vec<_>, _>>()?;
    let at = leaf
        .tbs_certificate
        .validity
        .not_before
        .to_unix_duration()
        .as_secs();
    let mut path = vec![leaf.clone()];
    loop {
        let current = path.last().expect("path starts with the leaf");
        if !valid_at(current, at) {
            return Err(format!(
                "`{}` is not valid at the signing time",
                subject(current)
            ));
        }
        if self_signed(current) {
            // The path ends at a self-signed certificate: it must be trusted.
            if roots.iter().any(|r| r == current) {
                break;
            }
            return Err(if path.len() == 1 {
                "the signing certificate is self-signed and not trusted".to_string()
            } else {
                format!(
                    "self-signed certificate `{}` in the chain is not among the trusted certificates",
                    subject(current)
                )
            });
        }
        if path.len() >= MAX_PATH_LEN {
            return Err(format!(
                "no trusted root within {MAX_PATH_LEN} certificates"
            ));
        }
        let issuer_name = &current.tbs_certificate.issuer;
        let next = roots
            .iter()
            .chain(intermediates.iter())
            .find(|c| {
                &c.tbs_certificate.subject == issuer_name
                    && !path.contains(c)
                    && signed_by(current, c)
            })
            .cloned();
        let Some(issuer) = next else {
            return Err(format!(
                "unable to get the issuer of `{}` (`{}`) from the trusted or chain certificates",
                subject(current),
                issuer_name
            ));
        };
        may_issue(&issuer)?;
        path.push(issuer);
    }
    // The reference accepts a leaf with key usage digitalSignature, or
    // else extended key usage codeSigning.
    let tbs = &leaf.tbs_certificate;
    let ku_ok = tbs
        .get::<KeyUsage>()
        .ok()
        .flatten()
        .is_some_and(|(_, ku)| ku.digital_signature());
    let eku_ok = tbs
        .get::<ExtendedKeyUsage>()
        .ok()
        .flatten()
        .is_some_and(|(_, eku)| eku.0.iter().any(|o| o.to_string() == EKU_CODE_SIGNING));
    if !ku_ok && !eku_ok {
        return Err(
            "the signing certificate cannot be used for signing (neither key usage \
                    digitalSignature nor extended key usage codeSigning)"
                .into(),
        );
    }
    spki_key(&leaf)
}

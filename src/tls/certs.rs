//! PEM files read into what rustls takes: a certificate chain and its key
//! (checked to match), or a set of roots. Every problem is one line that
//! names the file.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

/// Reads a file, naming it in the error.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The certificates in a PEM file, in order (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a valid PEM file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// A certificate chain and its private key, checked to belong together.
pub fn read_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = read_certs(cert)?;
    let pem = read(key)?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{}: no private key in it ({e})", key.display()))?;
    match CertifiedKey::from_der(chain, der, provider) {
        Ok(pair) => Ok(Arc::new(pair)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(format!(
            "{}: the key does not match the certificate in {}",
            key.display(),
            cert.display()
        )),
        Err(e) => Err(format!("{}: unusable key: {e}", key.display())),
    }
}

/// The roots in a PEM file (`--backend-ca`).
pub fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a CA certificate: {e}", path.display()))?;
    }
    Ok(roots)
}

/// Where Linux distributions keep their bundle of trusted roots.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's trusted roots: `$SSL_CERT_FILE`, or the first bundle found
/// where distributions keep it. Empty (every `https://` target refused) if
/// there is none; the second value names the file read.
pub fn system_roots() -> (RootCertStore, Option<String>) {
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let candidates = from_env.iter().map(String::as_str).chain(SYSTEM_BUNDLES);
    for path in candidates {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        let (added, _) = roots.add_parsable_certificates(certs);
        if added > 0 {
            return (roots, Some(path.to_string()));
        }
    }
    (RootCertStore::empty(), None)
}

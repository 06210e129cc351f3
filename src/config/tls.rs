//! The TLS flags checked together, and the certificate files read: every
//! problem is one line (naming the file, for a file), exit status 2.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Config, ConfigError};
use crate::tls::{BackendTls, FrontTls};

/// `--tls-port` with its certificates read, if HTTPS is served.
pub fn front_tls(
    port: u16,
    tls_port: Option<u16>,
    certs: Vec<PathBuf>,
    keys: Vec<PathBuf>,
) -> Result<Option<(u16, Arc<FrontTls>)>, ConfigError> {
    let err = |msg: &str| Err(ConfigError(msg.to_string()));
    let Some(tls_port) = tls_port else {
        if certs.is_empty() && keys.is_empty() {
            return Ok(None);
        }
        return err("--tls-cert and --tls-key need --tls-port");
    };
    if certs.is_empty() {
        return err("--tls-port needs a certificate: --tls-cert <pem> --tls-key <pem>");
    }
    if certs.len() != keys.len() {
        return Err(ConfigError(format!(
            "--tls-cert and --tls-key go in pairs: {} certificates, {} keys",
            certs.len(),
            keys.len()
        )));
    }
    if tls_port == port && port != 0 {
        return err("--tls-port is the same as --port");
    }
    let pairs = certs.into_iter().zip(keys).collect();
    let tls = FrontTls::new(pairs).map_err(ConfigError)?;
    Ok(Some((tls_port, Arc::new(tls))))
}

/// The TLS for `https://` targets (made even with none yet: a reload of the
/// targets file may bring some).
pub fn backend_tls(config: &Config) -> Result<Arc<BackendTls>, ConfigError> {
    let tls = BackendTls::new(config.backend_ca.as_deref(), config.backend_insecure)
        .map_err(ConfigError)?;
    Ok(Arc::new(tls))
}

//! TLS on both sides, with rustls (aws-lc-rs for the crypto): HTTPS for
//! clients on `--tls-port`, and `https://` targets.
//!
//! - [`stream`]: [`TlsStream`], a rustls connection over a TCP stream
//!   through monoio's owned-buffer IO, which provides the same
//!   [`crate::stream::Io`] operations as a plain stream, so that the
//!   proxy's one driver serves either.
//! - [`halves`]: a TLS stream split in two for a tunnel.
//! - [`certs`]: PEM files read into certificates, keys and roots, with one
//!   line naming the file for each problem.
//! - [`server`]: the clients' side: certificates chosen by SNI and swapped
//!   on reload, ALPN `http/1.1`, resumption with rotated tickets, the
//!   handshake and why one failed.
//! - [`client`]: the targets' side: verification against the system roots
//!   or `--backend-ca` (or none, with `--backend-insecure`), SNI from the
//!   target's host name.

pub mod certs;
pub mod client;
pub mod halves;
pub mod server;
pub mod stream;

pub use client::BackendTls;
pub use server::{FrontTls, HandshakeFailure};
pub use stream::TlsStream;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// The crypto provider both sides use: aws-lc-rs, the fastest of rustls's.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The provider of the clients' side: aws-lc-rs with the cipher suites in
/// the server's order of preference, SHA-256 suites first. Clients (OpenSSL,
/// wrk, curl) list AES-256-GCM-SHA384 first; its key schedule's SHA-384
/// runs in aws-lc's generic code on AMD CPUs (its AVX code is for Intel
/// only), while SHA-256 runs on the SHA extensions: a full handshake costs
/// a sixth less with AES-128-GCM-SHA256, as secure for TLS.
pub fn server_provider() -> Arc<CryptoProvider> {
    use rustls::crypto::aws_lc_rs::cipher_suite as suite;
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites = vec![
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(provider)
}

/// The one application protocol spoken over TLS.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

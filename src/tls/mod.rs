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

/// The one application protocol spoken over TLS.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

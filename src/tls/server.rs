//! HTTPS for clients: the server configuration (TLS 1.3 and 1.2, ALPN
//! `http/1.1`, resumption by tickets whose keys rotate, no renegotiation,
//! which rustls never does), certificates chosen by SNI and swapped on a
//! reload without touching open connections, and the handshake.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use bytes::BytesMut;
use monoio::net::TcpStream;
use rustls::pki_types::{DnsName, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{Connection, ServerConfig, ServerConnection};

use super::certs::read_pair;
use super::stream::{Fault, TlsStream};
use super::{provider, server_provider, ALPN_HTTP11};
use crate::stream::{Io, IoFail};

/// The answer to plain HTTP sent to the TLS port, as nginx gives one.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 53\r\nConnection: close\r\n\r\nplain HTTP request sent to the HTTPS port; use https\n";

/// Why a client's handshake failed, as counted in
/// `lb_tls_handshake_failures_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Not done within `--client-header-timeout` from the accept.
    Timeout,
    /// The client closed or reset the connection during it.
    Closed,
    /// The client spoke plain HTTP (it got a 400 saying so).
    PlainHttp,
    /// Bytes that are not TLS, or TLS that breaks the protocol.
    Protocol,
    /// Nothing in common: versions, cipher suites, ALPN.
    Incompatible,
    /// The client sent an alert (it did not trust the certificate, say).
    Alert,
    Other,
}

impl HandshakeFailure {
    /// Every reason, in counter order.
    pub const ALL: [HandshakeFailure; 7] = [
        HandshakeFailure::Timeout,
        HandshakeFailure::Closed,
        HandshakeFailure::PlainHttp,
        HandshakeFailure::Protocol,
        HandshakeFailure::Incompatible,
        HandshakeFailure::Alert,
        HandshakeFailure::Other,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Closed => "closed",
            HandshakeFailure::PlainHttp => "plain_http",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::Incompatible => "incompatible",
            HandshakeFailure::Alert => "alert",
            HandshakeFailure::Other => "other",
        }
    }

    /// Its index in [`Self::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|&r| r == self).unwrap_or(0)
    }

    fn of(fault: &Fault) -> HandshakeFailure {
        use rustls::Error as E;
        match fault {
            Fault::Io(IoFail::TimedOut) => HandshakeFailure::Timeout,
            Fault::Io(_) => HandshakeFailure::Closed,
            Fault::Tls(E::InvalidMessage(_))
            | Fault::Tls(E::InappropriateMessage { .. })
            | Fault::Tls(E::InappropriateHandshakeMessage { .. })
            | Fault::Tls(E::PeerMisbehaved(_))
            | Fault::Tls(E::DecryptError) => HandshakeFailure::Protocol,
            Fault::Tls(E::PeerIncompatible(_)) | Fault::Tls(E::NoApplicationProtocol) => {
                HandshakeFailure::Incompatible
            }
            Fault::Tls(E::AlertReceived(_)) => HandshakeFailure::Alert,
            Fault::Tls(_) => HandshakeFailure::Other,
        }
    }
}

/// The certificate pairs given (`--tls-cert`, `--tls-key`), in order.
pub type Pairs = Vec<(PathBuf, PathBuf)>;

/// The clients' TLS: one configuration shared by every worker.
#[derive(Debug)]
pub struct FrontTls {
    config: Arc<ServerConfig>,
    certs: Arc<Certs>,
    pairs: Pairs,
}

/// The certificates in use, swapped whole by a reload.
#[derive(Debug)]
struct Certs {
    current: RwLock<Arc<Vec<Arc<CertifiedKey>>>>,
}

impl ResolvesServerCert for Certs {
    /// The first certificate valid for the client's SNI name; the first of
    /// all without SNI or when none fits.
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.current.read().ok()?.clone();
        let first = certs.first()?;
        if certs.len() == 1 {
            return Some(first.clone());
        }
        let Some(name) = hello
            .server_name()
            .and_then(|n| DnsName::try_from(n).ok())
            .map(|n| ServerName::DnsName(n.to_owned()))
        else {
            return Some(first.clone());
        };
        let fits = |pair: &&Arc<CertifiedKey>| {
            pair.cert.first().is_some_and(|leaf| {
                webpki::EndEntityCert::try_from(leaf)
                    .is_ok_and(|c| c.verify_is_valid_for_subject_name(&name).is_ok())
            })
        };
        Some(certs.iter().find(fits).unwrap_or(first).clone())
    }
}

impl FrontTls {
    /// Reads every pair and builds the configuration; the error is one
    /// line naming the file.
    pub fn new(pairs: Pairs) -> Result<FrontTls, String> {
        let provider = server_provider();
        let certs = Arc::new(Certs {
            current: RwLock::new(Arc::new(read_all(&pairs)?)),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        // The suites in our order (see `server_provider`), not the client's.
        config.ignore_client_order = true;
        // One TLS 1.3 ticket per handshake, as TLS 1.2 gives one: a client
        // resumes one connection with it (and gets a new one then).
        config.send_tls13_tickets = 1;
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| format!("TLS: cannot make a ticket key: {e}"))?;
        Ok(FrontTls {
            config: Arc::new(config),
            certs,
            pairs,
        })
    }

    /// Reads the certificate files again; new handshakes use what they
    /// hold, open connections keep theirs. On error the old ones stay.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = read_all(&self.pairs)?;
        if let Ok(mut current) = self.certs.current.write() {
            *current = Arc::new(fresh);
        }
        Ok(())
    }

    /// The certificate files, for the start-up line.
    pub fn pairs(&self) -> &Pairs {
        &self.pairs
    }

    /// Runs a client's handshake on a connection just accepted, whose
    /// first bytes may have been read (`received`). A client that speaks
    /// plain HTTP is told so in a 400 before the close.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        received: BytesMut,
    ) -> Result<TlsStream, HandshakeFailure> {
        let Ok(session) = ServerConnection::new(self.config.clone()) else {
            return Err(HandshakeFailure::Other);
        };
        let mut stream = TlsStream::with_received(tcp, Connection::Server(session), received);
        match stream.first_byte().await {
            Ok(b) if b.is_ascii_uppercase() => {
                let mut tcp = stream.into_tcp();
                let _ = Io::write_all(&mut tcp, PLAIN_HTTP_ANSWER.into()).await;
                Io::shutdown(&mut tcp).await;
                return Err(HandshakeFailure::PlainHttp);
            }
            Ok(_) => {}
            Err(e) => return Err(HandshakeFailure::of(&Fault::Io(e))),
        }
        match stream.handshake().await {
            Ok(()) => Ok(stream),
            Err(fault) => Err(HandshakeFailure::of(&fault)),
        }
    }
}

fn read_all(pairs: &Pairs) -> Result<Vec<Arc<CertifiedKey>>, String> {
    let provider = provider();
    pairs
        .iter()
        .map(|(cert, key)| read_pair(cert, key, &provider))
        .collect()
}

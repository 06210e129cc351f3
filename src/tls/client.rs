//! TLS to `https://` targets: one client configuration for the process,
//! verifying each target's certificate against the system roots or
//! `--backend-ca` for the host name the target was given by (SNI too), or
//! against nothing with `--backend-insecure`. Sessions are resumed.

use std::path::Path;
use std::sync::Arc;

use monoio::net::TcpStream;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, Connection, DigitallySignedStruct, SignatureScheme};

use super::certs::{read_roots, system_roots};
use super::stream::{Fault, TlsStream};
use super::{provider, ALPN_HTTP11};

/// The targets' TLS.
#[derive(Debug)]
pub struct BackendTls {
    config: Arc<ClientConfig>,
    /// What certificates are checked against, for the start-up line.
    pub trust: String,
}

impl BackendTls {
    /// Verifies against `ca` if given, else the system's roots; or not at
    /// all when `insecure`.
    pub fn new(ca: Option<&Path>, insecure: bool) -> Result<BackendTls, String> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?;
        let (builder, trust) = if insecure {
            let verifier = Arc::new(NoVerification(provider));
            let builder = builder
                .dangerous()
                .with_custom_certificate_verifier(verifier);
            let trust = "INSECURE: target certificates are not verified (--backend-insecure)";
            (builder, trust.to_string())
        } else if let Some(ca) = ca {
            let roots = read_roots(ca)?;
            let trust = format!("target certificates checked against {}", ca.display());
            (builder.with_root_certificates(roots), trust)
        } else {
            let (roots, source) = system_roots();
            let trust = match source {
                Some(file) => format!("target certificates checked against {file}"),
                None => "no system roots found: https targets will fail (see --backend-ca)".into(),
            };
            (builder.with_root_certificates(roots), trust)
        };
        let mut config = builder.with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(BackendTls {
            config: Arc::new(config),
            trust,
        })
    }

    /// Runs the handshake with a target on a connection just opened.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        name: ServerName<'static>,
    ) -> Result<TlsStream, Fault> {
        let session = ClientConnection::new(self.config.clone(), name).map_err(Fault::Tls)?;
        let mut stream = TlsStream::new(tcp, Connection::Client(session));
        stream.handshake().await?;
        Ok(stream)
    }
}

/// `--backend-insecure`: any certificate is taken; the handshake's
/// signatures are still checked, so it is TLS, only not authenticated.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

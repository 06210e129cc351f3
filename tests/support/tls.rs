//! TLS on both sides of the balancer, for `tests/tls.rs`:
//!
//! - certificates made at test time with rcgen ([`Ca`], [`Leaf`]), written
//!   as PEM to [`TempFile`]s ([`CertFiles`]) for `--tls-cert`/`--tls-key`
//!   and `--backend-ca`; no key is ever committed;
//! - [`TlsBackend`]: an HTTPS/1.1 target with keep-alive, one thread per
//!   connection, that counts TCP connections, handshakes and requests and
//!   records requests (health checks counted apart);
//! - [`TlsClient`]: a blocking TLS client over one connection, several
//!   requests on it, with what the handshake came to (leaf certificate,
//!   ALPN, version, resumed or not); [`https_get`] for one request;
//! - [`https_addr`]: the HTTPS address from the balancer's start-up line.
//!
//! Everything uses rustls's blocking API over std sockets, with the
//! aws-lc-rs provider.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, ProtocolVersion,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme, StreamOwned,
    SupportedProtocolVersion,
};

use super::{
    request_bytes, wait_for, Balancer, Recorded, Response, TempFile, CLIENT_TIMEOUT, HEALTH_PATH,
};

/// What the start-up line says just before the HTTPS listener's address.
pub const HTTPS_ON: &str = "https on ";

/// The ALPN name of HTTP/1.1.
pub const HTTP11: &[u8] = b"http/1.1";

/// How long a [`TlsBackend`] connection waits for its peer before giving
/// up (its thread ends; the balancer's pooled connection sees a close).
const TARGET_IDLE: Duration = Duration::from_secs(60);

/// The crypto provider every config here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Where the balancer serves HTTPS: the address after `https on ` in its
/// start-up line (up to `;` or a space).
pub fn https_addr(lb: &Balancer) -> SocketAddr {
    let line = lb.startup_line();
    let at = line
        .find(HTTPS_ON)
        .unwrap_or_else(|| panic!("no `{HTTPS_ON}` in the start-up line {line:?}"));
    let token: String = line[at + HTTPS_ON.len()..]
        .chars()
        .take_while(|c| *c != ';' && !c.is_whitespace())
        .collect();
    let token = token.trim_end_matches([',', '.']);
    token
        .parse()
        .unwrap_or_else(|e| panic!("cannot parse the https address in {line:?}: {e}"))
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A certificate authority made at test time: a root, or an intermediate
/// signed by another [`Ca`]. Its certificate (as PEM) is in a [`TempFile`]
/// for `--backend-ca`.
pub struct Ca {
    name: String,
    cert: rcgen::Certificate,
    key: KeyPair,
    /// PEM of the CA certificates between a leaf this CA signs and the root,
    /// this one included, root excluded: what a server sends after its leaf.
    chain_above: String,
    file: TempFile,
}

impl Ca {
    /// A new root CA whose common name is `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("generate a CA key");
        let cert = ca_params(name).self_signed(&key).expect("self-sign the CA");
        let file = TempFile::with(&format!("ca-{name}"), &cert.pem());
        Ca {
            name: name.to_string(),
            cert,
            key,
            chain_above: String::new(),
            file,
        }
    }

    /// An intermediate CA named `name`, signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let key = KeyPair::generate().expect("generate an intermediate key");
        let cert = ca_params(name)
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the intermediate");
        let chain_above = format!("{}{}", cert.pem(), self.chain_above);
        let file = TempFile::with(&format!("ca-{name}"), &cert.pem());
        Ca {
            name: name.to_string(),
            cert,
            key,
            chain_above,
            file,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate as DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The path of the PEM file holding this CA's certificate.
    pub fn arg(&self) -> &str {
        self.file.arg()
    }

    /// Trust in this CA alone, for a [`TlsClient`].
    pub fn trust(&self) -> Trust {
        Trust::Ca(self.der())
    }

    /// A server certificate signed by this CA, with common name `name` and
    /// these subject alternative names (IP addresses are taken as such,
    /// anything else as a DNS name).
    pub fn leaf(&self, name: &str, sans: &[&str]) -> Leaf {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("valid subject alternative names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate a leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the leaf");
        Leaf {
            name: name.to_string(),
            der: cert.der().clone(),
            chain_pem: format!("{}{}", cert.pem(), self.chain_above),
            key_pem: key.serialize_pem(),
        }
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A server certificate (with the chain up to, not including, its root)
/// and its private key.
#[derive(Clone)]
pub struct Leaf {
    /// Its common name, to tell leaves apart in messages.
    pub name: String,
    /// The leaf certificate alone, as a handshake presents it first.
    pub der: CertificateDer<'static>,
    /// PEM: the leaf, then the intermediates (if any).
    pub chain_pem: String,
    /// PEM: the private key (PKCS#8).
    pub key_pem: String,
}

impl Leaf {
    /// New files holding this certificate chain and key.
    pub fn files(&self) -> CertFiles {
        let files = CertFiles {
            cert: TempFile::new(&format!("cert-{}", self.name)),
            key: TempFile::new(&format!("key-{}", self.name)),
        };
        self.write_to(&files);
        files
    }

    /// Replaces the content of `files` by this certificate chain and key
    /// (each file in one step).
    pub fn write_to(&self, files: &CertFiles) {
        files.cert.write(&self.chain_pem);
        files.key.write(&self.key_pem);
    }

    /// Whether `der` is this leaf.
    pub fn is(&self, der: &CertificateDer<'_>) -> bool {
        self.der.as_ref() == der.as_ref()
    }

    /// The certificate chain, parsed.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("a chain made here parses")
    }

    /// The private key, parsed.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("a key made here parses")
    }
}

/// The name of the leaf among `leaves` that `der` is, or `<unknown>`.
pub fn leaf_name<'a>(der: &CertificateDer<'_>, leaves: &[&'a Leaf]) -> &'a str {
    leaves
        .iter()
        .find(|l| l.is(der))
        .map_or("<unknown>", |l| l.name.as_str())
}

/// A certificate file and a key file, for one `--tls-cert`/`--tls-key`
/// pair.
pub struct CertFiles {
    pub cert: TempFile,
    pub key: TempFile,
}

impl CertFiles {
    /// `--tls-cert CERT --tls-key KEY`.
    pub fn args(&self) -> [&str; 4] {
        ["--tls-cert", self.cert.arg(), "--tls-key", self.key.arg()]
    }
}

// ---------------------------------------------------------------------------
// Client configs
// ---------------------------------------------------------------------------

/// What a test client accepts as the server's certificate.
#[derive(Clone, Debug)]
pub enum Trust {
    /// A chain to this root, valid for the server name.
    Ca(CertificateDer<'static>),
    /// Anything (signatures are still checked): to look at the certificate
    /// a server presents for any name.
    Anything,
}

/// Both TLS versions.
pub const ALL_VERSIONS: &[&SupportedProtocolVersion] = rustls::ALL_VERSIONS;
/// TLS 1.2 only.
pub const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
/// TLS 1.3 only.
pub const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// A client config with these versions and ALPN names (in order of
/// preference), its own in-memory session store (share the `Arc` between
/// connections to resume).
pub fn client_config(
    trust: &Trust,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("versions the provider supports");
    let mut config = match trust {
        Trust::Ca(root) => {
            let mut roots = RootCertStore::empty();
            roots.add(root.clone()).expect("a root made here");
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Anything => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider())))
            .with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// The usual client: both versions, ALPN `http/1.1`.
pub fn default_client_config(trust: &Trust) -> Arc<ClientConfig> {
    client_config(trust, ALL_VERSIONS, &[HTTP11])
}

/// A verifier that takes any certificate for any name (signatures over the
/// handshake are still checked).
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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

/// The bytes of a ClientHello as a rustls client (both versions, ALPN
/// `http/1.1`, SNI `localhost`) sends it first: one TLS record.
pub fn client_hello_bytes() -> Vec<u8> {
    let config = default_client_config(&Trust::Anything);
    let name = ServerName::try_from("localhost").expect("a DNS name");
    let mut conn = ClientConnection::new(config, name).expect("a client connection");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write to a Vec");
    }
    out
}

/// A well-formed ClientHello record that offers TLS 1.0 only (legacy
/// version 3.1, no `supported_versions`), one TLS 1.0 cipher suite
/// (TLS_RSA_WITH_AES_128_CBC_SHA) and no extensions: nothing a TLS 1.2/1.3
/// server can agree to.
pub fn tls10_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x01]; // client_version TLS 1.0
    body.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11))); // random
    body.push(0); // session id: empty
    body.extend_from_slice(&[0x00, 0x02, 0x00, 0x2f]); // one cipher suite
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut handshake = vec![0x01]; // client_hello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

// ---------------------------------------------------------------------------
// HTTP/1.1 over any stream
// ---------------------------------------------------------------------------

/// A stream plus the bytes read from it but not consumed yet.
struct Buffered<S> {
    s: S,
    buf: Vec<u8>,
}

/// Whether an error means the peer went away (close, reset, or a TLS close
/// without `close_notify`).
fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl<S: Read + Write> Buffered<S> {
    fn new(s: S) -> Buffered<S> {
        Buffered { s, buf: Vec::new() }
    }

    /// Reads once, appending to `buf`; `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.s.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until the buffer holds a complete head (`parse` says how long
    /// it is); `Ok(None)` if the stream ends before a byte of it.
    fn read_head<T>(
        &mut self,
        parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, String>,
    ) -> io::Result<Option<T>> {
        loop {
            if !self.buf.is_empty() {
                match parse(&self.buf) {
                    Ok(Some((head, len))) => {
                        self.buf.drain(..len);
                        return Ok(Some(head));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            }
            let n = match self.fill() {
                Ok(n) => n,
                Err(e) if is_gone(&e) && self.buf.is_empty() => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed inside a head",
                    ))
                };
            }
        }
    }

    /// Takes exactly `n` bytes.
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a body",
                ));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..at].to_vec();
                self.buf.drain(..at + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a chunked body",
                ));
            }
        }
    }

    /// A chunked body: (decoded, raw).
    fn chunked(&mut self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let mut decoded = Vec::new();
        let mut raw = Vec::new();
        loop {
            let line = self.line()?;
            raw.extend_from_slice(&line);
            raw.extend_from_slice(b"\r\n");
            let text = String::from_utf8_lossy(&line);
            let size = text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, format!("chunk size {text:?}"))
            })?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let trailer = self.line()?;
                    raw.extend_from_slice(&trailer);
                    raw.extend_from_slice(b"\r\n");
                    if trailer.is_empty() {
                        return Ok((decoded, raw));
                    }
                }
            }
            let data = self.take(size + 2)?;
            decoded.extend_from_slice(&data[..size]);
            raw.extend_from_slice(&data);
        }
    }

    /// Everything until the stream ends.
    fn until_close(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(0) | Err(_) => return std::mem::take(&mut self.buf),
                Ok(_) => {}
            }
        }
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A parsed response head: status, reason, minor version, headers.
type ResponseHead = (u16, String, u8, Vec<(String, String)>);

fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Some((
            (
                resp.code.unwrap_or_default(),
                resp.reason.unwrap_or_default().to_string(),
                resp.version.unwrap_or(1),
                owned_headers(resp.headers),
            ),
            len,
        ))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("malformed response head: {e}")),
    }
}

/// Reads one response to a request with this method.
fn read_response<S: Read + Write>(conn: &mut Buffered<S>, method: &str) -> io::Result<Response> {
    let Some((status, reason, version, headers)) = conn.read_head(parse_response_head)? else {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before a response",
        ));
    };
    let bodiless =
        method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304;
    let mut truncated = false;
    let (body, raw_body) = if bodiless {
        (Vec::new(), Vec::new())
    } else if has_token(&headers, "transfer-encoding", "chunked") {
        conn.chunked()?
    } else if let Some(len) = header(&headers, "content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
        match conn.take(len) {
            Ok(body) => (body.clone(), body),
            Err(e) if is_gone(&e) => {
                truncated = true;
                let body = std::mem::take(&mut conn.buf);
                (body.clone(), body)
            }
            Err(e) => return Err(e),
        }
    } else {
        let body = conn.until_close();
        (body.clone(), body)
    };
    Ok(Response {
        status,
        reason,
        version,
        headers,
        body,
        raw_body,
        truncated,
    })
}

// ---------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------

/// One TLS client connection, handshake done, carrying HTTP/1.1 requests
/// one at a time (keep-alive).
pub struct TlsClient {
    conn: Buffered<StreamOwned<ClientConnection, TcpStream>>,
    addr: SocketAddr,
}

impl TlsClient {
    /// Connects and completes the handshake, panicking on failure.
    pub fn connect(addr: SocketAddr, server_name: &str, config: &Arc<ClientConfig>) -> TlsClient {
        TlsClient::try_connect(addr, server_name, config)
            .unwrap_or_else(|e| panic!("TLS to {addr} as {server_name:?}: {e}"))
    }

    /// Connects and completes the handshake. `server_name` is a DNS name
    /// (sent as SNI and checked against the certificate) or an IP address
    /// (no SNI is sent).
    pub fn try_connect(
        addr: SocketAddr,
        server_name: &str,
        config: &Arc<ClientConfig>,
    ) -> io::Result<TlsClient> {
        TlsClient::try_connect_after(addr, b"", server_name, config)
    }

    /// [`TlsClient::try_connect`] that sends `preface` (a PROXY protocol
    /// header, say) in clear before the handshake.
    pub fn try_connect_after(
        addr: SocketAddr,
        preface: &[u8],
        server_name: &str,
        config: &Arc<ClientConfig>,
    ) -> io::Result<TlsClient> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
        let mut sock = TcpStream::connect(addr)?;
        sock.write_all(preface)?;
        sock.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        sock.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        sock.set_nodelay(true)?;
        let mut stream = StreamOwned::new(tls, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient {
            conn: Buffered::new(stream),
            addr,
        })
    }

    fn tls(&self) -> &ClientConnection {
        &self.conn.s.conn
    }

    /// The certificate the server presented first (its leaf).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.tls()
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("a server certificate")
            .clone()
    }

    /// Every certificate the server presented, leaf first.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.tls()
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// The ALPN protocol agreed on, if any.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.tls().alpn_protocol().map(<[u8]>::to_vec)
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.tls().protocol_version()
    }

    /// `Some(HandshakeKind::Resumed)` after a resumed handshake.
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.tls().handshake_kind()
    }

    pub fn resumed(&self) -> bool {
        self.handshake_kind() == Some(HandshakeKind::Resumed)
    }

    pub fn peer(&self) -> SocketAddr {
        self.addr
    }

    /// Sends a request built by [`request_bytes`] and reads its answer,
    /// panicking on failure.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let addr = self.addr;
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} over TLS to {addr}: {e}"))
    }

    pub fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.conn
            .s
            .write_all(&request_bytes(method, path, headers, body))?;
        self.conn.s.flush()?;
        read_response(&mut self.conn, method)
    }

    /// Writes raw bytes over the TLS connection (in a tunnel, say).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.s.write_all(bytes).expect("write over TLS");
        self.conn.s.flush().expect("flush over TLS");
    }

    /// Reads raw bytes until `n` have come (or the connection ends), and
    /// takes them.
    pub fn read_raw(&mut self, n: usize) -> Vec<u8> {
        while self.conn.buf.len() < n {
            match self.conn.fill() {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let take = n.min(self.conn.buf.len());
        self.conn.buf.drain(..take).collect()
    }

    /// Reads a response head (and no body: after a `101`, the rest is the
    /// tunnel's).
    pub fn read_head_only(&mut self) -> Response {
        read_response(&mut self.conn, "HEAD").expect("a response head over TLS")
    }

    /// `GET path`, panicking on failure.
    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// Whether the server ends the connection (TLS close, TCP end or reset)
    /// within `timeout`, plaintext that arrives meanwhile thrown away.
    pub fn is_closed(&mut self, timeout: Duration) -> bool {
        let _ = self.conn.s.sock.set_read_timeout(Some(timeout));
        let closed = loop {
            match self.conn.fill() {
                Ok(0) => break true,
                Ok(_) => self.conn.buf.clear(),
                Err(e) if is_gone(&e) || e.kind() == io::ErrorKind::InvalidData => break true,
                Err(_) => break false,
            }
        };
        let _ = self.conn.s.sock.set_read_timeout(Some(CLIENT_TIMEOUT));
        closed
    }

    /// Sends `close_notify` and closes.
    pub fn close(mut self) {
        self.conn.s.conn.send_close_notify();
        let _ = self.conn.s.flush();
        let _ = self.conn.s.sock.shutdown(Shutdown::Both);
    }
}

/// What [`https_get`] got.
#[derive(Debug)]
pub struct Fetched {
    pub response: Response,
    /// The certificate the server presented first.
    pub leaf: CertificateDer<'static>,
    pub alpn: Option<Vec<u8>>,
    pub version: Option<ProtocolVersion>,
}

/// `GET path` with `Connection: close` over a new TLS connection (both
/// versions, ALPN `http/1.1`), as `server_name` (an IP address: no SNI).
/// Panics on failure.
pub fn https_get(addr: SocketAddr, server_name: &str, trust: &Trust, path: &str) -> Fetched {
    let config = default_client_config(trust);
    let mut c = TlsClient::connect(addr, server_name, &config);
    let response = c.request("GET", path, &[("Connection", "close")], b"");
    Fetched {
        leaf: c.leaf(),
        alpn: c.alpn(),
        version: c.version(),
        response,
    }
}

/// The leaf certificate presented to a client asking for `server_name`
/// (an IP address: no SNI), trusting anything; the connection is closed
/// right after the handshake.
pub fn presented_leaf(addr: SocketAddr, server_name: &str) -> CertificateDer<'static> {
    let config = default_client_config(&Trust::Anything);
    let c = TlsClient::connect(addr, server_name, &config);
    let leaf = c.leaf();
    c.close();
    leaf
}

// ---------------------------------------------------------------------------
// HTTPS target
// ---------------------------------------------------------------------------

/// An HTTPS/1.1 target on `127.0.0.1` (or another loopback address), one thread per connection,
/// keep-alive. `GET /_health` answers 200 `ok`; anything else 200 with the
/// target's name as body and in `X-Backend`. Dropping it stops it.
pub struct TlsBackend {
    inner: Arc<TlsInner>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

struct TlsInner {
    name: String,
    addr: SocketAddr,
    config: Arc<ServerConfig>,
    stopping: AtomicBool,
    /// TCP connections accepted.
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    handshake_failures: AtomicUsize,
    health_checks: AtomicUsize,
    /// Requests other than health checks, in the order their heads were
    /// read; `conn` is the connection's number (1 for the first accepted).
    log: Mutex<Vec<Recorded>>,
    /// A clone of each open socket, to shut it down on stop.
    open: Mutex<HashMap<usize, TcpStream>>,
}

impl TlsBackend {
    /// Starts a target named `name` presenting `leaf` (and its chain).
    pub fn start(name: &str, leaf: &Leaf) -> TlsBackend {
        TlsBackend::start_on(name, leaf, "127.0.0.1:0".parse().unwrap())
            .unwrap_or_else(|e| panic!("TLS target {name}: cannot bind 127.0.0.1:0: {e}"))
    }

    /// [`TlsBackend::start`] on a given address (127.0.0.2:PORT, ...).
    pub fn start_on(name: &str, leaf: &Leaf, addr: SocketAddr) -> std::io::Result<TlsBackend> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("default versions")
            .with_no_client_auth()
            .with_single_cert(leaf.chain(), leaf.key())
            .expect("a certificate and its key");
        let listener = TcpListener::bind(addr)?;
        let inner = Arc::new(TlsInner {
            name: name.to_string(),
            addr: listener.local_addr().expect("local_addr"),
            config: Arc::new(config),
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            handshake_failures: AtomicUsize::new(0),
            health_checks: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            open: Mutex::new(HashMap::new()),
        });
        let accept = {
            let inner = Arc::clone(&inner);
            thread::Builder::new()
                .name(format!("tls-backend-{name}-accept"))
                .spawn(move || tls_accept_loop(&inner, listener))?
        };
        Ok(TlsBackend {
            inner,
            accept: Mutex::new(Some(accept)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn port(&self) -> u16 {
        self.inner.addr.port()
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `https://HOST:PORT`, a `-b` spec for this target under `host`.
    pub fn spec(&self, host: &str) -> String {
        format!("https://{host}:{}", self.port())
    }

    /// TCP connections accepted so far (health checks' included).
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// Handshakes that completed.
    pub fn handshakes(&self) -> usize {
        self.inner.handshakes.load(Ordering::SeqCst)
    }

    /// Handshakes that failed (the peer refused, closed or sent nonsense).
    pub fn handshake_failures(&self) -> usize {
        self.inner.handshake_failures.load(Ordering::SeqCst)
    }

    /// Requests to [`HEALTH_PATH`].
    pub fn health_checks(&self) -> usize {
        self.inner.health_checks.load(Ordering::SeqCst)
    }

    /// Requests other than health checks whose head was read.
    pub fn requests(&self) -> usize {
        lock(&self.inner.log).len()
    }

    /// Every request other than health checks, in the order their heads
    /// were read.
    pub fn requests_log(&self) -> Vec<Recorded> {
        lock(&self.inner.log).clone()
    }

    /// The latest request other than a health check.
    pub fn last_request(&self) -> Option<Recorded> {
        lock(&self.inner.log).last().cloned()
    }

    /// Waits until `n` requests (health checks aside) have arrived.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        wait_for(timeout, || self.requests() >= n)
    }

    /// Stops accepting and closes every open connection. Idempotent.
    pub fn stop(&self) {
        let Some(accept) = lock(&self.accept).take() else {
            return;
        };
        self.inner.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.inner.addr, Duration::from_secs(1));
        let _ = accept.join();
        for (_, s) in lock(&self.inner.open).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tls_accept_loop(inner: &Arc<TlsInner>, listener: TcpListener) {
    for stream in listener.incoming() {
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let n = inner.connections.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(clone) = stream.try_clone() {
            lock(&inner.open).insert(n, clone);
        }
        let inner = Arc::clone(inner);
        let spawned = thread::Builder::new()
            .name(format!("tls-backend-{}-{n}", inner.name))
            .spawn(move || {
                serve_tls(&inner, stream, n);
                lock(&inner.open).remove(&n);
            });
        if spawned.is_err() {
            return;
        }
    }
}

/// A parsed request head: method, path, minor version, headers.
type RequestHead = (String, String, u8, Vec<(String, String)>);

fn parse_request_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => Ok(Some((
            (
                req.method.unwrap_or_default().to_string(),
                req.path.unwrap_or_default().to_string(),
                req.version.unwrap_or(1),
                owned_headers(req.headers),
            ),
            len,
        ))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("malformed request head: {e}")),
    }
}

/// The headers of the last request recorded.
fn headers_of_last(inner: &TlsInner) -> Vec<(String, String)> {
    lock(&inner.log)
        .last()
        .map(|r| r.headers.clone())
        .unwrap_or_default()
}

fn serve_tls(inner: &TlsInner, sock: TcpStream, conn_no: usize) {
    let _ = sock.set_read_timeout(Some(TARGET_IDLE));
    let _ = sock.set_write_timeout(Some(TARGET_IDLE));
    let _ = sock.set_nodelay(true);
    let Ok(tls) = ServerConnection::new(Arc::clone(&inner.config)) else {
        return;
    };
    let mut stream = StreamOwned::new(tls, sock);
    while stream.conn.is_handshaking() {
        if stream.conn.complete_io(&mut stream.sock).is_err() {
            inner.handshake_failures.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
    inner.handshakes.fetch_add(1, Ordering::SeqCst);
    let mut conn = Buffered::new(stream);
    loop {
        let (method, path, version, headers) = match conn.read_head(parse_request_head) {
            Ok(Some(head)) => head,
            Ok(None) | Err(_) => return,
        };
        let body = if has_token(&headers, "transfer-encoding", "chunked") {
            match conn.chunked() {
                Ok((decoded, _)) => decoded,
                Err(_) => return,
            }
        } else {
            let len = header(&headers, "content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            match conn.take(len) {
                Ok(body) => body,
                Err(_) => return,
            }
        };
        let close = has_token(&headers, "connection", "close")
            || (version == 0 && !has_token(&headers, "connection", "keep-alive"));
        let (answer, backend) = if method == "GET" && path == HEALTH_PATH {
            inner.health_checks.fetch_add(1, Ordering::SeqCst);
            ("ok".to_string(), None)
        } else {
            lock(&inner.log).push(Recorded {
                method: method.clone(),
                path,
                version,
                headers,
                body: body.clone(),
                raw_body: body,
                conn: conn_no,
            });
            (inner.name.clone(), Some(inner.name.as_str()))
        };
        if header(&headers_of_last(inner), "upgrade").is_some() && backend.is_some() {
            // A WebSocket upgrade: 101, then every byte echoed until the end.
            let switch = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                          Upgrade: websocket\r\n\r\n";
            if conn.s.write_all(switch.as_bytes()).is_err() || conn.s.flush().is_err() {
                return;
            }
            loop {
                if !conn.buf.is_empty() {
                    let echo = std::mem::take(&mut conn.buf);
                    if conn.s.write_all(&echo).is_err() || conn.s.flush().is_err() {
                        return;
                    }
                }
                match conn.fill() {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        }
        let mut out = String::from("HTTP/1.1 200 OK\r\n");
        if let Some(name) = backend {
            out.push_str(&format!("X-Backend: {name}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n", answer.len()));
        if close {
            out.push_str("Connection: close\r\n");
        }
        out.push_str("\r\n");
        if method != "HEAD" {
            out.push_str(&answer);
        }
        if conn.s.write_all(out.as_bytes()).is_err() || conn.s.flush().is_err() {
            return;
        }
        if close {
            conn.s.conn.send_close_notify();
            let _ = conn.s.flush();
            let _ = conn.s.sock.shutdown(Shutdown::Write);
            return;
        }
    }
}

//! TLS on both sides. `--tls-port` serves HTTPS beside the plain port with
//! the certificates of `--tls-cert`/`--tls-key` (picked by SNI, the first
//! pair the default), TLS 1.2 and 1.3, ALPN `http/1.1`, resumption; the
//! certificates are re-read on SIGHUP and `POST /reload` without dropping
//! connections, and a bad file keeps the old ones. Handshakes that fail
//! (stalled, garbage, plain HTTP, refused) are closed and counted by
//! reason. Targets given as `https://HOST:PORT` are reached over TLS,
//! verified against `--backend-ca` (or skipped with `--backend-insecure`),
//! health-checked over TLS and pooled. Start-up refuses TLS files and flags
//! it cannot use.
//!
//! Certificates are made at test time (rcgen); see `support/tls.rs`.

mod support;
use support::tls::*;
use support::*;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rustls::{HandshakeKind, ProtocolVersion};

/// The name the listener certificates are made for.
const NAME: &str = "lb.test";

/// The handshake failure reasons `/metrics` counts.
const REASONS: [&str; 7] = [
    "timeout",
    "closed",
    "plain_http",
    "protocol",
    "incompatible",
    "alert",
    "other",
];

/// A closed connection is seen within this long when the balancer closes it
/// for what it received, far from the default header deadline (10 s).
const PROMPT_CLOSE: Duration = Duration::from_secs(2);

/// A CA and a certificate for [`NAME`] it signed, in files.
struct Site {
    ca: Ca,
    leaf: Leaf,
    files: CertFiles,
}

fn site() -> Site {
    let ca = Ca::new("site-root");
    let leaf = ca.leaf("site", &[NAME]);
    let files = leaf.files();
    Site { ca, leaf, files }
}

/// A balancer with one worker in front of `target`, its admin endpoint on,
/// serving HTTPS on a free port with these certificate pairs (the first
/// the default); `extra` flags last.
fn start_tls(target: &Backend, certs: &[&CertFiles], extra: &[&str]) -> Balancer {
    let mut args = vec!["--admin", "127.0.0.1:0", "--tls-port", "0"];
    for files in certs {
        args.extend(files.args());
    }
    args.extend_from_slice(extra);
    start_balancer(&[target], &args)
}

/// A balancer (plain port only) with one worker in front of these `-b`
/// specs, its admin endpoint on, a health interval long enough that only
/// the first round runs; `extra` flags last.
fn start_with_targets(specs: &[&str], extra: &[&str]) -> Balancer {
    let mut args = Vec::new();
    for spec in specs {
        args.extend(["-b", spec]);
    }
    args.extend([
        "--workers",
        "1",
        "--health-interval",
        "60s",
        "--admin",
        "127.0.0.1:0",
    ]);
    args.extend_from_slice(extra);
    Balancer::start(&args)
}

fn failures_series(reason: &str) -> String {
    format!("lb_tls_handshake_failures_total{{reason=\"{reason}\"}}")
}

fn handshakes_series(resumed: bool) -> String {
    format!("lb_tls_handshakes_total{{resumed=\"{resumed}\"}}")
}

/// A series' value, 0 when it is not exported (yet).
fn metric(lb: &Balancer, series: &str) -> f64 {
    let scrape = Scrape::take(lb);
    if scrape.has(series) {
        scrape.get(series)
    } else {
        0.0
    }
}

/// The TLS lines of `/metrics`, for failure messages.
fn tls_metrics(lb: &Balancer) -> String {
    Scrape::take(lb)
        .text
        .lines()
        .filter(|l| l.contains("lb_tls"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until `series` reads `want`.
#[track_caller]
fn expect_metric(lb: &Balancer, series: &str, want: f64) {
    assert!(
        wait_for(WAIT, || metric(lb, series) == want),
        "{series} is not {want}:\n{}",
        tls_metrics(lb)
    );
}

/// The sum of every handshake failure reason.
fn all_failures(lb: &Balancer) -> f64 {
    Scrape::take(lb).sum("lb_tls_handshake_failures_total")
}

/// Waits until new handshakes to `addr` for [`NAME`] present `want`.
#[track_caller]
fn expect_presented(addr: std::net::SocketAddr, want: &Leaf, leaves: &[&Leaf]) {
    let mut last = None;
    let presented = wait_for(WAIT, || {
        let leaf = presented_leaf(addr, NAME);
        let is = want.is(&leaf);
        last = Some(leaf);
        is
    });
    assert!(
        presented,
        "new handshakes still get {}, not {}",
        last.map_or("nothing", |l| leaf_name(&l, leaves)),
        want.name
    );
}

/// The lines the balancer printed after the first `from`.
fn lines_after(lb: &Balancer, from: usize) -> Vec<String> {
    lb.log().into_iter().skip(from).collect()
}

// ---------------------------------------------------------------------------
// The HTTPS listener
// ---------------------------------------------------------------------------

/// The same balancer answers plain HTTP on `-p` and HTTPS on `--tls-port`,
/// from the same targets.
#[test]
fn https_and_plain_http_are_served_side_by_side() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let tls = https_addr(&lb);
    assert_ne!(tls, lb.addr(), "{}", lb.startup_line());

    let plain = get(lb.addr(), "/plain");
    assert_eq!((plain.status, plain.body_str().as_str()), (200, "a"));
    let secure = https_get(tls, NAME, &site.ca.trust(), "/secure");
    let r = &secure.response;
    assert_eq!((r.status, r.body_str().as_str()), (200, "a"), "{r:?}");
    assert!(site.leaf.is(&secure.leaf));
    let again = get(lb.addr(), "/plain-again");
    assert_eq!(again.status, 200);

    let paths: Vec<String> = target.requests_log().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/plain", "/secure", "/plain-again"]);
}

/// A request that came over TLS reaches the target with
/// `X-Forwarded-Proto: https` (whatever the client claimed), a plain one
/// with `http`.
#[test]
fn x_forwarded_proto_says_https_for_tls_and_http_for_plain() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let config = default_client_config(&site.ca.trust());
    let mut secure = TlsClient::connect(https_addr(&lb), NAME, &config);
    let mut plain = Client::connect(lb.addr());

    let proto = |path: &str| {
        let seen = target.last_request().expect("the target got the request");
        assert_eq!(seen.path, path);
        seen.header_all("X-Forwarded-Proto")
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let r = secure.request("GET", "/tls", &[("X-Forwarded-Proto", "http")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(proto("/tls"), ["https"]);
    let r = plain.request("GET", "/plain", &[("X-Forwarded-Proto", "https")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(proto("/plain"), ["http"]);
    // Per connection: the TLS one still says https.
    assert_eq!(secure.get("/tls-again").status, 200);
    assert_eq!(proto("/tls-again"), ["https"]);
}

/// With two certificate pairs, SNI picks the one for the name; a client
/// without SNI or with an unknown name gets the first pair.
#[test]
fn sni_picks_the_certificate_and_the_first_pair_is_the_default() {
    let target = Backend::start("a");
    let ca = Ca::new("sni-root");
    let a = ca.leaf("a", &["a.test"]);
    let b = ca.leaf("b", &["b.test"]);
    let (a_files, b_files) = (a.files(), b.files());
    let leaves = [&a, &b];

    let lb = start_tls(&target, &[&a_files, &b_files], &[]);
    let tls = https_addr(&lb);
    for (name, want) in [
        ("a.test", &a),
        ("b.test", &b),
        ("unknown.test", &a),
        ("127.0.0.1", &a),
    ] {
        let got = presented_leaf(tls, name);
        assert!(
            want.is(&got),
            "as {name:?}: got {}, want {}",
            leaf_name(&got, &leaves),
            want.name
        );
    }
    // A verifying client asking for the second name gets through.
    let f = https_get(tls, "b.test", &ca.trust(), "/b");
    assert_eq!(f.response.status, 200);

    // The other order: the default follows the first pair.
    let lb = start_tls(&target, &[&b_files, &a_files], &[]);
    let tls = https_addr(&lb);
    for (name, want) in [("a.test", &a), ("unknown.test", &b), ("127.0.0.1", &b)] {
        let got = presented_leaf(tls, name);
        assert!(
            want.is(&got),
            "pairs b, a; as {name:?}: got {}, want {}",
            leaf_name(&got, &leaves),
            want.name
        );
    }
}

/// A certificate file holding a chain (leaf, then intermediate) is sent
/// whole: a client that trusts only the root verifies it.
#[test]
fn the_whole_chain_of_the_certificate_file_is_sent() {
    let target = Backend::start("a");
    let root = Ca::new("chain-root");
    let intermediate = root.intermediate("chain-intermediate");
    let leaf = intermediate.leaf("chained", &[NAME]);
    let files = leaf.files();
    let lb = start_tls(&target, &[&files], &[]);

    let config = default_client_config(&root.trust());
    let mut c = TlsClient::connect(https_addr(&lb), NAME, &config);
    let chain = c.chain();
    assert_eq!(chain.len(), 2, "leaf and intermediate");
    assert!(leaf.is(&chain[0]));
    assert_eq!(chain[1], intermediate.der());
    assert_eq!(c.get("/chained").status, 200);
}

/// ALPN names a client offers, and the one it should get.
type Offer = (&'static [&'static [u8]], Option<&'static [u8]>);

/// ALPN: `http/1.1` is agreed when offered (alone or after `h2`), no ALPN
/// is fine, and a client offering only `h2` fails the handshake (counted)
/// while others go on being served.
#[test]
fn alpn_agrees_on_http_1_1_and_refuses_a_client_offering_only_h2() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let tls = https_addr(&lb);
    let trust = site.ca.trust();

    let offers: [Offer; 3] = [
        (&[HTTP11], Some(HTTP11)),
        (&[b"h2", HTTP11], Some(HTTP11)),
        (&[], None),
    ];
    for (offer, want) in offers {
        let config = client_config(&trust, ALL_VERSIONS, offer);
        let mut c = TlsClient::connect(tls, NAME, &config);
        assert_eq!(c.alpn().as_deref(), want, "offered {offer:?}");
        assert_eq!(c.get("/alpn").status, 200, "offered {offer:?}");
    }
    assert_eq!(all_failures(&lb), 0.0, "{}", tls_metrics(&lb));

    let h2_only = client_config(&trust, ALL_VERSIONS, &[b"h2"]);
    let refused = TlsClient::try_connect(tls, NAME, &h2_only);
    assert!(refused.is_err(), "an h2-only client got through");
    assert!(
        wait_for(WAIT, || all_failures(&lb) == 1.0),
        "the refused handshake is not counted:\n{}",
        tls_metrics(&lb)
    );
    assert_eq!(https_get(tls, NAME, &trust, "/after").response.status, 200);
}

/// A TLS 1.2-only client and a TLS 1.3-only client both get through, and
/// each keeps its connection for several requests.
#[test]
fn tls_1_2_and_tls_1_3_both_work() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let tls = https_addr(&lb);
    for (versions, want) in [
        (TLS12_ONLY, ProtocolVersion::TLSv1_2),
        (TLS13_ONLY, ProtocolVersion::TLSv1_3),
    ] {
        let config = client_config(&site.ca.trust(), versions, &[HTTP11]);
        let mut c = TlsClient::connect(tls, NAME, &config);
        assert_eq!(c.version(), Some(want));
        for i in 0..3 {
            let r = c.get(&format!("/{want:?}/{i}"));
            assert_eq!((r.status, r.body_str().as_str()), (200, "a"), "{want:?}");
        }
    }
    assert_eq!(target.requests(), 6);
}

/// A second connection with the first one's session is resumed, and the
/// metrics count one full and one resumed handshake.
fn resumption_is_counted(versions: &[&'static rustls::SupportedProtocolVersion]) {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let tls = https_addr(&lb);
    let config = client_config(&site.ca.trust(), versions, &[HTTP11]);

    let mut first = TlsClient::connect(tls, NAME, &config);
    assert_ne!(first.handshake_kind(), Some(HandshakeKind::Resumed));
    // Read a whole answer, so that TLS 1.3 tickets have arrived.
    assert_eq!(first.get("/first").status, 200);
    let version = first.version();
    first.close();

    let mut second = TlsClient::connect(tls, NAME, &config);
    assert_eq!(second.version(), version);
    assert_eq!(
        second.handshake_kind(),
        Some(HandshakeKind::Resumed),
        "{version:?}: the second connection was not resumed"
    );
    assert_eq!(second.get("/second").status, 200);
    expect_metric(&lb, &handshakes_series(false), 1.0);
    expect_metric(&lb, &handshakes_series(true), 1.0);
}

/// TLS 1.3 sessions resume (tickets), counted as resumed.
#[test]
fn tls_1_3_resumption_is_counted() {
    resumption_is_counted(TLS13_ONLY);
}

/// TLS 1.2 sessions resume, counted as resumed.
#[test]
fn tls_1_2_resumption_is_counted() {
    resumption_is_counted(TLS12_ONLY);
}

/// How a reload is asked for.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    Post,
    Sighup,
}

fn reload(lb: &Balancer, how: Trigger) {
    match how {
        // Whatever it answers about the targets (there is no targets file
        // here), it re-reads the certificates.
        Trigger::Post => {
            let r = post_reload(lb);
            eprintln!("POST /reload: {} {}", r.status, r.body_str());
        }
        Trigger::Sighup => sighup(lb),
    }
}

/// After the files change and a reload, new handshakes get the new
/// certificate; a keep-alive connection opened before goes on working.
fn reload_swaps_the_certificate_and_keeps_connections(how: Trigger) {
    let target = Backend::start("a");
    let ca = Ca::new("reload-root");
    let old = ca.leaf("old", &[NAME]);
    let new = ca.leaf("new", &[NAME]);
    let files = old.files();
    let lb = start_tls(&target, &[&files], &[]);
    let tls = https_addr(&lb);
    let config = default_client_config(&ca.trust());
    let mut kept = TlsClient::connect(tls, NAME, &config);
    assert_eq!(kept.get("/before").status, 200);
    assert!(old.is(&kept.leaf()));

    new.write_to(&files);
    reload(&lb, how);
    expect_presented(tls, &new, &[&old, &new]);

    let r = kept.get("/after");
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "a"),
        "{how:?}: the connection from before"
    );
    assert_eq!(target.last_request().unwrap().path, "/after");
    let f = https_get(tls, NAME, &ca.trust(), "/new");
    assert_eq!(f.response.status, 200);
    assert!(new.is(&f.leaf));
}

/// SIGHUP re-reads the certificate files; an open keep-alive TLS
/// connection stays up.
#[test]
fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    reload_swaps_the_certificate_and_keeps_connections(Trigger::Sighup);
}

/// `POST /reload` re-reads the certificate files; an open keep-alive TLS
/// connection stays up.
#[test]
fn post_reload_reloads_the_certificate_and_keeps_open_connections() {
    reload_swaps_the_certificate_and_keeps_connections(Trigger::Post);
}

/// A reload that finds a key file of garbage (beside a new certificate)
/// keeps the old pair, logs one line naming the file, and the next good
/// reload takes the new pair.
#[test]
fn a_bad_key_file_on_reload_keeps_the_old_certificate_and_names_the_file() {
    let target = Backend::start("a");
    let ca = Ca::new("bad-reload-root");
    let old = ca.leaf("old", &[NAME]);
    let new = ca.leaf("new", &[NAME]);
    let files = old.files();
    let lb = start_tls(&target, &[&files], &[]);
    let tls = https_addr(&lb);
    let config = default_client_config(&ca.trust());
    let mut kept = TlsClient::connect(tls, NAME, &config);
    assert_eq!(kept.get("/before").status, 200);

    let from = lb.log().len();
    let key_path = files.key.arg().to_string();
    files.cert.write(&new.chain_pem);
    files.key.write("this is not a private key\n");
    reload(&lb, Trigger::Post);
    let naming = |lb: &Balancer| -> Vec<String> {
        lines_after(lb, from)
            .into_iter()
            .filter(|l| l.contains(&key_path))
            .collect()
    };
    assert!(
        wait_for(WAIT, || !naming(&lb).is_empty()),
        "no line names {key_path}: {:#?}",
        lines_after(&lb, from)
    );

    let f = https_get(tls, NAME, &ca.trust(), "/after-bad");
    assert_eq!(f.response.status, 200);
    assert!(old.is(&f.leaf), "got {}", leaf_name(&f.leaf, &[&old, &new]));
    assert_eq!(kept.get("/kept").status, 200);
    assert_eq!(naming(&lb).len(), 1, "{:#?}", naming(&lb));

    new.write_to(&files);
    reload(&lb, Trigger::Sighup);
    expect_presented(tls, &new, &[&old, &new]);
    assert_eq!(kept.get("/still-kept").status, 200);
}

// ---------------------------------------------------------------------------
// Handshakes that fail
// ---------------------------------------------------------------------------

/// A client that sends nothing, or half a ClientHello, is closed at
/// `--client-header-timeout` (not before), counted as `timeout`; others
/// are served meanwhile.
#[test]
fn a_stalled_handshake_is_closed_at_the_header_deadline() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &["--client-header-timeout", "1s"]);
    let tls = https_addr(&lb);
    let hello = client_hello_bytes();

    let silent_since = Instant::now();
    let mut silent = Client::connect(tls);
    let half_since = Instant::now();
    let mut half = Client::connect(tls);
    half.send(&hello[..hello.len() / 2]);

    let f = https_get(tls, NAME, &site.ca.trust(), "/meanwhile");
    assert_eq!(f.response.status, 200);

    for (what, c, since) in [
        ("nothing sent", &mut silent, silent_since),
        ("half a ClientHello", &mut half, half_since),
    ] {
        assert!(
            c.is_closed(Duration::from_secs(6)),
            "{what}: still open 6 s after a 1 s deadline"
        );
        let after = since.elapsed();
        assert!(
            after >= Duration::from_millis(900),
            "{what}: closed after {after:?}, before the 1 s deadline"
        );
    }
    expect_metric(&lb, &failures_series("timeout"), 2.0);
    assert_eq!(target.requests(), 1);
}

/// Bytes that are not a ClientHello close the connection at once, counted
/// as `protocol`; the balancer goes on serving.
#[test]
fn garbage_instead_of_a_client_hello_is_closed_and_counted_as_protocol() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let tls = https_addr(&lb);

    // Deterministic noise, starting with a byte that is no record type.
    let mut x: u32 = 0x9e37_79b9;
    let mut noise = vec![0x00];
    noise.extend((0..300).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    let cases: [(&str, Vec<u8>); 2] = [
        ("random bytes", noise),
        (
            "a handshake record of nonsense",
            b"\x16\x03\x01\x00\x05hello".to_vec(),
        ),
    ];
    for (what, bytes) in &cases {
        let mut c = Client::connect(tls);
        c.send(bytes);
        assert!(c.is_closed(PROMPT_CLOSE), "{what}: kept open");
    }
    expect_metric(&lb, &failures_series("protocol"), cases.len() as f64);
    assert_eq!(target.requests(), 0);
    let f = https_get(tls, NAME, &site.ca.trust(), "/after");
    assert_eq!(f.response.status, 200);
}

/// Plain HTTP sent to the TLS port gets a plain-text 400 saying so, then
/// the close; counted as `plain_http`.
#[test]
fn plain_http_to_the_tls_port_gets_a_400_that_says_so() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let tls = https_addr(&lb);

    let mut c = Client::connect(tls);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response();
    assert_eq!((r.status, r.version), (400, 1), "{r:?}");
    assert!(
        r.body_str().to_ascii_lowercase().contains("https"),
        "the body does not say it is an HTTPS port: {:?}",
        r.body_str()
    );
    assert!(c.is_closed(PROMPT_CLOSE), "kept open after the 400");
    expect_metric(&lb, &failures_series("plain_http"), 1.0);
    assert_eq!(target.requests(), 0);
    assert_eq!(
        https_get(tls, NAME, &site.ca.trust(), "/after")
            .response
            .status,
        200
    );
}

/// A client that refuses the certificate (it trusts another CA) ends the
/// handshake with an alert, counted as `alert`.
#[test]
fn a_client_that_refuses_the_certificate_is_counted_as_alert() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let other = Ca::new("not-the-site-root");
    let config = default_client_config(&other.trust());
    let refused = TlsClient::try_connect(https_addr(&lb), NAME, &config);
    assert!(refused.is_err(), "a client trusting another CA got through");
    expect_metric(&lb, &failures_series("alert"), 1.0);
}

/// A ClientHello cut short by the client's FIN is closed at once, counted
/// as `closed`.
#[test]
fn a_client_hello_cut_by_a_fin_is_counted_as_closed() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let hello = client_hello_bytes();
    let mut c = Client::connect(https_addr(&lb));
    c.send(&hello[..hello.len() / 2]);
    c.shutdown_write();
    assert!(c.is_closed(PROMPT_CLOSE), "kept open after the FIN");
    expect_metric(&lb, &failures_series("closed"), 1.0);
}

/// A well-formed ClientHello offering TLS 1.0 only is refused at once,
/// counted as `incompatible`.
#[test]
fn a_tls_1_0_only_client_is_counted_as_incompatible() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let mut c = Client::connect(https_addr(&lb));
    c.send(&tls10_client_hello());
    assert!(c.is_closed(PROMPT_CLOSE), "kept open");
    expect_metric(&lb, &failures_series("incompatible"), 1.0);
}

/// Every failure reason and both kinds of successful handshake are
/// exported from the start, at 0.
#[test]
fn handshake_counters_are_exported_at_zero_from_the_start() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let scrape = Scrape::take(&lb);
    let mut series: Vec<String> = REASONS.iter().map(|r| failures_series(r)).collect();
    series.extend([handshakes_series(false), handshakes_series(true)]);
    for s in &series {
        assert!(scrape.has(s), "no {s} in\n{}", scrape.text);
        assert_eq!(scrape.get(s), 0.0, "{s}");
    }
}

// ---------------------------------------------------------------------------
// Targets over TLS
// ---------------------------------------------------------------------------

/// A target that must be refused: degraded from its first check, a
/// request gets a 5xx, and no HTTP request reaches it (its handshakes
/// fail).
#[track_caller]
fn assert_target_refused(lb: &Balancer, t: &TlsBackend) {
    assert!(
        lb.startup_line().contains("(0 healthy)"),
        "{}",
        lb.startup_line()
    );
    let r = get(lb.addr(), "/refused");
    assert!(r.status >= 500, "{} {}", r.status, r.body_str());
    assert_eq!(t.requests(), 0, "{:?}", t.last_request());
    assert_eq!(t.health_checks(), 0, "a health check got through");
    assert!(
        wait_for(WAIT, || t.handshake_failures() >= 1),
        "the target saw no handshake fail ({} TCP connections, {} handshakes)",
        t.connections(),
        t.handshakes()
    );
}

/// A target that answers: healthy from its first check (which went over
/// TLS) and answering a request sent to the plain port.
#[track_caller]
fn assert_target_answers(lb: &Balancer, t: &TlsBackend) {
    assert!(
        lb.startup_line().contains("(1 healthy)"),
        "{}",
        lb.startup_line()
    );
    assert!(t.health_checks() >= 1, "no health check over TLS");
    let r = get(lb.addr(), "/via-tls");
    assert_eq!((r.status, r.body_str().as_str()), (200, t.name()), "{r:?}");
    let seen = t.last_request().expect("the request reached the target");
    assert_eq!(seen.path, "/via-tls");
    assert_eq!(seen.header_all("X-Forwarded-Proto"), vec!["http"]);
}

/// `-b https://127.0.0.1:PORT` with `--backend-ca`: the target's
/// certificate, for that IP address, is verified; checks and requests go
/// over TLS.
#[test]
fn a_tls_target_by_ip_is_verified_with_backend_ca_and_checked_over_tls() {
    let ca = Ca::new("targets-root");
    let t = TlsBackend::start("T", &ca.leaf("t-ip", &["127.0.0.1"]));
    let spec = t.spec("127.0.0.1");
    let lb = start_with_targets(&[&spec], &["--backend-ca", ca.arg()]);
    assert_target_answers(&lb, &t);
}

/// `-b https://localhost:PORT`: the certificate is verified for the DNS
/// name `localhost`.
#[test]
fn a_tls_target_by_name_is_verified_for_that_name() {
    let ca = Ca::new("targets-root");
    let t = TlsBackend::start("T", &ca.leaf("t-localhost", &["localhost"]));
    let spec = t.spec("localhost");
    let lb = start_with_targets(&[&spec], &["--backend-ca", ca.arg()]);
    assert_target_answers(&lb, &t);
}

/// A target whose certificate is for another name is refused.
#[test]
fn a_tls_target_whose_certificate_names_another_host_is_refused() {
    let ca = Ca::new("targets-root");
    let t = TlsBackend::start("T", &ca.leaf("t-other", &["other.example"]));
    let spec = t.spec("localhost");
    let lb = start_with_targets(&[&spec], &["--backend-ca", ca.arg()]);
    assert_target_refused(&lb, &t);
}

/// A target whose certificate is signed by a CA other than
/// `--backend-ca` is refused.
#[test]
fn a_tls_target_signed_by_an_unknown_ca_is_refused() {
    let trusted = Ca::new("trusted-root");
    let unknown = Ca::new("unknown-root");
    let t = TlsBackend::start("T", &unknown.leaf("t-unknown", &["127.0.0.1"]));
    let spec = t.spec("127.0.0.1");
    let lb = start_with_targets(&[&spec], &["--backend-ca", trusted.arg()]);
    assert_target_refused(&lb, &t);
}

/// Without `--backend-ca` the system roots decide: a private CA is not
/// trusted.
#[test]
fn without_backend_ca_a_target_from_a_private_ca_is_refused() {
    let ca = Ca::new("private-root");
    let t = TlsBackend::start("T", &ca.leaf("t-private", &["127.0.0.1"]));
    let spec = t.spec("127.0.0.1");
    let lb = start_with_targets(&[&spec], &[]);
    assert_target_refused(&lb, &t);
}

/// `--backend-insecure` takes any certificate (unknown CA, wrong name),
/// and the start-up line says so.
#[test]
fn backend_insecure_accepts_any_certificate_and_says_so_at_start_up() {
    let unknown = Ca::new("unknown-root");
    let t = TlsBackend::start("T", &unknown.leaf("t-any", &["other.example"]));
    let spec = t.spec("127.0.0.1");
    let lb = start_with_targets(&[&spec], &["--backend-insecure"]);
    assert!(
        lb.startup_line().to_ascii_lowercase().contains("insecure"),
        "{}",
        lb.startup_line()
    );
    assert_target_answers(&lb, &t);
}

/// A `https://` line in `--targets-file` is a TLS target like `-b`.
#[test]
fn a_tls_target_in_the_targets_file_is_reached_over_tls() {
    let ca = Ca::new("targets-root");
    let t = TlsBackend::start("T", &ca.leaf("t-file", &["127.0.0.1"]));
    let file = TempFile::with(
        "targets",
        &format!("# a TLS target\n{}  # T\n", t.spec("127.0.0.1")),
    );
    let lb = Balancer::start(&[
        "--targets-file",
        file.arg(),
        "--backend-ca",
        ca.arg(),
        "--workers",
        "1",
        "--health-interval",
        "60s",
    ]);
    assert_target_answers(&lb, &t);
}

/// Requests to a TLS target, from one client connection and then another,
/// go over one pooled target connection.
#[test]
fn pooled_connections_to_a_tls_target_are_reused() {
    let ca = Ca::new("targets-root");
    let t = TlsBackend::start("T", &ca.leaf("t-pool", &["127.0.0.1"]));
    let spec = t.spec("127.0.0.1");
    let lb = start_with_targets(&[&spec], &["--backend-ca", ca.arg()]);
    for client in 0..2 {
        let mut c = Client::connect(lb.addr());
        for i in 0..4 {
            let r = c.request("GET", &format!("/pooled/{client}/{i}"), &[], b"");
            assert_eq!((r.status, r.body_str().as_str()), (200, "T"));
        }
    }
    assert_eq!(t.requests(), 8);
    let conns: BTreeSet<usize> = t.requests_log().iter().map(|r| r.conn).collect();
    assert_eq!(
        conns.len(),
        1,
        "requests came on target connections {conns:?} ({} TCP connections, {} handshakes)",
        t.connections(),
        t.handshakes()
    );
}

// ---------------------------------------------------------------------------
// Start-up errors
// ---------------------------------------------------------------------------

/// Asserts a run exits with status 2 and one line on stderr that contains
/// at least one of `any_of`; returns the line.
#[track_caller]
fn assert_start_up_error(args: &[&str], any_of: &[&str]) -> String {
    let out = Balancer::run(args);
    assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {:?}", out.stderr);
    assert!(
        any_of.iter().any(|w| lines[0].contains(w)),
        "{args:?}: {:?} names none of {any_of:?}",
        lines[0]
    );
    assert!(!out.stderr.contains("panicked"), "{:?}", out.stderr);
    lines[0].to_string()
}

/// A certificate or key file that is missing, unreadable as PEM, holds
/// no certificate, or does not match: exit 2, one line naming the file.
#[test]
fn start_up_refuses_unusable_certificate_files_naming_the_file() {
    let target = Backend::start("a");
    let b = target.addr().to_string();
    let ca = Ca::new("start-root");
    let good = ca.leaf("good", &[NAME]);
    let other = ca.leaf("other", &[NAME]);
    let good_files = good.files();
    let missing = TempFile::new("missing-cert");
    let missing_key = TempFile::new("missing-key");
    let not_pem = TempFile::with("not-pem", "this is not PEM at all\n");
    let key_only = TempFile::with("key-only", &good.key_pem);
    let other_key = TempFile::with("other-key", &other.key_pem);

    let cert = good_files.cert.arg();
    let key = good_files.key.arg();
    let cases: [(&str, &str, &str, Vec<&str>); 5] = [
        ("missing cert", missing.arg(), key, vec![missing.arg()]),
        (
            "missing key",
            cert,
            missing_key.arg(),
            vec![missing_key.arg()],
        ),
        ("cert not PEM", not_pem.arg(), key, vec![not_pem.arg()]),
        (
            "no certificate in the PEM",
            key_only.arg(),
            key,
            vec![key_only.arg()],
        ),
        (
            "key of another certificate",
            cert,
            other_key.arg(),
            vec![cert, other_key.arg()],
        ),
    ];
    for (what, cert, key, names) in &cases {
        let args = [
            "--bind",
            "127.0.0.1",
            "-p",
            "0",
            "-b",
            b.as_str(),
            "--tls-port",
            "0",
            "--tls-cert",
            *cert,
            "--tls-key",
            *key,
        ];
        let line = assert_start_up_error(&args, names);
        eprintln!("{what}: {line}");
    }
}

/// TLS flags that do not pair up (a certificate without a key, a key
/// without a certificate, more certificates than keys, a TLS port without
/// a certificate): exit 2, one line naming the flag.
#[test]
fn start_up_refuses_tls_flags_that_do_not_pair_up() {
    let target = Backend::start("a");
    let b = target.addr().to_string();
    let ca = Ca::new("flags-root");
    let one = ca.leaf("one", &[NAME]).files();
    let two = ca.leaf("two", &[NAME]).files();
    let (c1, k1, c2) = (one.cert.arg(), one.key.arg(), two.cert.arg());
    let cases: [(&str, Vec<&str>); 4] = [
        ("cert without key", vec!["--tls-cert", c1]),
        ("key without cert", vec!["--tls-key", k1]),
        (
            "two certs, one key",
            vec!["--tls-cert", c1, "--tls-key", k1, "--tls-cert", c2],
        ),
        ("no cert at all", vec![]),
    ];
    for (what, flags) in &cases {
        let mut args = vec![
            "--bind",
            "127.0.0.1",
            "-p",
            "0",
            "-b",
            b.as_str(),
            "--tls-port",
            "0",
        ];
        args.extend(flags);
        let line = assert_start_up_error(&args, &["--tls-cert", "--tls-key"]);
        eprintln!("{what}: {line}");
    }
}

// ---------------------------------------------------------------------------
// Tunnels and PROXY protocol over TLS
// ---------------------------------------------------------------------------

/// A WebSocket upgrade from a TLS client to a plain target: the 101 comes
/// back over TLS and bytes then go both ways through the tunnel.
#[test]
fn an_upgrade_from_a_tls_client_is_tunnelled() {
    let target = Backend::start("ws");
    target.set_mode(Mode::Upgrade);
    let site = site();
    let lb = start_tls(&target, &[&site.files], &[]);
    let config = default_client_config(&site.ca.trust());
    let mut c = TlsClient::connect(https_addr(&lb), NAME, &config);
    c.send_raw(&upgrade_request(b""));
    let r = c.read_head_only();
    assert_eq!(r.status, 101, "{r:?}");
    for word in [
        &b"ping"[..],
        b"a longer message, twice over",
        &[7u8; 40_000],
    ] {
        c.send_raw(word);
        assert_eq!(c.read_raw(word.len()), word, "echoed through the tunnel");
    }
}

/// A WebSocket upgrade from a plain client to an `https://` target: the
/// tunnel's target side is TLS.
#[test]
fn an_upgrade_to_a_tls_target_is_tunnelled() {
    let ca = Ca::new("targets-root");
    let t = TlsBackend::start("T", &ca.leaf("t-ip", &["127.0.0.1"]));
    let spec = t.spec("127.0.0.1");
    let lb = start_with_targets(&[&spec], &["--backend-ca", ca.arg()]);
    let mut c = Client::connect(lb.addr());
    c.send(&upgrade_request(b"early"));
    let r = c.read_response();
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(read_n(&mut c, 5), b"early", "bytes sent with the upgrade");
    let big = vec![9u8; 50_000];
    c.send(&big);
    assert_eq!(read_n(&mut c, big.len()), big);
}

/// With `--proxy-protocol`, the PROXY header comes in clear before the
/// handshake, and the client it names is the one the target hears of.
#[test]
fn a_proxy_header_comes_before_the_handshake() {
    let target = Backend::start("a");
    let site = site();
    let lb = start_tls(&target, &[&site.files], &["--proxy-protocol"]);
    let config = default_client_config(&site.ca.trust());
    let header = b"PROXY TCP4 192.0.2.7 10.0.0.1 12345 443\r\n";
    let mut c = TlsClient::try_connect_after(https_addr(&lb), header, NAME, &config)
        .expect("the handshake after the PROXY header");
    assert_eq!(c.get("/behind-l4").status, 200);
    let seen = target.last_request().expect("forwarded");
    assert_eq!(seen.header_all("X-Forwarded-For"), vec!["192.0.2.7"]);
    assert_eq!(seen.header_all("X-Forwarded-Proto"), vec!["https"]);
    // Without a header, the connection is closed before any handshake.
    assert!(
        TlsClient::try_connect(https_addr(&lb), NAME, &config).is_err(),
        "a handshake without the PROXY header was accepted"
    );
}

/// Reads exactly `n` bytes from a plain client.
fn read_n(c: &mut Client, n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    std::io::Read::read_exact(c, &mut bytes).unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    bytes
}

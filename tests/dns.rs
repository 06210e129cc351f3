//! Targets from DNS, end to end over loopback: a name given with `-b` (or
//! in `--targets-file`) stands for each of its addresses, looked up with a
//! small DNS server of the test's own (`--resolver`) and looked up again
//! every `--resolve-interval`: addresses that appear join (checked at
//! once), those that vanish leave, those that stay keep their pooled
//! connections; a failing or empty answer keeps the last good set and is
//! logged once; `/targets` says which name each target came from.

mod support;
use support::tls::{Ca, TlsBackend};
use support::*;

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

/// The name the targets are given by.
const NAME: &str = "app.test";

/// How often the balancer looks the name up again in these tests.
const INTERVAL: &str = "200ms";

/// Deadline of a wait for something that a DNS server that does not
/// answer holds up: two attempts of a second each, plus an interval.
const SILENT_WAIT: Duration = Duration::from_secs(10);

/// `app.test:PORT`, as `-b` takes it.
fn spec(port: u16) -> String {
    format!("{NAME}:{port}")
}

/// The name of the target at `b`'s address while the name has several.
fn expanded(b: &Backend) -> String {
    format!("{NAME}:{}({})", b.addr().port(), b.addr().ip())
}

/// A balancer (one worker, no health rounds after the first, the admin
/// endpoint on) whose names `dns` answers, looked up again every
/// [`INTERVAL`]; `args` say which targets, and come after the rest.
fn start_with(dns: &DnsServer, args: &[&str]) -> Balancer {
    let resolver = dns.arg();
    let mut all = vec![
        "--resolver",
        resolver.as_str(),
        "--resolve-interval",
        INTERVAL,
        "--workers",
        "1",
        "--health-interval",
        "60s",
        "--pool-idle-timeout",
        "60s",
        "--admin",
        "127.0.0.1:0",
    ];
    all.extend_from_slice(args);
    Balancer::start(&all)
}

/// [`start_with`] in front of `-b app.test:PORT`.
fn start_named(dns: &DnsServer, port: u16, extra: &[&str]) -> Balancer {
    let spec = spec(port);
    let mut args = vec!["-b", spec.as_str()];
    args.extend_from_slice(extra);
    start_with(dns, &args)
}

/// Targets named `names` on 127.0.0.2, 127.0.0.3, ..., on one port.
fn on_one_port<const N: usize>(names: [&str; N]) -> [Backend; N] {
    match backends_on_one_port(&names).try_into() {
        Ok(all) => all,
        Err(_) => unreachable!("one target for each name"),
    }
}

/// How many of `answers` `b` gave.
fn count(answers: &[String], b: &Backend) -> usize {
    answers.iter().filter(|a| *a == b.name()).count()
}

/// The log line of a change the name's answer made.
fn change_line(port: u16, added: &[String], removed: &[String], kept: usize) -> String {
    format!(
        "dns: {}: {} added [{}], {} removed [{}], {kept} kept",
        spec(port),
        added.len(),
        added.join(", "),
        removed.len(),
        removed.join(", ")
    )
}

/// Waits until the log says `name` passed its first check after joining.
fn wait_joined(lb: &Balancer, name: &str) {
    lb.expect_log(&format!("health: {name} degraded -> healthy"), WAIT);
}

/// The lines of the log that contain `needle`.
fn lines_with(lb: &Balancer, needle: &str) -> usize {
    lb.log().iter().filter(|l| l.contains(needle)).count()
}

/// Waits for `rounds` more lookups of the name (each an A and an AAAA
/// query) than `dns` had seen so far.
fn wait_rounds(dns: &DnsServer, rounds: usize, timeout: Duration) {
    let want = dns.queries() + 2 * rounds;
    assert!(
        dns.wait_for_queries(want, timeout),
        "{} queries, not {want}",
        dns.queries()
    );
}

#[test]
fn a_name_with_two_addresses_is_two_targets_that_both_get_traffic() {
    let [a, b] = on_one_port(["A", "B"]);
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a, &b]);
    let lb = start_named(&dns, a.addr().port(), &[]);
    let line = lb.startup_line();
    let want = format!(
        "2 targets (2 healthy): {} healthy, {} healthy",
        expanded(&a),
        expanded(&b)
    );
    assert!(line.contains(&want), "{line}");
    let answers = get_n(&lb, 4);
    assert_eq!(
        (count(&answers, &a), count(&answers, &b)),
        (2, 2),
        "{answers:?}"
    );
    // Each is a target of its own in the metrics.
    let s = Scrape::take(&lb);
    for t in [&a, &b] {
        let series = format!("lb_target_requests_total{{target=\"{}\"}}", expanded(t));
        assert_eq!(s.get(&series), 2.0);
    }
}

#[test]
fn a_name_with_one_address_is_named_as_written() {
    let [a] = on_one_port(["A"]);
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a]);
    let port = a.addr().port();
    let lb = start_named(&dns, port, &[]);
    let want = format!("1 targets (1 healthy): {} healthy", spec(port));
    assert!(lb.startup_line().contains(&want), "{}", lb.startup_line());
    assert_eq!(get_n(&lb, 2), ["A", "A"]);
    // The health check asked for the name, not the address.
    assert!(a.health_checks() >= 1);
}

#[test]
fn an_address_added_to_the_answer_joins_checked_and_gets_traffic() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a]);
    let lb = start_named(&dns, port, &[]);
    assert_eq!(get_n(&lb, 2), ["A", "A"]);

    dns.set_backends(NAME, &[&a, &b]);
    lb.expect_log(&change_line(port, &[expanded(&b)], &[], 1), WAIT);
    wait_joined(&lb, &expanded(&b));
    assert!(b.health_checks() >= 1, "B joined unchecked");
    let answers = get_n(&lb, 4);
    assert_eq!(
        (count(&answers, &a), count(&answers, &b)),
        (2, 2),
        "{answers:?}"
    );
}

#[test]
fn an_address_removed_from_the_answer_leaves() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a, &b]);
    let lb = start_named(&dns, port, &[]);
    assert_eq!(count(&get_n(&lb, 2), &b), 1);

    dns.set_backends(NAME, &[&a]);
    lb.expect_log(&change_line(port, &[], &[expanded(&b)], 1), WAIT);
    assert_eq!(get_n(&lb, 4), ["A", "A", "A", "A"]);
    assert_eq!(b.requests(), 1, "a target that left got a request");
    // The one left is named as the name again.
    let text = targets_text(&lb);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows,
        [
            "target address health in_flight source".to_string(),
            format!("{} {} healthy 0 {}", spec(port), a.addr(), spec(port))
        ]
    );
}

#[test]
fn a_target_that_stays_keeps_its_pooled_connection_across_refreshes() {
    let [a, b, c] = on_one_port(["A", "B", "C"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a, &b]);
    let lb = start_named(&dns, port, &[]);
    assert_eq!(count(&get_n(&lb, 2), &a), 1);
    // Its first check, and the connection now pooled.
    let (a_conns, b_conns) = (a.connections(), b.connections());

    // C joins: A and B keep their slots and connections.
    dns.set_backends(NAME, &[&a, &b, &c]);
    wait_joined(&lb, &expanded(&c));
    let answers = get_n(&lb, 6);
    assert_eq!(count(&answers, &a), 2, "{answers:?}");
    assert_eq!((a.connections(), b.connections()), (a_conns, b_conns));

    // B and C leave, A is alone and named as the name: still its slot.
    dns.set_backends(NAME, &[&a]);
    let removed = [expanded(&b), expanded(&c)];
    lb.expect_log(&change_line(port, &[], &removed, 1), WAIT);
    assert_eq!(get_n(&lb, 3), ["A", "A", "A"]);
    assert_eq!(a.connections(), a_conns, "A's pooled connection was lost");
    let names_a = format!("lb_target_requests_total{{target=\"{}\"}}", spec(port));
    assert_eq!(Scrape::take(&lb).get(&names_a), 6.0, "its counts kept");
}

#[test]
fn a_failing_dns_keeps_the_last_good_set_and_logs_once() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a, &b]);
    let lb = start_named(&dns, port, &[]);

    dns.set_mode(DnsMode::ServFail);
    let warn = format!(
        "WARN load-balancer: dns: {}: cannot resolve '{NAME}' with {}: server answered SERVFAIL; \
         its 2 targets are kept until it answers again",
        spec(port),
        dns.arg()
    );
    lb.expect_log(&warn, WAIT);
    wait_rounds(&dns, 3, WAIT);
    assert_eq!(lines_with(&lb, "dns: "), 1, "{:#?}", lb.log());
    let answers = get_n(&lb, 4);
    assert_eq!(
        (count(&answers, &a), count(&answers, &b)),
        (2, 2),
        "{answers:?}"
    );
}

#[test]
fn a_dns_that_answers_again_is_logged_once_and_its_answer_applied() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a]);
    let lb = start_named(&dns, port, &[]);
    dns.set_mode(DnsMode::ServFail);
    lb.expect_log("server answered SERVFAIL", WAIT);

    dns.set_backends(NAME, &[&a, &b]);
    dns.set_mode(DnsMode::Answer);
    let info = format!(
        "INFO load-balancer: dns: {} answers again: 2 addresses",
        spec(port)
    );
    lb.expect_log(&info, WAIT);
    lb.expect_log(&change_line(port, &[expanded(&b)], &[], 1), WAIT);
    wait_joined(&lb, &expanded(&b));
    wait_rounds(&dns, 2, WAIT);
    assert_eq!(lines_with(&lb, "answers again:"), 1, "{:#?}", lb.log());
    assert_eq!(count(&get_n(&lb, 4), &b), 2);
}

#[test]
fn an_empty_answer_or_no_such_name_keeps_the_last_good_set() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a, &b]);
    let lb = start_named(&dns, port, &[]);

    dns.set(NAME, &[]);
    let warn = format!(
        "dns: {}: no address for '{NAME}'; its 2 targets are kept",
        spec(port)
    );
    lb.expect_log(&warn, WAIT);
    // NXDOMAIN now: still failing, so not told again.
    dns.remove(NAME);
    wait_rounds(&dns, 3, WAIT);
    assert_eq!(lines_with(&lb, "dns: "), 1, "{:#?}", lb.log());
    let answers = get_n(&lb, 4);
    assert_eq!(
        (count(&answers, &a), count(&answers, &b)),
        (2, 2),
        "{answers:?}"
    );
}

#[test]
fn a_dns_server_that_does_not_answer_keeps_the_last_good_set() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a, &b]);
    let lb = start_named(&dns, port, &[]);

    dns.set_mode(DnsMode::Silent);
    let warn = format!(
        "dns: {}: cannot resolve '{NAME}' with {}: no answer in 2 attempts of 1s; its 2 targets are kept",
        spec(port),
        dns.arg()
    );
    lb.expect_log(&warn, SILENT_WAIT);
    // Clients were served all along, and still are.
    let answers = get_n(&lb, 4);
    assert_eq!(
        (count(&answers, &a), count(&answers, &b)),
        (2, 2),
        "{answers:?}"
    );
    dns.set_mode(DnsMode::Answer);
    lb.expect_log("answers again: 2 addresses", SILENT_WAIT);
    assert_eq!(lines_with(&lb, "dns: "), 2, "{:#?}", lb.log());
}

#[test]
fn resolve_interval_0_looks_the_name_up_only_at_start() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a]);
    let lb = start_named(&dns, port, &["--resolve-interval", "0"]);
    assert_eq!(dns.queries(), 2, "A and AAAA, once");

    dns.set_backends(NAME, &[&a, &b]);
    // Nothing is to happen: watch for five of the other tests' intervals.
    thread::sleep(Duration::from_secs(1));
    assert_eq!(dns.queries(), 2, "asked again");
    assert_eq!(get_n(&lb, 4), ["A", "A", "A", "A"]);
}

#[test]
fn targets_shows_the_name_each_target_came_from() {
    let [a, b] = on_one_port(["A", "B"]);
    let literal = Backend::start("L");
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a, &b]);
    let named = format!("{},weight=3", spec(port));
    let literal_spec = literal.addr().to_string();
    let lb = start_with(&dns, &["-b", &literal_spec, "-b", &named]);

    let text = targets_text(&lb);
    let rows: Vec<&str> = text.lines().collect();
    let row = |b: &Backend| format!("{} {} healthy 0 {}", expanded(b), b.addr(), spec(port));
    assert_eq!(
        rows,
        [
            "target address health in_flight source".to_string(),
            format!("{} {} healthy 0 -", literal.addr(), literal.addr()),
            row(&a),
            row(&b),
        ]
    );

    let json = admin_get(&lb, "/targets?format=json");
    let object = |b: &Backend| {
        format!(
            "{{\"target\":\"{}\",\"address\":\"{}\",\"healthy\":true,\"state\":\"healthy\",\"weight\":3,\"in_flight\":0,\"source\":\"{}\"}}",
            expanded(b),
            b.addr(),
            spec(port)
        )
    };
    let want = format!(
        "[{{\"target\":\"{l}\",\"address\":\"{l}\",\"healthy\":true,\"state\":\"healthy\",\"weight\":1,\"in_flight\":0}},{a},{b}]\n",
        l = literal.addr(),
        a = object(&a),
        b = object(&b)
    );
    assert_eq!(json, want);
}

#[test]
fn a_name_in_the_targets_file_is_looked_up_again_too() {
    let [a, b] = on_one_port(["A", "B"]);
    let literal = Backend::start("L");
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a]);
    let file = TempFile::with("targets", &format!("# by name\n{}\n", spec(port)));
    let lb = start_with(&dns, &["--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 2), ["A", "A"]);

    dns.set_backends(NAME, &[&a, &b]);
    lb.expect_log(&change_line(port, &[expanded(&b)], &[], 1), WAIT);
    wait_joined(&lb, &expanded(&b));
    assert_eq!(count(&get_n(&lb, 4), &b), 2);

    // A reload of the same file keeps both.
    let r = post_reload(&lb);
    assert_eq!(r.body_str(), "reloaded: 0 added, 0 removed, 2 kept\n");

    // A reload that drops the name drops its targets, and they stay gone.
    file.write(&format!("{literal_addr}\n", literal_addr = literal.addr()));
    let r = post_reload(&lb);
    assert_eq!(r.body_str(), "reloaded: 1 added, 2 removed, 0 kept\n");
    wait_joined(&lb, &literal.addr().to_string());
    let queries = dns.queries();
    // Nothing is to happen: watch for a few intervals.
    thread::sleep(Duration::from_secs(1));
    assert!(dns.queries() <= queries + 2, "the name is still looked up");
    assert_eq!(get_n(&lb, 3), ["L", "L", "L"]);
}

#[test]
fn a_reload_looks_the_files_names_up_again() {
    let [a, b] = on_one_port(["A", "B"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a]);
    let file = TempFile::with("targets", &format!("{}\n", spec(port)));
    let lb = start_with(
        &dns,
        &["--targets-file", file.arg(), "--resolve-interval", "0"],
    );

    dns.set_backends(NAME, &[&a, &b]);
    let r = post_reload(&lb);
    assert_eq!(r.body_str(), "reloaded: 1 added, 0 removed, 1 kept\n");
    assert_eq!(count(&get_n(&lb, 4), &b), 2);
}

#[test]
fn a_name_given_with_b_and_in_the_file_is_refused_on_reload() {
    let [a] = on_one_port(["A"]);
    let port = a.addr().port();
    let dns = DnsServer::start();
    dns.set_backends(NAME, &[&a]);
    let file = TempFile::with("targets", "");
    let lb = start_named(&dns, port, &["--targets-file", file.arg()]);
    file.write(&format!("{}\n", spec(port)));
    let r = post_reload(&lb);
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body_str(),
        format!("reload refused: '{}' is also given with -b\n", spec(port))
    );
}

#[test]
fn a_name_that_cannot_be_looked_up_at_start_is_a_one_line_error() {
    let dns = DnsServer::start();
    dns.set_mode(DnsMode::ServFail);
    let resolver = dns.arg();
    let out = Balancer::run(&["-p", "0", "--resolver", &resolver, "-b", "app.test:9"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "load-balancer: backend 'app.test:9': cannot resolve 'app.test' with {resolver}: \
             server answered SERVFAIL (try --help)\n"
        )
    );
    dns.set_mode(DnsMode::Answer);
    let out = Balancer::run(&["-p", "0", "--resolver", &resolver, "-b", "nowhere.test:9"]);
    assert!(
        out.stderr.contains("no such name (NXDOMAIN)"),
        "{}",
        out.stderr
    );
}

/// Two HTTPS targets on one port, with a certificate for `app.test` only.
fn tls_backends_on_one_port(ca: &Ca) -> (TlsBackend, TlsBackend) {
    let leaf = ca.leaf("app", &[NAME]);
    for _ in 0..50 {
        let first = TlsBackend::start_on("A", &leaf, "127.0.0.2:0".parse().unwrap())
            .expect("a target on 127.0.0.2");
        let second = SocketAddr::from(([127, 0, 0, 3], first.port()));
        if let Ok(second) = TlsBackend::start_on("B", &leaf, second) {
            return (first, second);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

#[test]
fn an_https_name_with_two_addresses_is_verified_for_the_name_at_each() {
    let ca = Ca::new("targets-root");
    let (a, b) = tls_backends_on_one_port(&ca);
    let dns = DnsServer::start();
    dns.set(
        NAME,
        &["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()],
    );
    let spec = a.spec(NAME);
    let lb = start_with(&dns, &["-b", &spec, "--backend-ca", ca.arg()]);
    let line = lb.startup_line();
    assert!(line.contains("2 targets (2 healthy)"), "{line}");
    assert!(
        line.contains(&format!("{spec}(127.0.0.3) healthy")),
        "{line}"
    );
    let mut answers = get_n(&lb, 4);
    answers.sort();
    assert_eq!(answers, ["A", "A", "B", "B"]);
    assert_eq!((a.requests(), b.requests()), (2, 2));
}

//! Reloading `--targets-file` on `POST /reload` or SIGHUP: targets added
//! (in the rotation once their first check passes) and removed (after their
//! requests in flight), pooled connections of unchanged targets kept, files
//! refused whole, metrics of a reused slot, and traffic that goes on, with
//! no request lost, while reloads run or wait for their file.

mod support;
use support::*;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a plain request may take to be answered while a reload waits
/// for its file.
const ANSWER_DEADLINE: Duration = Duration::from_secs(2);

/// The log line of a successful reload.
fn reload_line(added: &[&Backend], removed: &[&Backend], kept: usize) -> String {
    let names = |v: &[&Backend]| {
        v.iter()
            .map(|b| target_name(b))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "reload: {} added [{}], {} removed [{}], {kept} kept",
        added.len(),
        names(added),
        removed.len(),
        names(removed)
    )
}

/// Waits until the log says `b` came back healthy after a check.
fn wait_healthy_log(lb: &Balancer, b: &Backend) {
    let line = format!("health: {} degraded -> healthy", target_name(b));
    lb.expect_log(&line, WAIT);
}

#[test]
fn post_reload_adds_a_target_that_gets_requests_once_healthy() {
    let a = Backend::start("A");
    let c = Backend::start("C");
    let file = targets_file(&[]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    set_targets(&file, &[&c]);
    let r = post_reload(&lb);
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "reloaded: 1 added, 0 removed, 1 kept\n")
    );
    let line = reload_line(&[&c], &[], 1);
    lb.expect_log(&line, WAIT);
    // Checked before the answer: in the rotation at once.
    assert_eq!(get_n(&lb, 4), ["A", "C", "A", "C"]);
    assert_eq!(c.requests(), 2);
}

#[test]
fn post_reload_removes_a_target_that_then_gets_no_requests() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 2), ["A", "B"]);

    set_targets(&file, &[]);
    let r = post_reload(&lb);
    assert_eq!(
        (r.status, r.body_str().as_str()),
        (200, "reloaded: 0 added, 1 removed, 1 kept\n")
    );
    assert_eq!(get_n(&lb, 4), ["A", "A", "A", "A"]);
    assert_eq!(b.requests(), 1);
    assert_eq!(
        targets_text(&lb).lines().collect::<Vec<_>>(),
        [
            "target address health in_flight".to_string(),
            target_row(&a, "healthy", 0)
        ]
    );
}

#[test]
fn sighup_reload_adds_and_removes_targets() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 2), ["A", "B"]);

    set_targets(&file, &[&c]);
    let outcome = sighup_reload(&lb);
    assert!(outcome.contains(&reload_line(&[&c], &[&b], 1)), "{outcome}");
    assert!(lb.log_contains("reload: SIGHUP received"));
    wait_healthy_log(&lb, &c);
    assert_eq!(get_n(&lb, 4), ["A", "C", "A", "C"]);
    assert_eq!(b.requests(), 1, "a removed target got a request");
}

#[test]
fn an_added_target_that_fails_its_check_gets_no_requests() {
    let a = Backend::start("A");
    let c = Backend::start("C");
    c.set_healthy(false);
    let file = targets_file(&[]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    set_targets(&file, &[&c]);
    assert_eq!(post_reload(&lb).status, 200);
    assert!(c.wait_for_health_checks(1, WAIT), "C was not checked");
    assert_eq!(get_n(&lb, 4), ["A", "A", "A", "A"]);
    assert_eq!(c.requests(), 0);
    assert!(
        targets_text(&lb).contains(&target_row(&c, "degraded", 0)),
        "{}",
        targets_text(&lb)
    );
}

#[test]
fn a_removed_target_finishes_its_request_in_flight() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    let mut c = Client::connect(lb.addr());
    assert_eq!(c.request("GET", "/first", &[], b"").body_str(), "A");

    // The next request goes to B, which holds it while B leaves the set.
    b.set_mode(Mode::Delay(Duration::from_millis(1500)));
    c.send_request("GET", "/held", &[], b"");
    assert!(b.wait_for_requests(1, WAIT), "B got nothing");
    set_targets(&file, &[]);
    let r = post_reload(&lb);
    assert_eq!(r.body_str(), "reloaded: 0 added, 1 removed, 1 kept\n");
    assert!(
        !targets_text(&lb).contains(&target_name(&b)),
        "{}",
        targets_text(&lb)
    );

    let r = c.read_response();
    assert_eq!((r.status, r.body_str().as_str()), (200, "B"));
    assert_eq!(c.request("GET", "/after", &[], b"").body_str(), "A");
}

/// How a reload is asked for.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    Post,
    Sighup,
}

/// Reloads and asserts it went through with this change.
fn reload_ok(lb: &Balancer, how: Trigger, added: &[&Backend], removed: &[&Backend], kept: usize) {
    let line = reload_line(added, removed, kept);
    match how {
        Trigger::Post => {
            let r = post_reload(lb);
            assert_eq!(
                (r.status, r.body_str()),
                (
                    200,
                    format!(
                        "reloaded: {} added, {} removed, {kept} kept\n",
                        added.len(),
                        removed.len()
                    )
                )
            );
            lb.expect_log(&line, WAIT);
        }
        Trigger::Sighup => {
            let outcome = sighup_reload(lb);
            assert!(outcome.contains(&line), "{outcome} is not {line}");
            for b in added {
                wait_healthy_log(lb, b);
            }
        }
    }
}

/// A `-b` target and a file target that a reload keeps go on answering on
/// the same upstream connections.
fn unchanged_targets_keep_their_pooled_connections(how: Trigger) {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);
    let mut client = Client::connect(lb.addr());
    for want in ["A", "B"] {
        assert_eq!(client.request("GET", "/before", &[], b"").body_str(), want);
    }
    let a_conn = a.last_request().unwrap().conn;
    let b_conn = b.last_request().unwrap().conn;

    set_targets(&file, &[&b, &c]);
    reload_ok(&lb, how, &[&c], &[], 2);

    // The cursor is past B: C (the new slot), then A, then B.
    for want in ["C", "A", "B"] {
        assert_eq!(client.request("GET", "/after", &[], b"").body_str(), want);
    }
    assert_eq!(a.requests(), 2);
    assert_eq!(b.requests(), 2);
    assert_eq!(
        a.last_request().unwrap().conn,
        a_conn,
        "the -b target was reached on a new connection"
    );
    assert_eq!(
        b.last_request().unwrap().conn,
        b_conn,
        "the kept file target was reached on a new connection"
    );
}

#[test]
fn post_reload_keeps_the_pooled_connections_of_unchanged_targets() {
    unchanged_targets_keep_their_pooled_connections(Trigger::Post);
}

#[test]
fn sighup_reload_keeps_the_pooled_connections_of_unchanged_targets() {
    unchanged_targets_keep_their_pooled_connections(Trigger::Sighup);
}

#[test]
fn post_reload_refuses_a_file_with_an_unparseable_line_and_keeps_the_set() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    file.write(&format!(
        "{}\n{}\nthis is not a target\n",
        target_name(&b),
        target_name(&c)
    ));
    let r = post_reload(&lb);
    assert_eq!(r.status, 400, "{}", r.body_str());
    let body = r.body_str();
    assert!(
        body.starts_with("reload refused: ") && body.contains("line 3"),
        "{body}"
    );
    lb.expect_log(REFUSED, WAIT);
    assert!(!lb.log_contains("reload: 1 added"), "{:#?}", lb.log());

    assert_eq!(get_n(&lb, 4), ["A", "B", "A", "B"]);
    assert_eq!(c.requests(), 0);
    assert!(!targets_text(&lb).contains(&target_name(&c)));
}

#[test]
fn sighup_reload_refuses_an_address_that_is_not_host_port_and_keeps_the_set() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg()]);

    // C is fine, but the second line has no port: nothing of the file is
    // taken, B stays.
    file.write(&format!("{}\n127.0.0.1\n", target_name(&c)));
    let outcome = sighup_reload(&lb);
    assert!(
        outcome.contains(REFUSED) && outcome.contains("'127.0.0.1' is not host:port"),
        "{outcome}"
    );
    assert!(outcome.contains(" WARN "), "{outcome}");

    assert_eq!(get_n(&lb, 4), ["A", "B", "A", "B"]);
    assert_eq!(c.requests(), 0);
    assert_eq!(c.health_checks(), 0, "a refused target was checked");
}

#[test]
fn post_reload_refuses_more_targets_than_max_targets() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg(), "--max-targets", "2"]);
    set_targets(&file, &[&b, &c]);
    let r = post_reload(&lb);
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(r.body_str().contains("--max-targets"), "{}", r.body_str());
    assert_eq!(get_n(&lb, 4), ["A", "B", "A", "B"]);
    assert_eq!(c.requests(), 0);
}

#[test]
fn post_reload_without_a_targets_file_is_refused() {
    let a = Backend::start("A");
    let lb = start_admin(&[&a], &[]);
    let r = post_reload(&lb);
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(r.body_str().contains("--targets-file"), "{}", r.body_str());
    assert_eq!(get_n(&lb, 1), ["A"]);
}

/// A balancer with `-b A` and a file holding B, after one request to each;
/// then the file is changed to hold C instead, which takes B's freed slot.
/// Returns the scrape taken right after the reload.
fn replace_b_by_c(a: &Backend, b: &Backend, c: &Backend) -> (Balancer, Scrape) {
    let file = targets_file(&[b]);
    let lb = start_admin(&[a], &["--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 2), ["A", "B"]);
    let before = Scrape::take(&lb);
    assert_eq!(before.target("lb_target_requests_total", b), 1.0);
    assert_eq!(before.target("lb_target_health_transitions_total", b), 1.0);

    set_targets(&file, &[c]);
    assert_eq!(post_reload(&lb).status, 200);
    let s = Scrape::take(&lb);
    assert!(
        !s.has(&format!(
            "lb_target_requests_total{{target=\"{}\"}}",
            target_name(b)
        )),
        "a removed target still has series:\n{}",
        s.text
    );
    (lb, s)
}

#[test]
fn a_target_that_takes_a_freed_slot_starts_with_no_requests_counted() {
    let (a, b, c) = (
        Backend::start("A"),
        Backend::start("B"),
        Backend::start("C"),
    );
    let (_lb, s) = replace_b_by_c(&a, &b, &c);
    assert_eq!(c.requests(), 0);
    assert_eq!(
        (
            s.target("lb_target_requests_total", &c),
            s.responses(&c, "2xx")
        ),
        (0.0, 0.0),
        "C, which has had no request, shows B's counts:\n{}",
        s.text
    );
}

#[test]
fn a_target_that_takes_a_freed_slot_counts_only_its_own_health_transitions() {
    let (a, b, c) = (
        Backend::start("A"),
        Backend::start("B"),
        Backend::start("C"),
    );
    let (_lb, s) = replace_b_by_c(&a, &b, &c);
    assert_eq!(
        s.target("lb_target_health_transitions_total", &c),
        1.0,
        "C has changed once (degraded -> healthy):\n{}",
        s.text
    );
}

#[test]
fn reloads_under_traffic_lose_no_request() {
    let a = Backend::start("A");
    let b = Backend::start("B");
    let c = Backend::start("C");
    let file = targets_file(&[&b]);
    let lb = start_admin(&[&a], &["--targets-file", file.arg(), "--workers", "2"]);

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let addr = lb.addr();
    let clients: Vec<_> = [false, true]
        .into_iter()
        .map(|fresh_each_time| {
            let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
            thread::spawn(move || {
                let headers: &[(&str, &str)] = if fresh_each_time {
                    &[("Connection", "close")]
                } else {
                    &[]
                };
                let mut conn: Option<Client> = None;
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let c = conn.get_or_insert_with(|| Client::connect(addr));
                    let path = format!("/t{}/{i}", u8::from(fresh_each_time));
                    let result = c
                        .try_send(&request_bytes("GET", &path, headers, b""))
                        .and_then(|()| c.try_read_response_to("GET"));
                    match result {
                        Ok(r) if r.status == 200 && !r.truncated => {}
                        Ok(r) => failures.lock().unwrap().push(format!(
                            "{path}: {} {}",
                            r.status,
                            r.body_str()
                        )),
                        Err(e) => {
                            failures.lock().unwrap().push(format!("{path}: {e}"));
                            conn = None;
                        }
                    }
                    if fresh_each_time {
                        conn = None;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Each reload waits for some traffic to have gone through since the last.
    let progress = |n: usize| {
        let since = done.load(Ordering::SeqCst);
        let moved = wait_for(Duration::from_secs(10), || {
            done.load(Ordering::SeqCst) >= since + n
        });
        assert!(moved, "traffic stalled at {since} requests");
    };
    let sets: [&[&Backend]; 6] = [&[&b, &c], &[&c], &[&b], &[], &[&b, &c], &[&c]];
    for set in sets {
        progress(30);
        set_targets(&file, set);
        let r = post_reload(&lb);
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    progress(30);
    stop.store(true, Ordering::SeqCst);
    for t in clients {
        t.join().expect("client thread");
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:#?}",
        failures.len(),
        done.load(Ordering::SeqCst),
        &failures[..failures.len().min(20)]
    );
    assert!(b.requests() > 0 && c.requests() > 0);
}

/// Sends plain GETs through the balancer and asserts each is answered 200
/// within [`ANSWER_DEADLINE`]; `while_` says what is going on, for the
/// failure message.
fn assert_answered_promptly(lb: &Balancer, while_: &str) {
    let mut c = Client::connect(lb.addr());
    c.set_read_timeout(ANSWER_DEADLINE);
    for i in 0..3 {
        let started = Instant::now();
        c.send_request("GET", &format!("/meanwhile/{i}"), &[], b"");
        let r = c.try_read_response_to("GET").unwrap_or_else(|e| {
            panic!("GET {i} while {while_}: no answer within {ANSWER_DEADLINE:?} ({e})")
        });
        assert_eq!(r.status, 200, "GET {i} while {while_}: {}", r.body_str());
        assert!(
            started.elapsed() < ANSWER_DEADLINE,
            "GET {i} while {while_} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn requests_are_answered_while_reloads_wait_for_the_targets_file() {
    let a = Backend::start("A");
    let c = Backend::start("C");
    let d = Backend::start("D");
    let file = targets_file(&[]);
    // One worker, the one that also serves the admin endpoint and reloads.
    let lb = start_admin(&[&a], &["--workers", "1", "--targets-file", file.arg()]);
    assert_eq!(get_n(&lb, 1), ["A"]);
    // Reading the file now blocks until the test writes into it: a name
    // that takes long to resolve, or a slow mount, made deterministic.
    file.make_fifo();

    sighup(&lb);
    let mut writer = file.fifo_writer();
    assert_answered_promptly(&lb, "a SIGHUP reload waits for its file");
    assert!(
        targets_text(&lb).contains(&target_name(&a)),
        "{}",
        targets_text(&lb)
    );

    // A second reload, asked while the first waits: it comes after it, and
    // its answer only once it is done.
    let admin_at = lb.admin_addr();
    let (answered, answer) = mpsc::channel();
    thread::spawn(move || {
        let r =
            Client::connect(admin_at).request("POST", "/reload", &[("Connection", "close")], b"");
        let _ = answered.send((r.status, r.body_str()));
    });

    writer
        .write_all(targets_list(&[&c]).as_bytes())
        .expect("write the FIFO");
    drop(writer);
    let line = reload_line(&[&c], &[], 1);
    lb.expect_log(&line, WAIT);

    // The second reload now reads the FIFO in its turn.
    let mut writer = file.fifo_writer();
    assert_answered_promptly(&lb, "a POST /reload waits for its file");
    assert!(
        answer.try_recv().is_err(),
        "POST /reload answered before its reload read the file"
    );
    writer
        .write_all(targets_list(&[&c, &d]).as_bytes())
        .expect("write the FIFO");
    drop(writer);
    let (status, body) = answer
        .recv_timeout(WAIT)
        .expect("no answer to POST /reload after its file was written");
    assert_eq!(
        (status, body.as_str()),
        (200, "reloaded: 1 added, 0 removed, 2 kept\n")
    );
    let line = reload_line(&[&d], &[], 2);
    assert!(lb.log_contains(&line), "no `{line}` in {:#?}", lb.log());
    let listed = targets_text(&lb);
    for b in [&a, &c, &d] {
        assert!(listed.contains(&target_name(b)), "{listed}");
    }
    assert_answered_promptly(&lb, "no reload runs");
}

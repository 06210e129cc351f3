//! Driving a balancer the way an operator does: its admin endpoint
//! (`--admin`: `/targets`, `POST /reload`) and its `--targets-file`,
//! reloaded on `POST /reload` or SIGHUP.

use super::{get, WAIT};
use super::{start_balancer, target_name, wait_for, Backend, Balancer, Client, Response, TempFile};

/// The start of the log line of a refused reload.
pub const REFUSED: &str = "reload refused, the running set stays: ";

/// [`start_balancer`] (one worker, no health rounds after the first) with
/// the admin endpoint on a free port.
pub fn start_admin(backends: &[&Backend], extra: &[&str]) -> Balancer {
    let mut args = vec!["--admin", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start_balancer(backends, &args)
}

/// One request to the admin endpoint, on its own connection.
pub fn admin(lb: &Balancer, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut all = vec![("Connection", "close")];
    all.extend_from_slice(headers);
    Client::connect(lb.admin_addr()).request(method, path, &all, b"")
}

/// `GET path` on the admin endpoint, asserted 200; the body.
pub fn admin_get(lb: &Balancer, path: &str) -> String {
    let r = get(lb.admin_addr(), path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body_str());
    r.body_str()
}

/// `POST /reload`.
pub fn post_reload(lb: &Balancer) -> Response {
    admin(lb, "POST", "/reload", &[])
}

/// `GET /targets` as text, asserting a 200.
pub fn targets_text(lb: &Balancer) -> String {
    admin_get(lb, "/targets")
}

/// The `/targets` text row of a target: `name address health in_flight`.
pub fn target_row(b: &Backend, health: &str, in_flight: u64) -> String {
    format!("{} {} {health} {in_flight}", target_name(b), b.addr())
}

/// A targets file listing `targets`, with comments and a blank line.
pub fn targets_file(targets: &[&Backend]) -> TempFile {
    TempFile::with("targets", &targets_list(targets))
}

/// The text of a targets file listing `targets`.
pub fn targets_list(targets: &[&Backend]) -> String {
    let mut text = String::from("# targets for the tests\n\n");
    for t in targets {
        text.push_str(&format!("{}  # {}\n", target_name(t), t.name()));
    }
    text
}

/// Rewrites a targets file to list `targets`.
pub fn set_targets(file: &TempFile, targets: &[&Backend]) {
    file.write(&targets_list(targets));
}

/// Sends SIGHUP to the balancer (a reload of its targets file).
pub fn sighup(lb: &Balancer) {
    lb.signal(libc::SIGHUP);
}

/// Whether a log line reports the outcome of a reload (done or refused).
fn is_reload_outcome(line: &str) -> bool {
    line.contains("load-balancer: reload: ") && line.contains(" added [") || line.contains(REFUSED)
}

/// Sends SIGHUP and waits for the log line saying how the reload went;
/// returns that line.
pub fn sighup_reload(lb: &Balancer) -> String {
    let before = lb.log().iter().filter(|l| is_reload_outcome(l)).count();
    sighup(lb);
    let mut found = None;
    wait_for(WAIT, || {
        found = lb
            .log()
            .into_iter()
            .filter(|l| is_reload_outcome(l))
            .nth(before);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no reload outcome after SIGHUP in {:#?}", lb.log()))
}

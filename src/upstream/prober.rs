//! The prober: one task, on worker 0, that sends `GET <health-path>` to every
//! target each interval, all at once, each under a deadline, and writes the
//! result into the shared health bitmap. What an answer means (only a 2xx
//! passes) is [`CheckAnswer::passes`]; rise and fall are applied by
//! [`Targets::record_check`](crate::targets::Targets::record_check).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use monoio::net::TcpStream;

use crate::health::{CheckAnswer, CheckOutcome};
use crate::http::parse_response;
use crate::shared::Shared;
use crate::stream::{connect, deadline, read_more, write_all, IoFail};
use crate::targets::{reload, Change};

/// Largest health-check response head read.
const MAX_CHECK_HEAD: usize = 16 * 1024;

impl From<IoFail> for CheckAnswer {
    fn from(e: IoFail) -> CheckAnswer {
        match e {
            IoFail::Refused => CheckAnswer::Refused,
            IoFail::TimedOut => CheckAnswer::TimedOut,
            IoFail::Closed => CheckAnswer::Closed,
            IoFail::Error => CheckAnswer::Failed,
        }
    }
}

/// Checks one target on a fresh connection with `Connection: close`.
pub async fn check_one(addr: SocketAddr, host: &str, path: &str, limit: Duration) -> CheckAnswer {
    let exchange = async {
        let mut stream: TcpStream = connect(addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: load-balancer-health\r\nConnection: close\r\n\r\n"
        );
        write_all(&mut stream, request.into()).await?;
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            read_more(&mut stream, &mut buf, 512).await?;
            match parse_response(&buf, false) {
                Ok(Some(head)) if head.is_interim() => {
                    let _ = buf.split_to(head.head_len);
                }
                Ok(Some(head)) => return Ok(CheckAnswer::Status(head.status)),
                Ok(None) if buf.len() < MAX_CHECK_HEAD => {}
                _ => return Ok(CheckAnswer::Invalid),
            }
        }
    };
    match deadline(limit, exchange).await {
        Ok(check) => check,
        Err(e) => e.into(),
    }
}

/// Checks every target once, concurrently, and records the results (see
/// [`Targets::record_check`](crate::targets::Targets::record_check): rise
/// and fall, ejections), logging each change. The first round (`first`)
/// logs only the targets found degraded, with why: all start degraded, and
/// the start-up line lists them. A target that left the set (or whose slot
/// changed hands) while its check ran is left alone.
pub async fn run_round(shared: &'static Shared, first: bool) {
    check(shared, None, first).await
}

/// Checks the targets in `slots` now (targets that just joined).
pub async fn check_slots(shared: &'static Shared, slots: &[usize]) {
    check(shared, Some(slots), false).await
}

async fn check(shared: &'static Shared, only: Option<&[usize]>, first: bool) {
    let config = &shared.config;
    let targets = &shared.targets;
    let (_, slots) = targets.snapshot();
    let checks: Vec<_> = slots
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.is_none_or(|only| only.contains(i)))
        .filter_map(|(i, slot)| slot.map(|s| (i, s)))
        .map(|(i, slot)| {
            let check = monoio::spawn({
                let slot = slot.clone();
                async move {
                    let t = &slot.target;
                    check_one(t.addr, &t.name, &config.health_path, config.health_timeout).await
                }
            });
            (i, slot, check)
        })
        .collect();
    for (i, slot, handle) in checks {
        let result = handle.await;
        let name = &slot.target.name;
        match targets.record_check(i, slot.gen, result.passes()) {
            CheckOutcome::First(false) if first => {
                log!(warn, "health: {name} is degraded at start ({result})")
            }
            CheckOutcome::First(true) if !first => {
                log!(
                    info,
                    "health: {name} degraded -> healthy ({result}), its first check"
                )
            }
            CheckOutcome::First(false) if !first => {
                log!(
                    warn,
                    "health: {name} stays degraded after its first check ({result})"
                )
            }
            CheckOutcome::Changed(true) => {
                log!(
                    info,
                    "health: {name} degraded -> healthy ({result}){}",
                    in_a_row(config.rise)
                )
            }
            CheckOutcome::Changed(false) => {
                log!(
                    warn,
                    "health: {name} healthy -> degraded ({result}){}",
                    in_a_row(config.fall)
                )
            }
            _ => {}
        }
    }
}

/// How a change after `n` checks in a row is told in the log.
fn in_a_row(n: u32) -> String {
    if n > 1 {
        format!(", {n} checks in a row")
    } else {
        String::new()
    }
}

/// Runs a round every interval, forever.
pub async fn run(shared: &'static Shared) {
    loop {
        monoio::time::sleep(shared.config.health_interval).await;
        run_round(shared, false).await;
    }
}

/// Reloads `--targets-file` (SIGHUP or `POST /reload`, one at a time, see
/// `targets::reload`) and checks the targets that joined at once, so that
/// they go into rotation without waiting for the next round.
///
/// systemd hears `RELOADING=1` as it begins and `READY=1` as it ends, done
/// or refused.
pub async fn reload(shared: &'static Shared) -> Result<Change, String> {
    crate::systemd::reloading();
    let file = shared.config.targets_file.as_deref();
    let result = reload::run(&shared.targets, &shared.reloads, file).await;
    if let Ok(change) = &result {
        if !change.added.is_empty() {
            check_slots(shared, &change.added_slots).await;
        }
    }
    crate::systemd::reloaded();
    result
}

/// Reloads each time a SIGHUP is raised. Runs on worker 0 for the life of
/// the process, with or without `--admin`.
pub async fn reload_on_sighup(shared: &'static Shared) {
    let mut seen = 0;
    loop {
        seen = shared.events.reload.after(seen).await;
        let _ = reload(shared).await;
    }
}

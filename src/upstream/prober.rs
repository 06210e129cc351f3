//! The prober: one task, on worker 0, that sends `GET <health-path>` to every
//! target each interval, all at once, each under a deadline, and writes the
//! result into the shared health bitmap. Beside it, on worker 0 too: the
//! reloads of the targets file and the refresh of the targets' names, both
//! of which have the targets they add checked at once. What an answer means (only a 2xx
//! passes) is [`CheckAnswer::passes`]; rise and fall are applied by
//! [`Targets::record_check`](crate::targets::Targets::record_check).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;

use crate::blocking::off_thread;
use crate::health::{CheckAnswer, CheckOutcome};
use crate::http::parse_response;
use crate::proxy_protocol::V2_LOCAL;
use crate::shared::Shared;
use crate::stream::{connect, deadline, read_more, write_all, IoFail};
use crate::targets::refresh::Refresh;
use crate::targets::{reload, Change, Target};
use crate::tls::stream::Fault;
use crate::tls::BackendTls;
use crate::upstream::TargetStream;

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

/// Checks one target on a fresh connection with `Connection: close`. A
/// `proxy=v2` target expects a PROXY header on every connection: a check
/// sends the `LOCAL` one first (before any TLS), as HAProxy's checks do.
pub async fn check_one(
    target: &Target,
    tls: Option<&BackendTls>,
    path: &str,
    limit: Duration,
) -> CheckAnswer {
    let exchange = async {
        let mut tcp: TcpStream = connect(target.addr).await?;
        if target.proxy_v2 {
            write_all(&mut tcp, Bytes::from_static(&V2_LOCAL)).await?;
        }
        let mut stream = match (&target.tls, tls) {
            (Some(name), Some(tls)) => match tls.connect(tcp, name.clone()).await {
                Ok(stream) => TargetStream::Tls(Box::new(stream)),
                Err(Fault::Tls(e)) => return Ok(CheckAnswer::TlsFailed(tls_problem(&e))),
                Err(Fault::Io(e)) => return Err(e),
            },
            _ => TargetStream::Plain(tcp),
        };
        let host = target.authority();
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
                    let tls = config.backend_tls.as_deref();
                    check_one(t, tls, &config.health_path, config.health_timeout).await
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

/// Why a TLS handshake with a target failed, in a few words.
fn tls_problem(e: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::NotValidForName)
        | rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            "certificate not valid for the target's name"
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "certificate signed by an unknown authority (see --backend-ca)"
        }
        rustls::Error::InvalidCertificate(C::Expired)
        | rustls::Error::InvalidCertificate(C::ExpiredContext { .. }) => "certificate expired",
        rustls::Error::InvalidCertificate(C::Other(other))
            if other.to_string().contains("CaUsedAsEndEntity") =>
        {
            "certificate is a CA's (CA:TRUE), not a server's"
        }
        rustls::Error::InvalidCertificate(_) => "certificate refused",
        rustls::Error::AlertReceived(_) => "the target sent an alert",
        rustls::Error::NoApplicationProtocol => "the target does not speak http/1.1",
        _ => "protocol error",
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
    let result = reload_all(shared).await;
    crate::systemd::reloaded();
    result
}

/// The certificates first (a bad file refuses the whole reload, so that
/// nothing changes), then the targets file.
async fn reload_all(shared: &'static Shared) -> Result<Change, String> {
    let file = shared.config.targets_file.as_deref();
    if let Some(tls) = shared.config.tls.clone() {
        let read = off_thread("reload-certs", move || tls.reload())
            .map_err(|e| format!("cannot start a thread to read the certificates: {e}"))?
            .await;
        match read {
            Ok(()) => log!(info, "reload: certificates read again"),
            Err(e) => {
                log!(
                    error,
                    "reload refused, the running certificates and targets stay: {e}"
                );
                return Err(e);
            }
        }
        if file.is_none() {
            return Ok(Change::default());
        }
    }
    let resolver = shared.config.resolver;
    let change = reload::run(&shared.targets, &shared.reloads, file, resolver).await?;
    if !change.added.is_empty() {
        check_slots(shared, &change.added_slots).await;
    }
    Ok(change)
}

/// Looks the targets' names up again every `--resolve-interval` (see
/// `targets::refresh`: off this event loop, a failed lookup keeping the
/// last good set), and checks at once the targets their answers added, as
/// a reload does. Runs on worker 0 for the life of the process, unless the
/// interval is 0.
pub async fn refresh_names(shared: &'static Shared) {
    let mut refresh = Refresh::default();
    loop {
        monoio::time::sleep(shared.config.resolve_interval).await;
        let added = refresh.round(&shared.targets, shared.config.resolver).await;
        if !added.is_empty() {
            check_slots(shared, &added).await;
        }
    }
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

//! Where each worker's listeners come from: bound here (each worker its own
//! `SO_REUSEPORT` socket), or taken over from the balancer this one
//! upgrades (`--upgrade-from`), every taken socket given to a worker so
//! that none is left with connections nobody accepts.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use monoio::net::{ListenerOpts, TcpListener};

use crate::config::Config;
use crate::upgrade::{Handover, Kind, Offered};

/// A listener to open.
#[derive(Debug)]
pub enum Source {
    Bind(SocketAddr),
    Taken(OwnedFd),
}

/// One worker's listeners.
#[derive(Debug, Default)]
pub struct Plan {
    pub plain: Vec<Source>,
    pub tls: Vec<Source>,
    /// Worker 0's admin listener, if taken over (else bound as before).
    pub admin: Option<Source>,
}

/// Every worker's plan, and the addresses served. `claim` checks that a
/// port to bind is free (and picks one for port 0).
pub fn plan(
    config: &Config,
    workers: usize,
    handover: Option<&mut Handover>,
    claim: impl Fn(SocketAddr) -> Result<SocketAddr, String>,
) -> Result<(Vec<Plan>, SocketAddr, Option<SocketAddr>), String> {
    let mut plans: Vec<Plan> = (0..workers).map(|_| Plan::default()).collect();
    let taken = handover
        .map(|h| std::mem::take(&mut h.listeners))
        .unwrap_or_default();
    let (mut plain, mut tls, mut admin) = (Vec::new(), Vec::new(), None);
    for t in taken {
        match t.kind {
            Kind::Plain => plain.push(t),
            Kind::Tls => tls.push(t),
            Kind::Admin => admin = Some(t),
        }
    }
    let listen = match plain.first() {
        Some(t) => same_port("--port", config.listen, t.addr)?,
        None => claim(config.listen)?,
    };
    let tls_listen = match (config.tls_listen, tls.first()) {
        (Some(want), Some(t)) => Some(same_port("--tls-port", want, t.addr)?),
        (Some(want), None) => Some(claim(want)?),
        (None, Some(t)) => {
            return Err(format!(
                "--upgrade-from: the running balancer serves HTTPS on {}: give --tls-port \
                 and certificates",
                t.addr
            ))
        }
        (None, None) => None,
    };
    spread(&mut plans, plain, listen, |p| &mut p.plain);
    if let Some(tls_listen) = tls_listen {
        spread(&mut plans, tls, tls_listen, |p| &mut p.tls);
    }
    // The admin listener is kept only for the same address; else it closes
    // here and the admin port is bound as configured.
    if let (Some(t), Some(want)) = (admin, config.admin) {
        if want == t.addr || (want.port() == 0 && want.ip() == t.addr.ip()) {
            plans[0].admin = Some(Source::Taken(t.fd));
        }
    }
    Ok((plans, listen, tls_listen))
}

/// The taken address, when the flag asks for its port (or for port 0).
fn same_port(flag: &str, want: SocketAddr, taken: SocketAddr) -> Result<SocketAddr, String> {
    if want.port() == 0 || want.port() == taken.port() {
        Ok(taken)
    } else {
        Err(format!(
            "--upgrade-from: the running balancer listens on {taken}, not on the {flag} \
             asked ({})",
            want.port()
        ))
    }
}

/// Gives the taken sockets out to the workers in turn; a worker left
/// without one binds a socket of its own on `addr`.
fn spread(
    plans: &mut [Plan],
    taken: Vec<crate::upgrade::Taken>,
    addr: SocketAddr,
    side: impl Fn(&mut Plan) -> &mut Vec<Source>,
) {
    let workers = plans.len();
    for (i, t) in taken.into_iter().enumerate() {
        side(&mut plans[i % workers]).push(Source::Taken(t.fd));
    }
    for plan in plans.iter_mut() {
        let list = side(plan);
        if list.is_empty() {
            list.push(Source::Bind(addr));
        }
    }
}

/// Opens a listener: binds it (`SO_REUSEPORT`), or takes the socket over.
pub fn open(source: Source, opts: &ListenerOpts) -> std::io::Result<TcpListener> {
    match source {
        Source::Bind(addr) => TcpListener::bind_with_config(addr, opts),
        Source::Taken(fd) => {
            let std = std::net::TcpListener::from(fd);
            // The epoll driver needs it; io_uring does not mind.
            std.set_nonblocking(true)?;
            TcpListener::from_std(std)
        }
    }
}

/// A listener as this process offers it to its own successor.
pub fn offered(kind: Kind, listener: &TcpListener) -> Option<Offered> {
    Some(Offered {
        kind,
        addr: listener.local_addr().ok()?,
        fd: listener.as_raw_fd(),
    })
}

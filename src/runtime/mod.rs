//! Thread per core: one pinned monoio runtime per worker, each accepting on
//! its own SO_REUSEPORT listener. Worker 0 also runs the prober, whose first
//! round completes before any worker accepts.

use std::fmt::Write;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};
use monoio::time::TimeDriver;
use monoio::{FusionDriver, FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::admin;
use crate::config::Config;
use crate::fd_limit;
use crate::proxy;
use crate::shared::Shared;
use crate::signals;
use crate::upgrade::{self, Kind};
use crate::upstream::prober;
use crate::worker::Worker;

mod listeners;

use listeners::{Plan, Source};

/// A worker's runtime, on whichever driver the kernel allowed.
type Runtime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Listen backlog asked of the kernel (capped by `net.core.somaxconn`).
const BACKLOG: i32 = 65_535;

/// io_uring submission queue entries per worker.
const URING_ENTRIES: u32 = 4096;

/// Back-off bounds after an accept error such as EMFILE.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How long a port found in use is tried again before start-up gives up.
const PORT_RETRY: Duration = Duration::from_secs(1);

/// How often a draining worker looks whether its connections are done.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// How long start-up waits for workers to bind and for the first round.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// What a worker tells the main thread while starting.
enum Started {
    /// Its listeners are open (to be offered to a successor); `legacy`
    /// says it runs on epoll, not io_uring.
    Bound {
        legacy: bool,
        listeners: Vec<upgrade::Offered>,
    },
    /// The first health round is done (worker 0 only).
    Probed,
    /// The admin endpoint listens there (worker 0 only).
    Admin(upgrade::Offered),
    Failed(String),
}

/// Binds once without SO_REUSEPORT to learn whether another process holds
/// the port: with SO_REUSEPORT on, a second balancer would bind silently and
/// steal a share of the connections. Returns the address to use (the real
/// port when 0 was asked for).
///
/// A balancer that just exited can hold its port for a few milliseconds more
/// (io_uring releases the sockets of in-flight accepts after the process is
/// gone), so "in use" is retried for a short while before giving up: a
/// restart must not fail on its own predecessor.
fn claim_port(addr: SocketAddr) -> Result<SocketAddr, String> {
    let give_up = std::time::Instant::now() + PORT_RETRY;
    loop {
        match StdListener::bind(addr).and_then(|probe| probe.local_addr()) {
            Ok(local) => return Ok(local),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("cannot listen on {addr}: {e}")),
        }
    }
}

/// Starts the workers and serves until the process is killed.
pub fn run(config: Config) -> Result<(), String> {
    start(config)?.wait();
    Ok(())
}

/// A started balancer: its workers accept and serve until the process ends.
pub struct Running {
    /// Where it listens (the real port when 0 was asked for).
    pub listen: SocketAddr,
    /// Where the admin endpoint listens, with `--admin`.
    pub admin: Option<SocketAddr>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Blocks while the workers run: until a shutdown has drained them.
    pub fn wait(self) {
        for t in self.threads {
            let _ = t.join();
        }
        log!(info, "shutdown: done");
    }
}

/// Starts the workers, runs the first health round, logs the start-up line
/// and returns once every worker accepts.
pub fn start(mut config: Config) -> Result<Running, String> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let workers = config.workers.unwrap_or(cores.len()).max(1);
    // An upgrade takes the running balancer's listeners before anything
    // else: whatever fails after this, the old process keeps serving.
    let mut handover = match &config.upgrade_from {
        Some(path) => Some(upgrade::take(path)?),
        None => None,
    };
    let (plans, listen, tls_listen) =
        listeners::plan(&config, workers, handover.as_mut(), claim_port)?;
    config.tls_listen = tls_listen;
    crate::log::set_level(config.log_level);
    let lowered = fit_open_files(&mut config, workers);
    let shared =
        Shared::new(config, workers).map_err(|e| format!("cannot open the access log: {e}"))?;
    let shared: &'static Shared = Box::leak(Box::new(shared));
    // Before any other thread starts, so that they all inherit the mask.
    signals::block();
    signals::spawn_listener(&shared.events)
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;

    let (tx, rx) = mpsc::channel();
    let go = Arc::new(Barrier::new(workers + 1));
    let mut threads = Vec::with_capacity(workers);
    for (id, plan) in plans.into_iter().enumerate() {
        let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
        let (tx, go) = (tx.clone(), go.clone());
        let thread = std::thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || worker_main(id, workers, core, plan, shared, tx, go))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        threads.push(thread);
    }
    drop(tx);

    let mut legacy = 0;
    let mut bound = 0;
    let mut probed = false;
    let mut admin = None;
    let mut offered = Vec::new();
    while bound < workers || !probed || (shared.config.admin.is_some() && admin.is_none()) {
        match rx.recv_timeout(START_DEADLINE) {
            Ok(Started::Bound {
                legacy: l,
                listeners,
            }) => {
                bound += 1;
                legacy += usize::from(l);
                offered.extend(listeners);
            }
            Ok(Started::Probed) => probed = true,
            Ok(Started::Admin(listener)) => {
                admin = Some(listener.addr);
                offered.push(listener);
            }
            Ok(Started::Failed(e)) => return Err(e),
            Err(_) => return Err("workers did not start in time".into()),
        }
    }
    let mut line = startup_line(listen, workers, legacy, shared);
    if let Some(tls_listen) = shared.config.tls_listen {
        let _ = write!(line, "; https on {tls_listen}");
    }
    if let Some(trust) = backend_trust(shared) {
        let _ = write!(line, "; {trust}");
    }
    if let Some(note) = lowered {
        let _ = write!(line, "; {note}");
    }
    if let Some(addr) = admin {
        let _ = write!(line, "; admin on {addr}");
    }
    if let Some(path) = &shared.config.upgrade_from {
        let _ = write!(line, "; listeners taken over from {}", path.display());
    }
    // A fresh start refuses an upgrade socket another balancer offers on;
    // a successor replaces the one it took over from.
    if let (Some(path), None) = (&shared.config.upgrade_socket, &handover) {
        upgrade::offer(path, offered.clone(), &shared.events, false)?;
    }
    log!(notice, "{line}");
    go.wait();
    if let Some(handover) = handover.take() {
        // Every worker accepts: the old process may stop.
        if let Err(e) = handover.ready() {
            log!(warn, "{e}");
        }
        if let Some(path) = &shared.config.upgrade_socket {
            if let Err(e) = upgrade::offer(path, offered, &shared.events, true) {
                log!(error, "{e}; this process cannot be upgraded in turn");
            }
        }
    }
    crate::systemd::ready(&line);
    Ok(Running {
        listen,
        admin,
        threads,
    })
}

/// What `https://` targets' certificates are checked against, when the
/// operator has some (or said how), for the start-up line.
fn backend_trust(shared: &Shared) -> Option<&str> {
    let config = &shared.config;
    let (_, slots) = shared.targets.snapshot();
    let any_tls = slots.iter().flatten().any(|s| s.target.tls.is_some());
    let asked = config.backend_insecure || config.backend_ca.is_some();
    match &config.backend_tls {
        Some(tls) if any_tls || asked => Some(&tls.trust),
        _ => None,
    }
}

/// Raises the open file limit to its hard limit, and lowers
/// `--max-connections` when connections and pools could still need more
/// descriptors than that; says so, for the start-up line.
fn fit_open_files(config: &mut Config, workers: usize) -> Option<String> {
    let open_files = match fd_limit::raise() {
        Ok(n) => n,
        Err(e) => return Some(format!("cannot read the open file limit: {e}")),
    };
    let targets = config.backends.len() + config.file_targets.len();
    let pooled = (workers * config.pool_size * targets) as u64;
    let cap = fd_limit::fit(config.max_connections, open_files, pooled);
    if cap == config.max_connections {
        return None;
    }
    config.max_connections = cap;
    Some(format!(
        "--max-connections lowered to {cap} to fit the open file limit ({open_files})"
    ))
}

fn startup_line(listen: SocketAddr, workers: usize, legacy: usize, shared: &Shared) -> String {
    let driver = match legacy {
        0 => "io_uring".to_string(),
        n if n == workers => "epoll".to_string(),
        n => format!("io_uring on {}, epoll on {n}", workers - n),
    };
    let (_, slots) = shared.targets.snapshot();
    let targets: Vec<String> = slots
        .iter()
        .enumerate()
        .filter_map(|(i, slot)| slot.as_ref().map(|s| (i, s)))
        .map(|(i, slot)| {
            let state = if shared.health().is_healthy(i) {
                "healthy"
            } else {
                "degraded"
            };
            format!("{} {state}", slot.target.name)
        })
        .collect();
    format!(
        "listening on {listen} with {workers} workers ({driver}); {} targets ({} healthy): {}",
        targets.len(),
        shared.health().healthy_count(),
        targets.join(", ")
    )
}

/// A worker's runtime: io_uring where the kernel allows it, else epoll.
///
/// With `coop_taskrun` the ring is set up with IORING_SETUP_COOP_TASKRUN
/// (Linux 5.19+): completions are run when the worker next enters the
/// kernel instead of interrupting it. Without it, a completion arriving
/// while the sender on the other core still holds the socket lock makes
/// the worker spin on that lock: on a 2-core VM, one worker under wrk went
/// from about 16.5 to about 11.5 µs of CPU per request with the flag.
/// Kernels without the flag refuse the ring, and the caller builds it again
/// without.
fn build_runtime(coop_taskrun: bool) -> std::io::Result<Runtime> {
    let mut ring = io_uring::IoUring::builder();
    if coop_taskrun {
        ring.setup_coop_taskrun();
    }
    RuntimeBuilder::<FusionDriver>::new()
        .with_entries(URING_ENTRIES)
        .uring_builder(ring)
        .enable_timer()
        .build()
}

fn worker_main(
    id: usize,
    workers: usize,
    core: Option<core_affinity::CoreId>,
    plan: Plan,
    shared: &'static Shared,
    tx: mpsc::Sender<Started>,
    go: Arc<Barrier>,
) {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
    let runtime = build_runtime(true).or_else(|_| build_runtime(false));
    let mut runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            let _ = tx.send(Started::Failed(format!(
                "worker {id}: cannot build runtime: {e}"
            )));
            return;
        }
    };
    runtime.block_on(async move {
        let opts = ListenerOpts::new().reuse_port(true).backlog(BACKLOG);
        let sides = [(Port::Plain, plan.plain), (Port::Tls, plan.tls)];
        let mut listeners = Vec::new();
        for (port, sources) in sides {
            for source in sources {
                let what = describe(&source, port);
                match listeners::open(source, &opts) {
                    Ok(l) => listeners.push((port, l)),
                    Err(e) => {
                        let _ = tx.send(Started::Failed(format!("cannot listen on {what}: {e}")));
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Started::Bound {
            legacy: monoio::utils::is_legacy(),
            listeners: listeners
                .iter()
                .filter_map(|(port, l)| listeners::offered(port.kind(), l))
                .collect(),
        });
        if id == 0 {
            if let Some(addr) = shared.config.admin {
                let opts = ListenerOpts::new().reuse_port(false);
                let source = plan.admin.unwrap_or(Source::Bind(addr));
                match listeners::open(source, &opts) {
                    Ok(admin) => {
                        let Some(offered) = listeners::offered(Kind::Admin, &admin) else {
                            let _ = tx.send(Started::Failed(format!(
                                "cannot listen on {addr} (--admin): no local address"
                            )));
                            return;
                        };
                        let _ = tx.send(Started::Admin(offered));
                        monoio::spawn(admin::serve(admin, shared));
                    }
                    Err(e) => {
                        let _ = tx.send(Started::Failed(format!(
                            "cannot listen on {addr} (--admin): {e}"
                        )));
                        return;
                    }
                }
            }
            prober::run_round(shared, true).await;
            let _ = tx.send(Started::Probed);
            monoio::spawn(prober::run(shared));
            monoio::spawn(prober::reload_on_sighup(shared));
            monoio::spawn(upgrade::successor::on_signal(shared));
            if !shared.config.resolve_interval.is_zero() {
                monoio::spawn(prober::refresh_names(shared));
            }
        }
        drop(tx);
        // Blocks this thread before it serves anything: nothing else runs here yet.
        go.wait();
        let worker = Rc::new(Worker::new(id, workers, shared));
        monoio::spawn(worker.clone().housekeeping());
        monoio::spawn(watch_shutdown(worker.clone()));
        // One accept loop per listener (a worker holds more than one when
        // it took over more sockets than there are workers), each closing
        // its listener when the drain begins.
        let loops: Vec<_> = listeners
            .into_iter()
            .map(|(port, listener)| monoio::spawn(accept_loop(listener, worker.clone(), port)))
            .collect();
        for accepting in loops {
            accepting.await;
        }
        drain(&worker).await;
    });
}

/// A listener to open, for an error message.
fn describe(source: &Source, port: Port) -> String {
    let flag = match port {
        Port::Plain => "--port",
        Port::Tls => "--tls-port",
    };
    match source {
        Source::Bind(addr) => format!("{addr} ({flag})"),
        Source::Taken(_) => format!("a socket taken over ({flag})"),
    }
}

/// Waits for a shutdown, then starts draining this worker.
async fn watch_shutdown(worker: Rc<Worker>) {
    worker.shared.events.shutdown.after(0).await;
    worker.begin_drain();
}

/// Lets this worker's client connections finish what they are doing, for at
/// most `--drain-timeout`; whatever is left is closed when the runtime ends.
async fn drain(worker: &Worker) {
    drain_connections(worker).await;
    if let Some(log) = worker.access_log() {
        log.flush();
    }
}

async fn drain_connections(worker: &Worker) {
    let deadline = Instant::now() + worker.config().drain_timeout;
    while worker.open_connections() > 0 && Instant::now() < deadline {
        monoio::time::sleep(DRAIN_POLL).await;
    }
    if worker.open_connections() > 0 {
        log!(
            warn,
            "worker {}: drain timeout, closing {} connections",
            worker.id,
            worker.open_connections()
        );
    }
}

/// Which port a listener serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Port {
    Plain,
    /// `--tls-port`: a handshake comes first.
    Tls,
}

impl Port {
    fn kind(self) -> Kind {
        match self {
            Port::Plain => Kind::Plain,
            Port::Tls => Kind::Tls,
        }
    }
}

/// Accepts until the worker drains. The accept is cancelled, never dropped
/// mid-flight (a dropped accept can leak its socket: see the monoio notes).
/// Each accepted connection runs in a task of its own, its busy spells in
/// the loop's slots.
async fn accept_loop(listener: TcpListener, worker: Rc<Worker>, port: Port) {
    let plain = proxy::plain_slots();
    let tls = proxy::tls_slots();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    while !worker.draining() {
        match listener.cancelable_accept(worker.accept_handle()).await {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let _ = stream.set_nodelay(true);
                match (worker.admit(), port) {
                    (Some(admitted), Port::Plain) => {
                        monoio::spawn(proxy::serve(plain.clone(), admitted, stream, peer));
                    }
                    (Some(admitted), Port::Tls) => {
                        monoio::spawn(proxy::serve_tls(tls.clone(), admitted, stream, peer));
                    }
                    (None, Port::Plain) => {
                        monoio::spawn(proxy::refuse(stream));
                    }
                    // No handshake for a connection over the limit: closed.
                    (None, Port::Tls) => drop(stream),
                }
            }
            Err(_) if worker.draining() => return,
            Err(e) => {
                if backoff == ACCEPT_BACKOFF_MIN {
                    log!(
                        error,
                        "worker {}: accept failed: {e}; backing off",
                        worker.id
                    );
                }
                monoio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

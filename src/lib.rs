//! load-balancer: an HTTP/1.1 load balancer, thread-per-core on io_uring.
//!
//! A tour of the modules, from the edges in:
//!
//! - [`config`]: the command line (lexopt) turned into a validated
//!   [`config::Config`], through one table of flags that `--help` is also
//!   printed from, and every default in one file; every mistake is one line
//!   and exit status 2.
//! - [`runtime`]: one thread per core, each pinned with `core_affinity` and
//!   running its own monoio runtime (io_uring, or epoll where io_uring is
//!   refused), each accepting on its own `SO_REUSEPORT` listener (bound, or
//!   taken over in an upgrade).
//! - [`upgrade`]: upgrades without a dropped connection: the listening
//!   sockets handed to a successor over a Unix socket (`SCM_RIGHTS`).
//! - [`fd_limit`]: the open file limit raised at start, and the connection
//!   cap fitted under it.
//! - [`metrics`]: per-worker counters, summed and rendered for `/metrics`.
//! - [`signals`]: SIGTERM/SIGINT start a graceful shutdown, SIGHUP a reload.
//! - [`proxy_protocol`]: the PROXY protocol header (v1, v2) an L4 balancer
//!   in front sends first (`--proxy-protocol`), and the v2 one sent on to
//!   `proxy=v2` targets. Pure code: no IO.
//! - [`dns`]: DNS messages, the little of them that looking up a target's
//!   addresses with `--resolver` needs: an A or AAAA query, and its answer
//!   checked and read. Pure code: no IO.
//! - [`systemd`]: `READY=1`, `RELOADING=1` and `STOPPING=1` to
//!   `$NOTIFY_SOCKET`, for a `Type=notify` unit.
//! - [`shared`]: what all workers share for the life of the process
//!   (config, targets and their bitmaps, events, counters, log sink).
//! - [`worker`]: what a worker owns, behind narrow doors: the request
//!   path's (pick a target, `record` what an attempt came to, ask for a
//!   retry, take and give back pooled connections), its view of the
//!   targets, admission and drain, its coarse clock.
//! - [`tls`]: HTTPS on `--tls-port` and to `https://` targets: rustls
//!   (aws-lc-rs) fed through monoio's owned buffers, certificates by SNI and
//!   reloaded, the handshake and why one failed, the targets' verification.
//! - [`proxy`]: the monoio driver of one client connection: read a head,
//!   take its body, perform what the [`exchange`] machine asks (connect,
//!   send, stream, relay, answer), keep-alive, pipelining, parking, tunnels;
//!   each connection one small task for its life (a hand-written future of
//!   about 300 bytes while parked), its busy spells run in reused slots, so
//!   that parking and waking allocate nothing.
//! - [`splice`]: `--splice`: the rest of a large response body moved from
//!   target to client by splice(2) through pooled pipes.
//! - [`exchange`]: one request's life across its attempts as a plain state
//!   machine: events in, actions out; every retry, replay, outcome and
//!   answer rule in one file, tested with events alone. Pure code: no IO,
//!   no clock.
//! - [`targets`]: the set of targets in numbered slots, which a reload of
//!   `--targets-file` changes while the workers run, and the shared bitmaps
//!   that health checks and ejections write (as the [`health`] rules say);
//!   reloads (SIGHUP or `POST /reload`), one at a time, reading the file on
//!   a thread of their own; names, each standing for its every address,
//!   looked up (by the system, or over UDP with `--resolver`) and looked up
//!   again every `--resolve-interval` on threads of their own, each answer
//!   applied to its name's targets as a reload applies the file.
//! - [`upstream`]: per-worker pools of keep-alive target connections, and
//!   the prober that writes the health bitmap (and checks at once the
//!   targets a reload or a name's new answer added), beside the task that
//!   refreshes the names.
//! - [`access_log`]: one line per request, buffered per worker.
//! - [`admin`]: the admin endpoint: `/metrics`, `/targets`, `POST /reload`.
//! - [`health`]: every health rule, once: what a check's answer means, rise
//!   and fall, the live-traffic degrade, passive ejection (failures in a
//!   row, doubling, forgiveness), slow start and the fallback. Plain state
//!   and pure functions: no IO, no clock. Its module docs are where to
//!   learn them.
//! - [`balance`]: the shared atomic health bitmap; the algorithms that pick
//!   over it (round robin, smooth weighted, least connections, p2c over
//!   peak-EWMA latency), each one file and one arm of
//!   [`balance::Algorithm`], and the per-worker picker that applies them
//!   with the fallback and slow start. Pure code: no IO.
//! - [`retry`]: the per-worker retry budget and the backoff between retries.
//! - [`http`]: sans-IO HTTP/1.1: heads parsed in place with httparse into
//!   offsets, body framing (length, chunked, until close), parse errors and
//!   reason phrases. Pure code: tested with byte slices.
//! - [`buffers`]: per-worker free lists of read buffers.
//! - [`blocking`]: blocking work (a file read, a name lookup) run on a
//!   thread of its own and awaited without blocking a worker's event loop.
//! - [`stream`]: socket helpers over monoio's owned buffers: appending
//!   reads, gathered writes, deadlines, the liveness peek; and `Io`, the
//!   operations the driver needs of a stream, which TCP and TLS both give,
//!   so that the driver is generic over the client's stream (plain or TLS)
//!   and a target's connection is either behind one type.
//! - [`mod@log`]: time-stamped lines on stderr, from cold paths only.
//!
//! `http`, `balance`, `health`, `exchange`, `proxy_protocol` and `dns`
//! forbid `unsafe` and never name
//! monoio, `std::net` or the clock; and no module imports one that imports
//! it back (`tests/sans_io.rs` fails on either).
//!
//! The hot path allocates nothing per request: heads are forwarded as slices
//! of the buffer they were read into, and bodies stream through as raw bytes.

#[macro_use]
pub mod log;

pub mod access_log;
pub mod admin;
pub mod balance;
pub mod blocking;
pub mod buffers;
pub mod config;
pub mod dns;
pub mod exchange;
pub mod fd_limit;
pub mod health;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod proxy_protocol;
pub mod retry;
pub mod runtime;
pub mod shared;
pub mod signals;
pub mod splice;
pub mod stream;
pub mod systemd;
pub mod targets;
pub mod tls;
pub mod upgrade;
pub mod upstream;
pub mod worker;

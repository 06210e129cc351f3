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
//!   refused), each accepting on its own `SO_REUSEPORT` listener.
//! - [`fd_limit`]: the open file limit raised at start, and the connection
//!   cap fitted under it.
//! - [`metrics`]: per-worker counters, summed and rendered for `/metrics`.
//! - [`signals`]: SIGTERM/SIGINT start a graceful shutdown, SIGHUP a reload.
//! - [`worker`]: what a worker owns (picker, retry budget, connection pool,
//!   spare buffers) and what all workers share (config, targets, bitmaps).
//! - [`proxy`]: one client connection: read a head, take its body, forward
//!   it with retries, relay the response; keep-alive and pipelining.
//! - [`targets`]: the set of targets in numbered slots, which a reload of
//!   `--targets-file` changes while the workers run, and the shared bitmaps
//!   that health checks and ejections write (as the [`health`] rules say);
//!   reloads (SIGHUP or `POST /reload`), one at a time, reading the file on
//!   a thread of their own.
//! - [`upstream`]: per-worker pools of keep-alive target connections, and
//!   the prober that writes the health bitmap.
//! - [`access_log`]: one line per request, buffered per worker.
//! - [`admin`]: the admin endpoint: `/metrics`, `/targets`, `POST /reload`.
//! - [`health`]: every health rule, once: what a check's answer means, rise
//!   and fall, the live-traffic degrade, passive ejection (failures in a
//!   row, doubling, forgiveness), slow start and the fallback. Plain state
//!   and pure functions: no IO, no clock. Its module docs are where to
//!   learn them.
//! - [`balance`]: the shared atomic health bitmap; the algorithms that pick
//!   over it (round robin, smooth weighted, least connections, p2c over
//!   peak-EWMA latency) and the per-worker picker that applies them with
//!   the fallback and slow start. Pure code: no IO.
//! - [`retry`]: the per-worker retry budget and the backoff between retries.
//! - [`http`]: sans-IO HTTP/1.1: heads parsed in place with httparse into
//!   offsets, body framing (length, chunked, until close), the errors the
//!   balancer answers itself. Pure code: tested with byte slices.
//! - [`buffers`]: per-worker free lists of read buffers.
//! - [`blocking`]: blocking work (a file read, a name lookup) run on a
//!   thread of its own and awaited without blocking a worker's event loop.
//! - [`stream`]: socket helpers over monoio's owned buffers: appending
//!   reads, gathered writes, deadlines, the liveness peek.
//! - [`mod@log`]: time-stamped lines on stderr, from cold paths only.
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
pub mod exchange;
pub mod fd_limit;
pub mod health;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod retry;
pub mod runtime;
pub mod shared;
pub mod signals;
pub mod stream;
pub mod targets;
pub mod upstream;
pub mod worker;

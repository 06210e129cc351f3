//! The health rules: how the balancer decides which targets are in
//! rotation, all of them here, as plain state and pure functions. No IO, no
//! clock (times come in as arguments), no atomics: the prober, the workers
//! and [`Targets`](crate::targets::Targets) feed events in and write the
//! bits they are told to.
//!
//! Every target has three bits, one in each of the shared bitmaps that
//! picks read: *in rotation* (`Targets::health`), *fallback*
//! (`Targets::passed`) and *slow start* (`Targets::slow_start`). The rules:
//!
//! - **Health checks** ([`CheckAnswer`]): the prober sends
//!   `GET --health-path` to every target each `--health-interval`. A 2xx
//!   answer passes; any other status, a refused or reset connection, no
//!   answer within `--health-timeout`, or an invalid one fails.
//! - **Rise and fall** ([`RiseFall`]): checks move a target between healthy
//!   and degraded only after `--rise` passing or `--fall` failing checks in
//!   a row, so that a flapping target keeps its state. A target's first
//!   check decides at once.
//! - **What a request's attempt means** ([`Outcome`]): every attempt on a
//!   target ends in one outcome (its status, or how it failed), which says
//!   whether it counts towards ejection, takes the target out at once, and
//!   closes its pooled connections. The exchange machine
//!   (`crate::exchange`) decides which outcome an attempt came to; the
//!   worker applies it (`Worker::record`).
//! - **Live-traffic degrade** ([`Outcome::degrades`]): a worker that sees a
//!   target answer 500, refuse a connect or not accept one in time clears
//!   its bit at once,
//!   without waiting for a check. The next check notices the clear bit
//!   ([`HealthRecord::record_check`]) and drops the healthy verdict: the
//!   target returns only after `--rise` passing checks from then on.
//! - **Passive ejection** ([`Outcome::is_failure`], [`FailureStreaks`],
//!   [`Ejections`]): each worker
//!   counts failures in a row per target on live traffic (a 5xx; a
//!   refused, failed or timed-out connect; no answer in time; an invalid
//!   answer; a connection broken mid-answer); any answer below 500 ends the
//!   streak. At `--eject-after` (0: never) the target is
//!   ejected, whatever its checks say, and that worker's count starts
//!   again. The first ejection lasts `--eject-time`; each ejection in a row
//!   doubles it, up to [`Rules::eject_max`] (5 minutes, or `--eject-time`
//!   when longer).
//!   One step of "in a row" is forgiven for each `--eject-time` that passes
//!   between the end of an ejection and the next. A target already ejected
//!   is not ejected again (another worker's streak changes nothing). When
//!   the time is up the target returns if its checks say healthy (they go
//!   on while it is out), and otherwise stays degraded until they pass
//!   `--rise` times.
//! - **Slow start** ([`Rules::slow_start_share`]): with `--slow-start`, a
//!   target that returns (degraded or ejected, then healthy) or that a
//!   reload added gets a share of its traffic growing linearly from 0 to
//!   full over that time; one found healthy at start-up gets its full share
//!   at once. How a share weighs in a pick is the picker's business
//!   ([`Picker`](crate::balance::Picker)).
//! - **Fallback**: a target's fallback bit is its last check's answer,
//!   whatever rise, fall and ejection say ([`AfterCheck::fallback`]). When no
//!   target is in rotation, picks go to the fallback targets, so that
//!   ejections and live-traffic failures can thin the rotation but never
//!   empty it; only the checks can.
//!
//! What a target is shown as ([`Standing`]): ejected while an ejection
//! lasts, otherwise healthy or degraded as its bit says.
//!
//! Where the rules are applied (the IO side, which decides nothing):
//!
//! - the prober (`upstream::prober`) turns each answer into a
//!   [`CheckAnswer`] and hands its verdict to `Targets::record_check`;
//! - a worker records each attempt's [`Outcome`] (`Worker::record`): it
//!   feeds its [`FailureStreaks`] and, when the streak says so, calls
//!   `Targets::eject`; it clears the bit itself for the live-traffic
//!   degrade;
//! - worker 0's housekeeping calls `Targets::end_ejections` and
//!   `Targets::end_slow_starts` every tick;
//! - `Targets` (`targets/standing.rs`) keeps a [`HealthRecord`] per slot
//!   under a lock and writes the bitmaps as each [`AfterCheck`],
//!   [`Rotation`] and [`EjectionOver`] says.

#![forbid(unsafe_code)]

mod check;
mod ejection;
mod outcome;
mod record;
mod rise_fall;
mod rules;
mod slow_start;
mod streak;

pub use check::CheckAnswer;
pub use ejection::Ejections;
pub use outcome::Outcome;
pub use record::{AfterCheck, CheckOutcome, EjectionOver, HealthRecord, Rotation, Standing};
pub use rise_fall::RiseFall;
pub use rules::Rules;
pub use streak::FailureStreaks;

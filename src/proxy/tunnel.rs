//! A two-way byte tunnel, opened after a target answers `101 Switching
//! Protocols` (WebSocket and other upgrades). Each direction is its own
//! read-then-write loop and the two run side by side in the connection's
//! task, so a peer that does not read holds up only the bytes going to it.
//! A side that ends its stream (FIN) has that passed on as a half-close and
//! the other direction carries on. An error on either side, a write that
//! makes no progress for `--idle-timeout`, or no traffic either way for
//! that long closes both sides at once.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::stream::{Halves, IoFail, ReadHalf, WriteHalf};
use bytes::BytesMut;

/// Reads in a tunnel ask for at least this much room: one buffer of it per
/// direction, for the life of the tunnel.
const TUNNEL_READ: usize = 16 * 1024;

/// Runs the tunnel until both directions have ended, either side fails,
/// a write stalls for `idle`, or nothing moves either way for `idle`.
/// `pending` holds what the client sent after its request, which goes to
/// the target first.
pub async fn run<C: Halves, T: Halves>(client: C, pending: BytesMut, target: T, idle: Duration) {
    let (mut from_client, mut to_client) = client.into_halves();
    let (mut from_target, mut to_target) = target.into_halves();
    let traffic = Traffic {
        last: Cell::new(Instant::now()),
        idle,
    };
    let up = pump(&mut from_client, &mut to_target, pending, &traffic);
    let down = pump(&mut from_target, &mut to_client, BytesMut::new(), &traffic);
    // `try_join!` ends at the first error, dropping the other direction.
    monoio::select! {
        _ = async { monoio::try_join!(up, down) } => {},
        _ = traffic.quiet() => {},
    }
    // The halves drop here, which closes both connections. A read still
    // pending in a direction that did not end was dropped above: it may
    // have taken bytes with it (see the monoio notes), which is why its
    // stream is never used again.
}

/// When bytes last moved, in either direction.
struct Traffic {
    last: Cell<Instant>,
    idle: Duration,
}

impl Traffic {
    /// Bytes were read or written.
    fn moved(&self) {
        self.last.set(Instant::now());
    }

    /// Finishes once nothing has moved either way for `idle`.
    async fn quiet(&self) {
        loop {
            let until = self.last.get() + self.idle;
            if Instant::now() >= until {
                return;
            }
            monoio::time::sleep_until(until.into()).await;
        }
    }
}

/// One direction: writes `first`, then reads from `from` and writes to
/// `to` until `from` ends its stream, which is passed on by shutting down
/// the writing half of `to`. One buffer serves every read.
async fn pump(
    from: &mut impl ReadHalf,
    to: &mut impl WriteHalf,
    first: BytesMut,
    traffic: &Traffic,
) -> Result<(), IoFail> {
    if !first.is_empty() {
        // Its buffer may be large (it held a request body): dropped once
        // written rather than kept for reads.
        write_all(to, first, traffic).await?;
    }
    let mut buf = BytesMut::with_capacity(TUNNEL_READ);
    loop {
        // No deadline of its own: a side with nothing to say is not a
        // stall, and `Traffic::quiet` ends a tunnel idle both ways.
        let (res, back) = from.read_some(buf).await;
        buf = back;
        match res {
            Ok(0) => {
                // Half-close: the other direction carries on. A failure here
                // means the peer behind `to` is gone, which the other
                // direction's read will find.
                to.shutdown().await;
                return Ok(());
            }
            Ok(_) => traffic.moved(),
            Err(e) => return Err(e.into()),
        }
        buf = write_all(to, buf, traffic).await?;
        buf.clear();
    }
}

/// Writes all of `buf` and gives it back. The write must make progress
/// within `idle`: a peer that stops reading is a stall, not a quiet side.
/// A write cut short by the deadline is dropped, and the tunnel closes.
async fn write_all(
    to: &mut impl WriteHalf,
    buf: BytesMut,
    traffic: &Traffic,
) -> Result<BytesMut, IoFail> {
    let Ok((res, buf)) = monoio::time::timeout(traffic.idle, to.write_all(buf)).await else {
        return Err(IoFail::TimedOut);
    };
    res?;
    traffic.moved();
    Ok(buf)
}

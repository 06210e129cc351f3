//! Parked connections: clients idle for longer than `PARK_AFTER`, between
//! requests or before their first. Their busy spell has ended, its slot and
//! their read buffer are back with the worker; the connection's task waits
//! for the next request with a one-byte read (into a pooled one-byte
//! buffer), which the worker cancels when the idle time (or, before the
//! first request, the header timeout) is up.

use std::time::Duration;

use bytes::BytesMut;

use super::Session;
use crate::stream::ClientStream;

/// Waits, holding no buffer but a byte, for the next request on an idle
/// connection, for at most `wait` more; returns the session and a read
/// buffer holding the request's first byte. `None` when the client closed
/// the connection, it stayed idle too long, or the worker drains.
pub async fn wait<S: ClientStream>(
    mut session: Session<S>,
    wait: Duration,
) -> Option<(Session<S>, BytesMut)> {
    let worker = session.admitted.worker().clone();
    if worker.draining() {
        // Parked as the drain began (which cancelled the others): close.
        return None;
    }
    let until = worker.coarse_now() + wait;
    loop {
        let left = until.saturating_duration_since(worker.coarse_now());
        let expiry = worker.idle_expiry(left);
        let (res, byte) = session
            .stream
            .read_cancelable(worker.byte_buffers.take(), expiry)
            .await;
        match res {
            Ok(n) if n > 0 => {
                let mut buf = worker.client_buffers.take();
                buf.extend_from_slice(&byte);
                worker.byte_buffers.give(byte);
                return Some((session, buf));
            }
            // A wait longer than the worker's expiries reach: on.
            Err(e)
                if e.raw_os_error() == Some(libc::ECANCELED)
                    && worker.coarse_now() < until
                    && !worker.draining() =>
            {
                worker.byte_buffers.give(byte);
            }
            _ => return None,
        }
    }
}

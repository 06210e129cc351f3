//! Parked connections: clients idle for longer than `PARK_AFTER`, between
//! requests or before their first. Their big task has ended and their read
//! buffer is back in the worker's pool; a small task waits for the next
//! request with a one-byte read, which the worker cancels when the idle
//! time (or, before the first request, the header timeout) is up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::stream::ClientStream;

use super::private::Private;
use super::serve_from;
use crate::worker::Admitted;

/// Waits, at a cost of a few hundred bytes, for the next request on an idle
/// connection, then serves it in a fresh task. Closes the connection when the
/// client closes it or stays idle for `wait` more. `first_head_by` carries
/// the deadline of a first request that has not come yet.
pub async fn parked<S: ClientStream>(
    admitted: Admitted,
    mut stream: S,
    peer: SocketAddr,
    wait: Duration,
    first_head_by: Option<Instant>,
    private: Private,
) {
    let expiry = {
        let worker = admitted.worker();
        if worker.draining() {
            // Parked as the drain began (which cancelled the others): close.
            return;
        }
        worker.idle_expiry(wait)
    };
    let (res, byte) = stream
        .read_cancelable(BytesMut::with_capacity(1), expiry)
        .await;
    if let (Ok(1), Some(&first)) = (res, byte.first()) {
        let mut buf = admitted.worker().client_buffers.take();
        buf.extend_from_slice(&[first]);
        monoio::spawn(serve_from(
            admitted,
            stream,
            peer,
            buf,
            first_head_by,
            private,
        ));
    }
}

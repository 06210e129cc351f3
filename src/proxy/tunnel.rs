//! A two-way byte tunnel, opened after a target answers `101 Switching
//! Protocols` (WebSocket and other upgrades): bytes go both ways as they
//! come until either side closes, then both are closed together. No traffic
//! either way for `--idle-timeout` closes it too.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::net::TcpStream;

use crate::stream::{deadline, read_more, write_all, IoFail};

/// Reads in a tunnel ask for this much room.
const TUNNEL_READ: usize = 16 * 1024;

/// Which side has bytes to move.
enum Side {
    Client,
    Target,
    Idle,
}

/// Runs the tunnel until either side closes or it stays idle for `idle`.
/// `pending` holds what the client sent after its request, which goes to
/// the target first.
pub async fn run(mut client: TcpStream, pending: BytesMut, mut target: TcpStream, idle: Duration) {
    if !pending.is_empty()
        && deadline(idle, write_all(&mut target, pending.freeze()))
            .await
            .is_err()
    {
        return;
    }
    let mut buf = BytesMut::with_capacity(TUNNEL_READ);
    loop {
        // Wait for either side with readiness polls: unlike a read, a poll
        // that loses the race or times out loses no bytes.
        let ready = monoio::select! {
            r = client.readable(false) => if r.is_ok() { Side::Client } else { return },
            r = target.readable(false) => if r.is_ok() { Side::Target } else { return },
            _ = monoio::time::sleep(idle) => Side::Idle,
        };
        let (from, to) = match ready {
            Side::Client => (&mut client, &mut target),
            Side::Target => (&mut target, &mut client),
            Side::Idle => return,
        };
        if copy_once(from, to, &mut buf, idle).await.is_err() {
            return;
        }
    }
}

/// Moves what `from` has to `to`.
async fn copy_once(
    from: &mut TcpStream,
    to: &mut TcpStream,
    buf: &mut BytesMut,
    idle: Duration,
) -> Result<(), IoFail> {
    buf.clear();
    deadline(idle, read_more(from, buf, TUNNEL_READ)).await?;
    let piece: Bytes = buf.split().freeze();
    deadline(idle, write_all(to, piece)).await
}

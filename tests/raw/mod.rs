//! A target and a client that allocate nothing per request once connected:
//! fixed buffers, a fixed answer. Shared by the allocation test and the
//! end-to-end benchmark (`benches/e2e.rs` includes this file by path).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// What the target answers to every request.
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nxxxxxxxxxxxxxxxxxxxx";

/// What the client sends.
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// A target that answers every request head on a connection with
/// `RESPONSE`, one thread per connection. Health checks get the same answer.
pub fn start_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_nodelay(true);
                let mut buf = [0u8; 8192];
                let mut have = 0;
                loop {
                    match conn.read(&mut buf[have..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                    // Answer every complete head in the buffer.
                    while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                        if conn.write_all(RESPONSE).is_err() {
                            return;
                        }
                        buf.copy_within(end + 4..have, 0);
                        have -= end + 4;
                    }
                }
            });
        }
    });
    addr
}

/// Sends one request and reads its whole response into `buf`.
pub fn exchange(client: &mut TcpStream, buf: &mut [u8]) {
    client.write_all(REQUEST).unwrap();
    read_response(client, buf);
}

/// Sends a request on every client, then reads every response: all of
/// them are in flight at once.
#[allow(dead_code)]
pub fn exchange_all(clients: &mut [TcpStream], buf: &mut [u8]) {
    for client in clients.iter_mut() {
        client.write_all(REQUEST).unwrap();
    }
    for client in clients.iter_mut() {
        read_response(client, buf);
    }
}

fn read_response(client: &mut TcpStream, buf: &mut [u8]) {
    let mut got = 0;
    while got < RESPONSE.len() {
        let n = client.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "the balancer closed the connection");
        got += n;
    }
    assert_eq!(&buf[..got], RESPONSE);
}

/// Starts a balancer in this process in front of `target`, with one worker.
#[allow(dead_code)]
pub fn start_balancer(target: SocketAddr) -> SocketAddr {
    start_balancer_with(target, &[])
}

/// [`start_balancer`] with more flags.
#[allow(dead_code)]
pub fn start_balancer_with(target: SocketAddr, extra: &[&str]) -> SocketAddr {
    start_running(target, extra).listen
}

/// [`start_balancer_with`], returning what `runtime::start` does.
pub fn start_running(target: SocketAddr, extra: &[&str]) -> load_balancer::runtime::Running {
    use load_balancer::config::{parse_args, Command};
    let target = target.to_string();
    let mut args = vec![
        "-p",
        "0",
        "--bind",
        "127.0.0.1",
        "-b",
        &target,
        "--workers",
        "1",
        "--health-interval",
        "60s",
    ];
    args.extend_from_slice(extra);
    let Ok(Command::Run(config)) = parse_args(args) else {
        panic!("bad arguments");
    };
    load_balancer::runtime::start(*config).unwrap()
}

//! Questions to the DNS server of `--resolver`, over UDP: the A and AAAA
//! queries of a name sent at once from a socket connected to the server
//! (so that only its datagrams are read), each under a random id that its
//! answer must carry, and sent once more when unanswered after a second.
//! Blocks: run at start-up or on a thread of its own, never on an event
//! loop. The messages themselves are [`crate::dns`]'s.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::dns::{self, Address, DnsError, Kind};

/// How long an attempt waits for its answers.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Attempts of a query: the first and one retry.
const ATTEMPTS: usize = 2;

/// The record kinds asked for, each by its own query.
const KINDS: [Kind; 2] = [Kind::A, Kind::Aaaa];

/// The IPv4 and IPv6 addresses `server` gives for `host` (either list may
/// be empty), or why there are none: no answer in time, a socket error,
/// or an answer that failed or was refused ([`dns::answer`]).
pub fn ask(server: SocketAddr, host: &str) -> Result<Vec<IpAddr>, String> {
    let ids = random_ids();
    let queries = [
        dns::query(ids[0], host, KINDS[0]),
        dns::query(ids[1], host, KINDS[1]),
    ];
    let queries = match queries {
        [Ok(a), Ok(aaaa)] => [a, aaaa],
        [Err(e), _] | [_, Err(e)] => return Err(e.to_string()),
    };
    let socket = connect(server).map_err(|e| format!("cannot ask: {e}"))?;
    let mut answers: [Option<Vec<Address>>; 2] = [None, None];
    let mut buf = vec![0; dns::MAX_ANSWER + 1];
    for _ in 0..ATTEMPTS {
        for (query, _) in queries.iter().zip(&answers).filter(|(_, a)| a.is_none()) {
            socket.send(query).map_err(|e| format!("cannot ask: {e}"))?;
        }
        let deadline = Instant::now() + ATTEMPT_TIMEOUT;
        while answers.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| format!("cannot ask: {e}"))?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("cannot ask: {e}")),
            };
            for i in 0..KINDS.len() {
                if answers[i].is_some() {
                    continue;
                }
                match dns::answer(&buf[..n], ids[i], host, KINDS[i]) {
                    Ok(found) => answers[i] = Some(found),
                    // Another query's answer, or a stray: wait on.
                    Err(DnsError::NotOurs | DnsError::Short) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
    }
    match answers {
        [Some(v4), Some(v6)] => Ok(v4.into_iter().chain(v6).map(ip).collect()),
        _ => Err(format!(
            "no answer in {ATTEMPTS} attempts of {}s",
            ATTEMPT_TIMEOUT.as_secs()
        )),
    }
}

/// A UDP socket on an ephemeral port, connected to `server`.
fn connect(server: SocketAddr) -> io::Result<UdpSocket> {
    let any: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0))?;
    socket.connect(server)?;
    Ok(socket)
}

/// Two different query ids that another host cannot guess: from std's
/// hasher, whose keys are random for each process (and change with each
/// hasher made), over the time.
fn random_ids() -> [u16; 2] {
    let draw = || RandomState::new().hash_one(Instant::now()) as u16;
    let first = draw();
    loop {
        let second = draw();
        if second != first {
            return [first, second];
        }
    }
}

fn ip(address: Address) -> IpAddr {
    match address {
        Address::V4(octets) => IpAddr::from(octets),
        Address::V6(octets) => IpAddr::from(octets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// A server on loopback that answers each query with `answer(query)`
    /// (nothing when `None`), for as many queries as given.
    fn server(
        queries: usize,
        answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> (SocketAddr, thread::JoinHandle<Vec<Vec<u8>>>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = [0; 2048];
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            for _ in 0..queries {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    break;
                };
                seen.push(buf[..n].to_vec());
                if let Some(reply) = answer(&buf[..n]) {
                    socket.send_to(&reply, from).unwrap();
                }
            }
            seen
        });
        (addr, handle)
    }

    /// The answer to `query` with one A record of 10.0.0.`n` when it asks
    /// for A, none when it asks for AAAA; `rcode` in its flags.
    fn reply(query: &[u8], n: u8, rcode: u16) -> Vec<u8> {
        let qend = 12 + query[12..].iter().position(|&b| b == 0).unwrap() + 5;
        let is_a = query[qend - 3] == 1;
        let mut r = query[..qend].to_vec();
        r[2..4].copy_from_slice(&(0x8180 | rcode).to_be_bytes());
        r[6..12].copy_from_slice(&[0, u8::from(is_a && rcode == 0), 0, 0, 0, 0]);
        if is_a && rcode == 0 {
            r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, n]);
        }
        r
    }

    #[test]
    fn asks_for_a_and_aaaa_and_reads_both_answers() {
        let (addr, handle) = server(2, |q| Some(reply(q, 7, 0)));
        let got = ask(addr, "app.test").unwrap();
        assert_eq!(got, [IpAddr::from([10, 0, 0, 7])]);
        let seen = handle.join().unwrap();
        assert_ne!(seen[0][..2], seen[1][..2], "each query its own id");
    }

    #[test]
    fn an_answer_under_another_id_is_not_taken() {
        let (addr, handle) = server(4, |q| {
            let mut r = reply(q, 7, 0);
            r[0] ^= 0xff;
            Some(r)
        });
        let err = ask(addr, "app.test").unwrap_err();
        assert!(err.starts_with("no answer in 2 attempts"), "{err}");
        assert_eq!(handle.join().unwrap().len(), 4, "asked again once");
    }

    #[test]
    fn a_failure_answered_is_an_error_at_once() {
        let (addr, handle) = server(2, |q| Some(reply(q, 7, 2)));
        let started = Instant::now();
        let err = ask(addr, "app.test").unwrap_err();
        assert_eq!(err, "server answered SERVFAIL");
        assert!(started.elapsed() < ATTEMPT_TIMEOUT);
        drop(handle);
    }

    #[test]
    fn a_query_lost_once_is_asked_again() {
        let count = std::sync::atomic::AtomicUsize::new(0);
        // The first A query goes unanswered.
        let (addr, handle) = server(3, move |q| {
            let first = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            let qend = 12 + q[12..].iter().position(|&b| b == 0).unwrap() + 5;
            (!(first && q[qend - 3] == 1)).then(|| reply(q, 9, 0))
        });
        assert_eq!(
            ask(addr, "app.test").unwrap(),
            [IpAddr::from([10, 0, 0, 9])]
        );
        assert_eq!(handle.join().unwrap().len(), 3);
    }
}

//! The open file limit: raised to its hard limit at start, and the
//! connection cap fitted under it, so that the balancer refuses connections
//! over its cap with a 503 rather than fail to accept or to connect when
//! descriptors run out (nginx warns when `worker_connections` exceed it).

use std::io;

/// Descriptors kept aside for what is not a connection: listeners, rings,
/// event fds, the access log, health checks, the admin endpoint, a reload.
pub const RESERVED: u64 = 64;

/// Descriptors a client connection may hold at once: its own, the target
/// connection carrying its request, and that connection's second descriptor
/// (the one its idle poll watches, see `upstream::conn`).
pub const PER_CONNECTION: u64 = 3;

/// Descriptors an idle pooled target connection holds (the connection and
/// its second descriptor).
pub const PER_POOLED: u64 = 2;

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns the limit in
/// force afterwards.
pub fn raise() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`, a valid local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads `raised`, a valid local. An unlimited hard
        // limit can be refused (above fs.nr_open): the soft one then stays.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(lim.rlim_cur)
}

/// The connection cap that fits `open_files` descriptors: `asked` when it
/// does, else lower. Pools (`pooled` idle connections at most, all workers
/// and targets together) get at most half of what is left after the
/// reserve, so that a large pool setting cannot leave no room for clients.
pub fn fit(asked: usize, open_files: u64, pooled: u64) -> usize {
    let budget = open_files.saturating_sub(RESERVED);
    let pools = (pooled * PER_POOLED).min(budget / 2);
    let fits = (budget - pools) / PER_CONNECTION;
    (asked as u64).min(fits).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_that_fits_is_kept() {
        assert_eq!(fit(1000, 1 << 20, 10_000), 1000);
    }

    #[test]
    fn a_cap_that_does_not_fit_is_lowered() {
        // 20000 descriptors, 512 pooled connections: (20000 - 64 - 1024) / 3.
        assert_eq!(fit(100_000, 20_000, 512), 6304);
    }

    #[test]
    fn pools_take_at_most_half() {
        assert_eq!(fit(100_000, 1064, 1_000_000), 166);
    }

    #[test]
    fn never_zero() {
        assert_eq!(fit(100, 10, 0), 1);
    }

    #[test]
    fn raising_keeps_a_limit_in_force() {
        assert!(raise().unwrap() > 0);
    }
}

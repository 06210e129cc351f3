//! Signals and the events they start: SIGTERM and SIGINT a graceful
//! shutdown (a second one exits at once), SIGHUP a reload of
//! `--targets-file`. The signals are blocked in every thread and taken by
//! one thread of their own, which wakes the workers' tasks.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};

/// An event that tasks on any worker can wait for, raised from any thread.
#[derive(Default)]
pub struct Notify {
    /// How many times it was raised.
    raised: AtomicU64,
    waiting: Mutex<Vec<Waker>>,
}

impl Notify {
    /// Raises the event and wakes every task waiting for it.
    pub fn raise(&self) {
        self.raised.fetch_add(1, Ordering::AcqRel);
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        for waker in waiting {
            waker.wake();
        }
    }

    /// How many times it was raised so far.
    pub fn count(&self) -> u64 {
        self.raised.load(Ordering::Acquire)
    }

    /// Waits until it has been raised more than `seen` times; returns the count.
    pub async fn after(&self, seen: u64) -> u64 {
        poll_fn(|cx| {
            let now = self.count();
            if now > seen {
                return Poll::Ready(now);
            }
            self.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(cx.waker().clone());
            // Raised between the check and the registration: do not sleep.
            let now = self.count();
            if now > seen {
                Poll::Ready(now)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// What the signal thread raises.
#[derive(Default)]
pub struct Events {
    /// SIGTERM or SIGINT: stop accepting, drain, exit.
    pub shutdown: Notify,
    /// SIGHUP: read the targets file again (`POST /reload` does not raise
    /// it, but calls [`crate::upstream::prober::reload`] itself).
    pub reload: Notify,
    /// SIGUSR2: start a successor that takes the listeners over (see
    /// [`crate::upgrade::successor`]).
    pub upgrade: Notify,
}

/// The signals handled here.
fn handled() -> libc::sigset_t {
    // SAFETY: sigemptyset and sigaddset initialise and fill a sigset_t we
    // own; the signal numbers are valid.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        set
    }
}

/// Blocks the handled signals in this thread, and so in every thread it
/// starts afterwards; call before starting the workers.
pub fn block() {
    let set = handled();
    // SAFETY: `set` is a valid, initialised sigset_t; a null old set is allowed.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Starts the thread that waits for the handled signals and raises events.
pub fn spawn_listener(events: &'static Events) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let set = handled();
            loop {
                let mut signal = 0;
                // SAFETY: `set` is valid and blocked in every thread, as
                // sigwait requires; `signal` is a valid out-parameter.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    continue;
                }
                match signal {
                    libc::SIGHUP => {
                        log!(info, "reload: SIGHUP received");
                        events.reload.raise();
                    }
                    libc::SIGUSR2 => {
                        log!(info, "upgrade: SIGUSR2 received");
                        events.upgrade.raise();
                    }
                    _ if events.shutdown.count() > 0 => {
                        log!(warn, "shutdown: second signal, exiting at once");
                        std::process::exit(1);
                    }
                    _ => {
                        let name = if signal == libc::SIGINT {
                            "SIGINT"
                        } else {
                            "SIGTERM"
                        };
                        log!(info, "shutdown: {name} received, draining");
                        crate::systemd::stopping();
                        events.shutdown.raise();
                    }
                }
            }
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn waiting_tasks_wake_when_raised_from_another_thread() {
        let notify: &'static Notify = Box::leak(Box::default());
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let started = Arc::new(std::sync::Barrier::new(2));
        let raiser = {
            let started = started.clone();
            std::thread::spawn(move || {
                started.wait();
                notify.raise();
            })
        };
        let count = rt.block_on(async move {
            started.wait();
            notify.after(0).await
        });
        raiser.join().unwrap();
        assert_eq!(count, 1);
        // Already raised: no wait.
        assert_eq!(rt.block_on(notify.after(0)), 1);
    }
}

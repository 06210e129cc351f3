//! Blocking work (a file read, a name lookup) run on a thread of its own
//! and awaited from a worker, whose event loop goes on serving meanwhile.
//! For cold paths: one new thread per call.

use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread;

/// Runs `f` on a new thread named `name`; the future resolves to what `f`
/// returns, and the task awaiting it is woken (across threads: monoio's
/// `sync` feature) when `f` is done. A panic in `f` is resumed in the task
/// that awaits it. Dropping the future does not stop `f`: its result is
/// then thrown away.
///
/// The thread inherits the calling worker's CPU pinning and blocked
/// signals: fine for work that mostly waits, as a file read or a name
/// lookup does, not for long computations.
pub fn off_thread<T, F>(name: &str, f: F) -> io::Result<OffThread<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
    }));
    let theirs = slot.clone();
    thread::Builder::new().name(name.into()).spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let waker = {
            let mut slot = lock(&theirs);
            slot.result = Some(result);
            slot.waker.take()
        };
        // Woken outside the lock: the task may be polled at once.
        if let Some(waker) = waker {
            waker.wake();
        }
    })?;
    Ok(OffThread { slot })
}

/// What [`off_thread`] returns: the result of its closure, once there.
pub struct OffThread<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

/// Where the thread leaves its result and the task its waker.
struct Slot<T> {
    result: Option<thread::Result<T>>,
    waker: Option<Waker>,
}

fn lock<T>(slot: &Mutex<Slot<T>>) -> MutexGuard<'_, Slot<T>> {
    // The thread holds the lock only to store; a panic cannot leave the
    // slot half-written.
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T> Future for OffThread<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = lock(&self.slot);
        match slot.result.take() {
            Some(Ok(value)) => Poll::Ready(value),
            Some(Err(panicked)) => panic::resume_unwind(panicked),
            None => {
                // Checked and registered under one lock: the thread cannot
                // finish in between and miss the waker.
                match &mut slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    waker => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    fn block_on<F: Future>(fut: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(fut)
    }

    #[test]
    fn the_event_loop_runs_while_the_closure_blocks() {
        let (release, released) = mpsc::channel::<()>();
        let got = block_on(async move {
            // Blocks until a task on this event loop releases it: were the
            // loop waiting for the closure, that task would never run.
            let waited = off_thread("test", move || {
                released.recv_timeout(Duration::from_secs(10)).is_ok()
            })
            .unwrap();
            monoio::spawn(async move {
                monoio::time::sleep(Duration::from_millis(20)).await;
                release.send(()).unwrap();
            });
            waited.await
        });
        assert!(got, "the closure was not released by the event loop");
    }

    #[test]
    fn a_result_ready_before_the_first_poll_is_returned() {
        let started = Instant::now();
        let got = block_on(async {
            let fut = off_thread("test", || 7).unwrap();
            monoio::time::sleep(Duration::from_millis(20)).await;
            fut.await
        });
        assert_eq!(got, 7);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "the closure failed")]
    fn a_panic_in_the_closure_is_resumed_in_the_task() {
        block_on(async {
            off_thread("test", || -> u8 { panic!("the closure failed") })
                .unwrap()
                .await
        });
    }
}

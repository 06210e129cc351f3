//! Reloads of `--targets-file`, however they are asked for (SIGHUP, or
//! `POST /reload` on the admin endpoint): one at a time, in order, the file
//! read on a thread of its own and what it says applied back on worker 0.

use std::sync::atomic::{AtomicU64, Ordering};

use std::path::Path;

use super::resolve::{read_targets_file, Resolver};
use super::{Change, Target, Targets};
use crate::blocking::off_thread;
use crate::signals::Notify;

/// Keeps reloads in line: one at a time, in the order they were asked, so
/// that the file read last is the one applied last even when two reloads
/// (SIGHUP, `POST /reload`) come close together. Each waits for its turn,
/// reads the file on a thread of its own and applies what it read.
#[derive(Default)]
pub struct Reloads {
    /// Turns handed out so far.
    taken: AtomicU64,
    /// Raised as each turn ends.
    done: Notify,
}

impl Reloads {
    /// Waits until every reload asked before this one has ended. A reload
    /// is never dropped while it waits (its task is spawned, nothing times
    /// it out): its turn would never end and the reloads after it would
    /// wait for ever.
    async fn turn(&self) -> Turn<'_> {
        let mine = self.taken.fetch_add(1, Ordering::AcqRel);
        if mine > 0 {
            self.done.after(mine - 1).await;
        }
        Turn(self)
    }
}

/// A reload's turn, which ends when dropped.
struct Turn<'r>(&'r Reloads);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.done.raise();
    }
}

/// Reads the targets file again and applies it to `targets`; a bad file is
/// refused whole and the running set stays. The slots of the targets that
/// joined are in the `Change` (the caller has them checked at once).
///
/// The file is read, and its names resolved, on a thread of its own: both
/// can block for seconds (a slow mount, a slow DNS server), and this runs
/// on worker 0, which also serves clients. What the thread read is applied
/// back here, after the reloads asked before this one ([`Reloads`]).
pub async fn run(
    targets: &Targets,
    reloads: &Reloads,
    file: Option<&Path>,
    resolver: Resolver,
) -> Result<Change, String> {
    let _turn = reloads.turn().await;
    let ticket = targets.lookup_ticket();
    let result = match read_off_thread(file, resolver).await {
        Ok(wanted) => targets.replace_file_targets_as_of(wanted, ticket),
        Err(e) => Err(e),
    };
    match &result {
        Ok(change) => log!(
            info,
            "reload: {} added [{}], {} removed [{}], {} kept",
            change.added.len(),
            change.added.join(", "),
            change.removed.len(),
            change.removed.join(", "),
            change.kept
        ),
        Err(e) => log!(warn, "reload refused, the running set stays: {e}"),
    }
    result
}

/// Reads the targets file, and looks its names up, on a thread of its own.
async fn read_off_thread(file: Option<&Path>, resolver: Resolver) -> Result<Vec<Target>, String> {
    let Some(path) = file.map(Path::to_path_buf) else {
        return Err("no --targets-file to reload".to_string());
    };
    off_thread("reload", move || read_targets_file(&path, resolver))
        .map_err(|e| format!("cannot start a thread to read the targets file: {e}"))?
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn reloads_take_their_turns_one_at_a_time_in_the_order_asked() {
        let reloads: &'static Reloads = Box::leak(Box::default());
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(async {
            let first = reloads.turn().await;
            let mut waiting = Vec::new();
            for n in 1..=2 {
                let order = order.clone();
                waiting.push(monoio::spawn(async move {
                    let _turn = reloads.turn().await;
                    order.borrow_mut().push(n);
                    monoio::time::sleep(Duration::from_millis(5)).await;
                    order.borrow_mut().push(n + 10);
                }));
                // Let it take its number before the next one asks.
                monoio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(
                order.borrow().is_empty(),
                "a turn began before the first ended"
            );
            order.borrow_mut().push(0);
            drop(first);
            for task in waiting {
                task.await;
            }
        });
        // Each began after the one before had ended.
        assert_eq!(*order.borrow(), [0, 1, 11, 2, 12]);
    }
}

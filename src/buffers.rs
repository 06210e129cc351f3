//! Per-worker free lists of read buffers, so that buffers move between
//! connections instead of through the allocator; and the per-worker budget
//! of memory held in request bodies buffered for replay.

use std::cell::{Cell, RefCell};

use bytes::BytesMut;

/// Buffers of one size, kept for reuse (at most `keep` of them).
pub struct BufferPool {
    size: usize,
    keep: usize,
    free: RefCell<Vec<BytesMut>>,
}

impl BufferPool {
    pub fn new(size: usize, keep: usize) -> BufferPool {
        BufferPool {
            size,
            keep,
            free: RefCell::new(Vec::new()),
        }
    }

    /// An empty buffer of at least `size` bytes.
    pub fn take(&self) -> BytesMut {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.size))
    }

    /// Gives a buffer back. It is kept when there is room and it can be
    /// reclaimed whole (no `Bytes` still points into it) and is not much
    /// larger than the pool's size; otherwise it is freed.
    pub fn give(&self, mut buf: BytesMut) {
        let mut free = self.free.borrow_mut();
        if free.len() >= self.keep {
            return;
        }
        buf.clear();
        // Reclaims the original allocation in place when unique.
        buf.reserve(self.size);
        if buf.capacity() <= 2 * self.size {
            free.push(buf);
        }
    }
}

/// Values of one kind kept for reuse (at most `keep` of them), so that
/// taking one allocates only when none is spare.
pub struct FreeList<T> {
    keep: usize,
    free: RefCell<Vec<T>>,
}

impl<T: Default> FreeList<T> {
    pub fn new(keep: usize) -> FreeList<T> {
        FreeList {
            keep,
            free: RefCell::new(Vec::new()),
        }
    }

    pub fn take(&self) -> T {
        self.free.borrow_mut().pop().unwrap_or_default()
    }

    /// Gives one back (emptied by the caller).
    pub fn give(&self, value: T) {
        let mut free = self.free.borrow_mut();
        if free.len() < self.keep {
            free.push(value);
        }
    }
}

/// Bytes of request bodies a worker holds buffered so that they can be sent
/// again (`--max-replay-memory`). Without a bound, `--max-replay-body` times
/// the open connections could all be held at once; past it, a body is
/// streamed to one target instead, and not replayed.
pub struct ReplayMemory {
    max: usize,
    held: Cell<usize>,
}

impl ReplayMemory {
    pub fn new(max: usize) -> ReplayMemory {
        ReplayMemory {
            max,
            held: Cell::new(0),
        }
    }

    /// Takes up to `want` bytes from the budget; returns how many it got.
    pub fn reserve(&self, want: usize) -> usize {
        let granted = want.min(self.max - self.held.get());
        self.held.set(self.held.get() + granted);
        granted
    }

    /// Gives `n` reserved bytes back.
    pub fn release(&self, n: usize) {
        self.held.set(self.held.get() - n);
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_buffers_up_to_the_bound() {
        let pool = BufferPool::new(64, 1);
        let a = pool.take();
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take();
        assert_eq!(b.as_ptr(), ptr, "the same allocation comes back");
        pool.give(b);
        pool.give(BytesMut::with_capacity(64));
        assert_eq!(pool.free.borrow().len(), 1);
    }

    #[test]
    fn frees_buffers_that_grew_too_large() {
        let pool = BufferPool::new(64, 4);
        pool.give(BytesMut::with_capacity(1024));
        assert!(pool.free.borrow().is_empty());
    }

    #[test]
    fn replay_memory_grants_what_is_left() {
        let m = ReplayMemory::new(100);
        assert_eq!(m.reserve(60), 60);
        assert_eq!(m.reserve(60), 40);
        assert_eq!(m.reserve(1), 0);
        m.release(60);
        assert_eq!(m.held(), 40);
        assert_eq!(m.reserve(10), 10);
    }
}

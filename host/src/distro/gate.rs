//! The places application threads take inside a pipeline's distro code: calls that hang together hold at most
//! [`room`] threads, so the runtime always keeps a worker that serves (see the watchdog, which gates calls here).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where a pipeline's calls on application threads take their places (`Watched::call_gated` of the watchdog): its sampler and its
/// log processor share one, so calls that hang together in either hold at most [`room`] threads.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Application threads inside the pipeline's distro code now.
    pub(crate) inside: AtomicUsize,
    /// Set when a call waited a whole deadline for room while no call left: the calls inside are stuck or slow,
    /// and later calls that find no room take their fallback at once. Cleared whenever a call leaves.
    pub(crate) stalled: AtomicBool,
    /// How many calls have left: a waiter that sees this move knows the calls inside are not stuck.
    left: AtomicU64,
}

/// How many application threads may be inside a pipeline's distro code at once: one fewer than the threads this
/// machine runs in parallel (the worker count of Tokio's default runtime), and at least one. So calls that hang
/// together hold at most that many threads, and the runtime always keeps a worker that serves.
pub(crate) fn room() -> usize {
    static ROOM: OnceLock<usize> = OnceLock::new();
    *ROOM.get_or_init(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
    })
}

impl Gate {
    /// Takes a place among the [`room`] application threads inside distro code: at once when one is free, else
    /// after waiting while calls keep leaving (busy, not stuck: the wait starts over each time one leaves).
    /// `false` when no call left for a whole `deadline`, or another waiter found that and no call has left since.
    pub(crate) fn admit(&self, deadline: Duration) -> bool {
        let room = room();
        let mut waited: Option<(Instant, u64)> = None;
        let mut round = 0u32;
        loop {
            let inside = self.inside.load(Ordering::Relaxed);
            if inside < room {
                if self
                    .inside
                    .compare_exchange_weak(inside, inside + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if self.stalled.load(Ordering::Relaxed) {
                return false;
            }
            // A call inside normally returns within microseconds: spin, then yield, then sleep and look at the
            // clock.
            round += 1;
            if round < 64 {
                std::hint::spin_loop();
            } else if round < 128 {
                std::thread::yield_now();
            } else {
                let left = self.left.load(Ordering::Relaxed);
                let (since, seen) = *waited.get_or_insert_with(|| (Instant::now(), left));
                if left != seen {
                    // A call left: the places are busy, not held. Wait again, from now.
                    waited = Some((Instant::now(), left));
                } else if since.elapsed() >= deadline {
                    // Only while the places are still all held (a call may have left since the look above).
                    if self.inside.load(Ordering::Relaxed) >= room
                        && self.left.load(Ordering::Relaxed) == seen
                    {
                        self.stalled.store(true, Ordering::Relaxed);
                        return false;
                    }
                    waited = None;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

/// Gives the place back when the gated call ends (a call into distro code returns its error instead of unwinding;
/// the place is given back even if host code around it did unwind).
pub(crate) struct Leave<'a>(pub(crate) &'a Gate);

impl Drop for Leave<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.inside.fetch_sub(1, Ordering::Release);
        self.0.left.fetch_add(1, Ordering::Relaxed);
        if self.0.stalled.load(Ordering::Relaxed) {
            self.0.stalled.store(false, Ordering::Relaxed);
        }
    }
}

//! The watchdog over per-span calls into distro code. A sampler (and a log processor) runs on the application's own
//! request threads, the span processor on ndotel's batch worker; a call that never returns would hang its thread
//! and, without a watchdog, every later call.
//!
//! Each call marks its start in a slot owned by the calling thread (the watchdog's epoch, the trace it is for: a few
//! relaxed atomic stores, no clock read, no allocation, no lock); one watchdog thread per process looks at the slots
//! a few times per deadline. A *slow* call is not a switch:
//! - a call found past its deadline is *overdue*: when it returns, the adapter treats it as failed for that one span
//!   or record (fail closed) and the component stays in service;
//! - a call past [`STUCK_FACTOR`] times its deadline is *stuck*: while any call of the component is stuck, the
//!   component is *bypassed* (the adapter uses its fallback), and the bypass ends when the last stuck call returns.
//!   A component that never returns stays bypassed; one slow input cannot switch it off for good.
//!
//! Each is reported once per component with the distro, the thread and the trace id of the span that triggered it
//! (never its values). The stuck thread cannot be freed — Rust cannot cancel a call — but every other request is
//! served and shutdown never waits for it. Calls that hang *together*, before any is found stuck, cannot take every
//! thread either: at most [`room`] application threads are inside a pipeline's distro code at once (one fewer than
//! the machine's parallelism, Tokio's default worker count), and a call that finds no room within its deadline takes
//! the fallback. A call that never returns keeps its place, so until it does, the pipeline's other calls on
//! application threads take their fallbacks once the places are all held.

use crate::distro::faults::{Component, Faults, STUCK_FACTOR};
use crate::distro::gate::{Leave, room};
use std::cell::OnceCell;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The watchdog's epoch, advanced by its thread on every look. A call marks its start with the current epoch: one
/// relaxed load, no clock read (in some sandboxes even the coarse clock is a system call, measured at ~0.7 µs).
/// Starts at 1, since 0 marks an idle slot.
static EPOCH: AtomicU64 = AtomicU64::new(1);

/// One thread's in-flight call: when it started (0: none), which watched component it is in and for which trace.
/// The watchdog marks a call overdue or stuck by writing its start epoch into `overdue_of` or `stuck_of` (and the
/// component the stuck mark counts against into `stuck_in`): epochs name calls without ambiguity (an overdue call's
/// epoch is older than any call that starts later).
#[derive(Debug)]
struct Slot {
    since: AtomicU64,
    watched: AtomicUsize,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    overdue_of: AtomicU64,
    stuck_of: AtomicU64,
    stuck_in: AtomicUsize,
    thread: String,
}

/// A component under the watchdog.
#[derive(Debug)]
pub(crate) struct Watched {
    id: usize,
    component: Component,
    deadline: Duration,
    /// How many of its calls are stuck now (briefly negative when a call returns as the watchdog marks it).
    stuck: AtomicIsize,
    faults: Arc<Faults>,
}

/// What a watched call returned, and whether it was overdue.
#[derive(Debug)]
pub(crate) struct Returned<R> {
    /// The call's result.
    pub(crate) value: R,
    /// Whether it ran past its deadline: the adapter fails closed for this span or record.
    pub(crate) overdue: bool,
}

#[derive(Debug, Default)]
struct Shared {
    slots: Mutex<Vec<Weak<Slot>>>,
    watched: Mutex<Vec<Weak<Watched>>>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    static STARTED: std::sync::Once = std::sync::Once::new();
    let s = SHARED.get_or_init(Shared::default);
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("ndotel-watchdog".into())
            .spawn(|| watch(SHARED.get_or_init(Shared::default)));
        if let Err(e) = spawned {
            eprintln!("ndotel: cannot start the watchdog thread ({e}); hanging distro calls will not be detected");
        }
    });
    s
}

thread_local! {
    static SLOT: OnceCell<Arc<Slot>> = const { OnceCell::new() };
}

/// The calling thread's slot, registered with the watchdog on the thread's first call (the only lock taken).
fn with_slot<R>(f: impl FnOnce(&Slot) -> R) -> R {
    SLOT.with(|cell| {
        let slot = cell.get_or_init(|| {
            let t = std::thread::current();
            let slot = Arc::new(Slot {
                since: AtomicU64::new(0),
                watched: AtomicUsize::new(0),
                trace_hi: AtomicU64::new(0),
                trace_lo: AtomicU64::new(0),
                overdue_of: AtomicU64::new(0),
                stuck_of: AtomicU64::new(0),
                stuck_in: AtomicUsize::new(0),
                thread: format!("{:?} ({:?})", t.name().unwrap_or("unnamed"), t.id()),
            });
            if let Ok(mut slots) = shared().slots.lock() {
                slots.push(Arc::downgrade(&slot));
            }
            slot
        });
        f(slot)
    })
}

impl Watched {
    /// Puts `component` of the pipeline counted by `faults` under the watchdog with `deadline` per call.
    pub(crate) fn new(component: Component, deadline: Duration, faults: Arc<Faults>) -> Arc<Self> {
        let shared = shared();
        let mut list = shared
            .watched
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let w = Arc::new(Watched {
            id: list.len() + 1,
            component,
            deadline,
            stuck: AtomicIsize::new(0),
            faults,
        });
        list.push(Arc::downgrade(&w));
        w
    }

    /// Whether a call of the component is stuck now: calls take the fallback until it returns.
    #[inline]
    pub(crate) fn bypassed(&self) -> bool {
        self.stuck.load(Ordering::Acquire) > 0
    }

    /// Runs `f` (the call into distro code for a span of `trace`, 0 if none) with its start marked for the watchdog.
    /// For calls on ndotel's own threads; an application's thread goes through [`Watched::call_gated`].
    #[inline]
    pub(crate) fn call<R>(&self, trace: u128, f: impl FnOnce() -> R) -> Returned<R> {
        with_slot(|slot| self.call_in(slot, trace, f))
    }

    /// [`Watched::call`] on an application's thread (a sampler deciding, a log processor editing as the record is
    /// emitted): at most [`room`] such threads are inside the pipeline's distro code at once (its [`Gate`]), so
    /// however many calls hang together,
    /// the application keeps threads that serve. A call that finds no room waits for it while the calls inside are
    /// young; when the wait reaches the deadline it returns `None` (the caller takes its fallback), and so does every
    /// call after it until one of the calls inside returns — no wait is paid twice for the same stuck calls, and
    /// nothing stays switched once they return. A call made from inside distro code (a sampler starting a span) is
    /// already in: it never waits for itself.
    #[inline]
    pub(crate) fn call_gated<R>(&self, trace: u128, f: impl FnOnce() -> R) -> Option<Returned<R>> {
        with_slot(|slot| {
            if slot.since.load(Ordering::Relaxed) != 0 {
                return Some(self.call_in(slot, trace, f));
            }
            let gate = self.faults.gate();
            if !gate.admit(self.deadline) {
                self.faults
                    .record_no_room(self.component, room(), self.deadline);
                return None;
            }
            let _leave = Leave(gate);
            Some(self.call_in(slot, trace, f))
        })
    }

    #[inline]
    fn call_in<R>(&self, slot: &Slot, trace: u128, f: impl FnOnce() -> R) -> Returned<R> {
        {
            // Saved and restored: distro code may start a span inside a distro call.
            let outer = (
                slot.watched.swap(self.id, Ordering::Relaxed),
                slot.since.load(Ordering::Relaxed),
                slot.trace_hi.load(Ordering::Relaxed),
                slot.trace_lo.load(Ordering::Relaxed),
            );
            slot.trace_hi.store((trace >> 64) as u64, Ordering::Relaxed);
            slot.trace_lo.store(trace as u64, Ordering::Relaxed);
            let since = EPOCH.load(Ordering::Relaxed);
            slot.since.store(since, Ordering::Release);
            let value = f();
            slot.watched.store(outer.0, Ordering::Relaxed);
            slot.since.store(outer.1, Ordering::Release);
            slot.trace_hi.store(outer.2, Ordering::Relaxed);
            slot.trace_lo.store(outer.3, Ordering::Relaxed);
            // A plain load first: the compare-and-swap (a locked instruction) is paid only by a call that was marked.
            // Exactly one of this and the watchdog takes a mark back; a mark this load misses, racing the watchdog,
            // is taken back by the watchdog once the thread is idle (`watch`).
            if slot.stuck_of.load(Ordering::Acquire) == since
                && slot
                    .stuck_of
                    .compare_exchange(since, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.stuck.fetch_sub(1, Ordering::AcqRel);
            }
            let overdue = slot.overdue_of.load(Ordering::Acquire) == since;
            Returned { value, overdue }
        }
    }

    /// Marks the call of `slot` that started at epoch `since` stuck; taken back at once if it has already returned.
    fn mark_stuck(&self, slot: &Slot, since: u64, stuck_for: Duration) {
        if slot
            .stuck_of
            .compare_exchange(0, since, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return; // already marked
        }
        slot.stuck_in.store(self.id, Ordering::Relaxed);
        self.stuck.fetch_add(1, Ordering::AcqRel);
        if slot.since.load(Ordering::Acquire) != since
            && slot
                .stuck_of
                .compare_exchange(since, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.stuck.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        self.faults.record_hang(
            self.component,
            &slot.thread,
            trace_of(slot),
            stuck_for,
            self.deadline,
        );
    }
}

/// The trace id a slot's call is for, as text (empty when none).
fn trace_of(slot: &Slot) -> String {
    let trace = (u128::from(slot.trace_hi.load(Ordering::Relaxed)) << 64)
        | u128::from(slot.trace_lo.load(Ordering::Relaxed));
    if trace == 0 {
        String::new()
    } else {
        format!("{trace:032x}")
    }
}

/// The watchdog loop: a look every quarter of the shortest deadline (5 ms to 250 ms). It remembers when each recent
/// epoch began; a call marked with epoch `e` started after epoch `e` began, so it has surely run for at least
/// `now - begin(e + 1)` — the stuck time judged against the deadline (epochs too old to be remembered are stuck).
fn watch(shared: &Shared) {
    let mut began: std::collections::VecDeque<(u64, Instant)> = std::collections::VecDeque::new();
    loop {
        let epoch = EPOCH.fetch_add(1, Ordering::Relaxed) + 1;
        began.push_back((epoch, Instant::now()));
        if began.len() > 4096 {
            began.pop_front();
        }
        let watched: Vec<Arc<Watched>> = match shared.watched.lock() {
            Ok(mut list) => {
                let live = list.iter().filter_map(Weak::upgrade).collect::<Vec<_>>();
                // Ids are positions: keep dead entries' places, only compact a list that grew large and died out.
                if live.is_empty() && list.len() > 1024 {
                    list.clear();
                }
                live
            }
            Err(_) => return,
        };
        let tick = watched
            .iter()
            .map(|w| w.deadline / 4)
            .min()
            .unwrap_or(Duration::from_millis(250))
            .clamp(Duration::from_millis(5), Duration::from_millis(250));
        std::thread::sleep(tick);
        if watched.is_empty() {
            continue;
        }
        let now = Instant::now();
        let oldest = began.front().map_or(now, |(_, t)| *t);
        let Ok(mut slots) = shared.slots.lock() else {
            return;
        };
        slots.retain(|s| s.strong_count() > 0);
        for slot in slots.iter().filter_map(Weak::upgrade) {
            let since = slot.since.load(Ordering::Acquire);
            if since == 0 {
                // Idle: a stuck mark left on it belongs to a call that has returned (one that raced its own
                // check): taken back, so no bypass outlives its call.
                // (A component not in this look's list yet keeps its mark until the next look.)
                let marked = slot.stuck_of.load(Ordering::Acquire);
                if marked != 0
                    && let Some(w) = watched
                        .iter()
                        .find(|w| w.id == slot.stuck_in.load(Ordering::Relaxed))
                    && slot
                        .stuck_of
                        .compare_exchange(marked, 0, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    w.stuck.fetch_sub(1, Ordering::AcqRel);
                }
                continue;
            }
            let id = slot.watched.load(Ordering::Relaxed);
            // `began` holds consecutive epochs, so epoch `e` sits at `e - first`.
            let first = began.front().map_or(epoch, |(e, _)| *e);
            let surely_since = if since + 1 > epoch {
                // Started in the current epoch: it cannot have been running for a whole tick yet.
                now
            } else {
                // Older than every remembered epoch: running for longer than any deadline.
                (since + 1)
                    .checked_sub(first)
                    .and_then(|i| began.get(i as usize))
                    .map_or(oldest, |(_, t)| *t)
            };
            let stuck_for = now.saturating_duration_since(surely_since);
            let Some(w) = watched.iter().find(|w| w.id == id) else {
                continue;
            };
            if stuck_for > w.deadline
                && slot.overdue_of.swap(since, Ordering::AcqRel) != since
                && slot.since.load(Ordering::Acquire) == since
            {
                w.faults
                    .record_overdue(w.component, &slot.thread, trace_of(&slot), w.deadline);
            }
            if stuck_for > w.deadline * STUCK_FACTOR {
                w.mark_stuck(&slot, since, stuck_for);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_stuck_call_bypasses_its_component_only_until_it_returns_and_costs_only_itself() {
        let faults = Arc::new(Faults::new("test"));
        let w = Watched::new(
            Component::SpanProcessor,
            Duration::from_millis(200),
            faults.clone(),
        );
        let quick = w.call(1, || 5);
        assert_eq!((quick.value, quick.overdue), (5, false));
        assert!(!w.bypassed());
        let (release, wait) = mpsc::channel::<()>();
        let stuck = {
            let w = w.clone();
            std::thread::spawn(move || w.call(0xabc, || wait.recv().ok()).overdue)
        };
        // Wait for the event (the bypass), with a generous deadline for a busy machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !w.bypassed() {
            assert!(std::time::Instant::now() < deadline, "never bypassed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(faults.hung(), 1);
        assert!(faults.count(Component::SpanProcessor) >= 1);
        // Calls on other threads still run (the adapter decides what a bypassed component means).
        assert_eq!(w.call(0, || 6).value, 6);
        release.send(()).unwrap();
        assert!(stuck.join().unwrap(), "the stuck call returns overdue");
        // The bypass ended when the stuck call returned: no tick of the watchdog needed, no switch left behind.
        assert!(!w.bypassed());
        let after = w.call(2, || 7);
        assert_eq!((after.value, after.overdue), (7, false));
    }

    #[test]
    fn a_stuck_mark_left_on_an_idle_thread_is_taken_back_by_the_watchdog() {
        let faults = Arc::new(Faults::new("test"));
        let w = Watched::new(Component::Sampler, Duration::from_millis(20), faults);
        // The state a returning call leaves when its check races the watchdog's mark: idle, still marked.
        let (marked, done) = mpsc::channel();
        let (finish, wait) = mpsc::channel::<()>();
        let idle = {
            let w = w.clone();
            std::thread::spawn(move || {
                w.call(0, || ());
                with_slot(|slot| {
                    slot.stuck_in.store(w.id, Ordering::Relaxed);
                    slot.stuck_of.store(7, Ordering::Release);
                });
                w.stuck.fetch_add(1, Ordering::AcqRel);
                marked.send(()).unwrap();
                wait.recv().ok();
            })
        };
        done.recv().unwrap();
        assert!(w.bypassed());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while w.bypassed() {
            assert!(
                std::time::Instant::now() < deadline,
                "the mark was never taken back"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        finish.send(()).unwrap();
        idle.join().unwrap();
    }

    #[test]
    fn calls_that_hang_together_hold_at_most_room_threads_and_later_calls_take_the_fallback() {
        let faults = Arc::new(Faults::new("test"));
        let w = Watched::new(
            Component::Sampler,
            Duration::from_millis(50),
            faults.clone(),
        );
        // A call from inside distro code is already in: it never waits for the place its own thread holds.
        let nested = w.call_gated(1, || w.call_gated(2, || 3).map(|r| r.value));
        assert_eq!(nested.map(|r| r.value), Some(Some(3)));
        let (entered, inside) = mpsc::channel();
        let hanging: Vec<_> = (0..room())
            .map(|_| {
                let (release, wait) = mpsc::channel::<()>();
                let (w, entered) = (w.clone(), entered.clone());
                let t = std::thread::spawn(move || {
                    w.call_gated(0, || {
                        entered.send(()).unwrap();
                        wait.recv().ok()
                    })
                    .is_some()
                });
                (release, t)
            })
            .collect();
        for _ in 0..room() {
            inside.recv().unwrap();
        }
        // Every place is held by a call that does not return: the next call waits up to its deadline, then takes
        // the fallback; the one after that does not wait again.
        assert!(w.call_gated(3, || ()).is_none());
        assert!(faults.gate().stalled.load(Ordering::Relaxed));
        assert!(w.call_gated(4, || ()).is_none());
        assert_eq!(faults.count(Component::Sampler), 2);
        // They return: their places are free again and nothing stays switched.
        for (release, t) in hanging {
            release.send(()).unwrap();
            assert!(t.join().unwrap());
        }
        assert!(!faults.gate().stalled.load(Ordering::Relaxed));
        assert_eq!(w.call_gated(5, || 6).map(|r| r.value), Some(6));
        assert_eq!(faults.gate().inside.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn quick_calls_are_never_reported() {
        let faults = Arc::new(Faults::new("test"));
        let w = Watched::new(Component::Sampler, Duration::from_secs(30), faults.clone());
        for i in 0..100_000u32 {
            let r = w.call(u128::from(i), || i);
            assert_eq!((r.value, r.overdue), (i, false));
        }
        assert!(!w.bypassed());
        assert_eq!(faults.total(), 0);
    }
}

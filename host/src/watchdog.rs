//! The watchdog over per-span calls into distro code. A sampler or span processor runs on the application's own
//! request threads, so a call that never returns would hang that request and, without a watchdog, every later one.
//!
//! Each call marks its start in a slot owned by the calling thread (the watchdog's epoch and two relaxed atomic
//! stores: no clock read, no allocation, no lock); one watchdog thread per process looks at the slots a few times per deadline. A
//! call found past its deadline gets its component *bypassed* from then on (the adapter uses its fallback decision),
//! reported once with the distro, the component and the thread. The stuck thread cannot be freed — Rust cannot
//! cancel a call — but every other request is served and shutdown never waits for it.

use crate::faults::{Component, Faults};
use std::cell::OnceCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The watchdog's epoch, advanced by its thread on every look. A call marks its start with the current epoch: one
/// relaxed load, no clock read (in some sandboxes even the coarse clock is a system call, measured at ~0.7 µs).
/// Starts at 1, since 0 marks an idle slot.
static EPOCH: AtomicU64 = AtomicU64::new(1);

/// One thread's in-flight call: when it started (0: none) and which watched component it is in.
#[derive(Debug)]
struct Slot {
    since: AtomicU64,
    watched: AtomicUsize,
    thread: String,
}

/// A component under the watchdog.
#[derive(Debug)]
pub(crate) struct Watched {
    id: usize,
    component: Component,
    deadline: Duration,
    bypassed: AtomicBool,
    faults: Arc<Faults>,
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
            bypassed: AtomicBool::new(false),
            faults,
        });
        list.push(Arc::downgrade(&w));
        w
    }

    /// Whether the component was found stuck and is bypassed for good.
    #[inline]
    pub(crate) fn bypassed(&self) -> bool {
        self.bypassed.load(Ordering::Relaxed)
    }

    /// Runs `f` (the call into distro code) with its start marked for the watchdog.
    #[inline]
    pub(crate) fn call<R>(&self, f: impl FnOnce() -> R) -> R {
        with_slot(|slot| {
            // Saved and restored: distro code may start a span inside a distro call.
            let outer = (
                slot.watched.swap(self.id, Ordering::Relaxed),
                slot.since.load(Ordering::Relaxed),
            );
            slot.since
                .store(EPOCH.load(Ordering::Relaxed), Ordering::Release);
            let result = f();
            slot.watched.store(outer.0, Ordering::Relaxed);
            slot.since.store(outer.1, Ordering::Release);
            result
        })
    }

    fn trip(&self, thread: &str, stuck_for: Duration) {
        if self.bypassed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.faults
            .record_hang(self.component, thread, stuck_for, self.deadline);
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
            if let Some(w) = watched.iter().find(|w| w.id == id)
                && stuck_for > w.deadline
            {
                w.trip(&slot.thread, stuck_for);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_stuck_call_is_noticed_and_bypasses_its_component_while_others_go_on() {
        let faults = Arc::new(Faults::new("test"));
        let w = Watched::new(
            Component::SpanProcessor,
            Duration::from_millis(50),
            faults.clone(),
        );
        assert_eq!(w.call(|| 5), 5);
        assert!(!w.bypassed());
        let (release, wait) = mpsc::channel::<()>();
        let stuck = {
            let w = w.clone();
            std::thread::spawn(move || w.call(|| wait.recv().ok()))
        };
        // Wait for the event (the bypass), with a generous deadline for a busy machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !w.bypassed() {
            assert!(std::time::Instant::now() < deadline, "never bypassed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(faults.count(Component::SpanProcessor), 1);
        // Calls on other threads still run (the adapter decides what a bypassed component means).
        assert_eq!(w.call(|| 6), 6);
        release.send(()).unwrap();
        stuck.join().unwrap();
    }

    #[test]
    fn quick_calls_are_never_reported() {
        let faults = Arc::new(Faults::new("test"));
        let w = Watched::new(Component::Sampler, Duration::from_secs(30), faults.clone());
        for i in 0..100_000u32 {
            assert_eq!(w.call(|| i), i);
        }
        assert!(!w.bypassed());
        assert_eq!(faults.total(), 0);
    }
}

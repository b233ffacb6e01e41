//! The batch queue between the request threads and the batch thread, in place of the SDK's `BatchSpanProcessor`.
//!
//! A request thread ends its span by pushing it onto one vector under a lock: the span moves once. The batch
//! thread takes the vector whole (a full batch, the timer, a flush or shutdown) and leaves an empty one of the
//! usual capacity, so no span is copied between the two. The SDK's processor moved each span into a channel slot, out
//! of it into a vector, and copied the vector again for the exporter, with a channel operation on either side.
//!
//! What the `OTEL_BSP_*` settings mean is unchanged: at most `max_queue_size` spans wait, those being exported
//! included (a span past that is dropped and counted, never exported unedited); at most `max_export_batch_size` go in
//! one export; and the queue is exported every `schedule_delay` and as soon as a full batch waits. A flush exports
//! every span queued before it, then flushes the exporter; shutdown exports every span queued before it, then shuts
//! the exporter down, within its deadline.

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a flush waits for the batch thread (the SDK's processor waits as long).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The sizes and the period of a [`BatchQueue`] (the `OTEL_BSP_*` settings).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueConfig {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) schedule_delay: Duration,
}

/// Spans ended on the request threads, exported in batches on a thread of its own.
#[derive(Debug)]
pub(crate) struct BatchQueue {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the batch thread (only while it waits: [`State::waiting`]).
    wake: Condvar,
    /// Wakes the caller of shutdown when the batch thread has ended.
    stopped: Condvar,
    config: QueueConfig,
    /// Whether the first drop for a full queue was said.
    warned: AtomicBool,
}

/// Why a span was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// `max_queue_size` spans wait already.
    Full,
    /// Shutdown has begun (or the batch thread has ended).
    Closed,
}

/// What one flush learns: `None` when every export of it and the exporter's flush went well.
type FlushResult = Option<String>;

#[derive(Debug, Default)]
struct State {
    spans: Vec<SpanData>,
    /// Spans the batch thread has taken and not yet exported: they count against `max_queue_size`.
    taken: usize,
    /// The batch thread waits for work: a request thread that fills a batch wakes it.
    waiting: bool,
    /// The flushes waiting for the next round, each told its own result.
    flushes: Vec<SyncSender<FlushResult>>,
    /// A resource for the exporter, not yet given to it.
    resource: Option<Resource>,
    /// The last export failure not yet told to a flush or shutdown (a round already under way when one was asked
    /// for may hold spans queued before it).
    unreported: Option<String>,
    /// Shutdown was asked for, to end by this instant.
    closing: Option<Instant>,
    /// The batch thread has ended; with the shutdown's result.
    stopped: Option<Result<(), String>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `timeout` from now; a timeout too long to represent is a year.
fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Said on stderr; a stderr that cannot be written (closed, full) loses the line, never the caller.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

impl BatchQueue {
    /// Starts the batch thread with `exporter`. When the thread cannot be started, every span is dropped and
    /// counted, and the reason is said once.
    pub(crate) fn new<E: SpanExporter + 'static>(exporter: E, config: QueueConfig) -> Self {
        let config = QueueConfig {
            max_queue_size: config.max_queue_size.max(1),
            max_export_batch_size: config
                .max_export_batch_size
                .clamp(1, config.max_queue_size.max(1)),
            schedule_delay: config.schedule_delay,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            stopped: Condvar::new(),
            config,
            warned: AtomicBool::new(false),
        });
        let on_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ndotel-span-batch".into())
            .spawn(move || {
                // Whatever ends the thread, its end is published: a flush or shutdown never waits for a thread
                // that is gone, and a span is never queued where nobody will take it.
                let ended = catch_unwind(AssertUnwindSafe(|| run(&on_thread, exporter)));
                if ended.is_err() {
                    let mut state = lock(&on_thread.state);
                    state.stopped = Some(Err("the span batch thread panicked".into()));
                    state.flushes.clear();
                    drop(state);
                    on_thread.stopped.notify_all();
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                say(format_args!(
                    "ndotel: error: the span batch thread could not be started ({e}); no span will be exported"
                ));
                lock(&shared.state).stopped = Some(Err(format!("no batch thread: {e}")));
                None
            }
        };
        BatchQueue {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// Queues an ended span; drops it (after the lock is released) when the queue is full or shut down.
    pub(crate) fn push(&self, span: SpanData) -> Result<(), Dropped> {
        let config = &self.shared.config;
        let mut state = lock(&self.shared.state);
        if state.closing.is_some() || state.stopped.is_some() {
            drop(state);
            return Err(Dropped::Closed);
        }
        if state.spans.len() + state.taken >= config.max_queue_size {
            drop(state);
            self.full();
            return Err(Dropped::Full);
        }
        state.spans.push(span);
        let wake = state.waiting && state.spans.len() == config.max_export_batch_size;
        drop(state);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Says the first drop for a full queue.
    #[cold]
    fn full(&self) {
        if !self.shared.warned.swap(true, Ordering::Relaxed) {
            say(format_args!(
                "ndotel: warning: the span queue is full ({} spans): spans are dropped until the exports catch up; \
                 raise OTEL_BSP_MAX_QUEUE_SIZE or lower OTEL_BSP_SCHEDULE_DELAY (the total is said at shutdown)",
                self.shared.config.max_queue_size
            ));
        }
    }

    /// Exports every span queued before the call, then flushes the exporter; waits at most five seconds.
    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        let (tx, rx): (SyncSender<FlushResult>, Receiver<FlushResult>) = sync_channel(1);
        {
            let mut state = lock(&self.shared.state);
            if let Some(Err(e)) = &state.stopped {
                return Err(OTelSdkError::InternalFailure(e.clone()));
            }
            if state.closing.is_some() || state.stopped.is_some() {
                return Err(OTelSdkError::AlreadyShutdown);
            }
            state.flushes.push(tx);
        }
        self.shared.wake.notify_one();
        match rx.recv_timeout(FLUSH_TIMEOUT) {
            Ok(None) => Ok(()),
            Ok(Some(e)) => Err(OTelSdkError::InternalFailure(e)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(OTelSdkError::Timeout(FLUSH_TIMEOUT))
            }
            // The thread ended before this flush's round: said as it ended.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                match &lock(&self.shared.state).stopped {
                    Some(Err(e)) => Err(OTelSdkError::InternalFailure(e.clone())),
                    _ => Err(OTelSdkError::AlreadyShutdown),
                }
            }
        }
    }

    /// Exports every span queued before the call, then shuts the exporter down; waits at most `timeout`, after
    /// which the batch thread goes on alone and the call says it timed out.
    pub(crate) fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let mut state = lock(&self.shared.state);
        if state.closing.is_some() || state.stopped.is_some() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        state.closing = Some(deadline(timeout));
        self.shared.wake.notify_one();
        let (state, _) = self
            .shared
            .stopped
            .wait_timeout_while(state, timeout, |s| s.stopped.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        let Some(result) = state.stopped.clone() else {
            return Err(OTelSdkError::Timeout(timeout));
        };
        drop(state);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // It has said it stopped, with the exporter already dropped: only its return is left.
            let _ = thread.join();
        }
        result.map_err(OTelSdkError::InternalFailure)
    }

    /// Gives the exporter `resource` before its next export.
    pub(crate) fn set_resource(&self, resource: &Resource) {
        lock(&self.shared.state).resource = Some(resource.clone());
        self.shared.wake.notify_one();
    }
}

impl Drop for BatchQueue {
    /// Never shut down (the provider does, normally): the batch thread exports what waits and ends.
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        if state.closing.is_none() {
            state.closing = Some(deadline(FLUSH_TIMEOUT));
            drop(state);
            self.shared.wake.notify_one();
        }
    }
}

/// What the batch thread was woken for.
struct Work {
    /// Every span queued (counted in [`State::taken`] until exported).
    spans: Vec<SpanData>,
    /// The flushes this round answers: every span queued before them is in `spans`.
    flushes: Vec<SyncSender<FlushResult>>,
    /// Shutdown: `spans` is the last of the queue.
    closing: Option<Instant>,
    resource: Option<Resource>,
}

/// The batch thread: waits for a full batch, the period, a flush or shutdown; exports; repeats until shutdown.
fn run<E: SpanExporter>(shared: &Shared, mut exporter: E) {
    // Whatever the exporter does (its transport's own instrumentation) makes no spans of its own.
    let _suppressed = Context::enter_telemetry_suppressed_scope();
    let config = shared.config;
    let mut last_export = Instant::now();
    // The capacity each taken queue is replaced with: the size of the last round, so the request threads rarely
    // grow the vector.
    let mut capacity = 0usize;
    loop {
        let fresh = Vec::with_capacity(capacity);
        let work = wait_for_work(shared, &mut last_export, fresh);
        if let Some(resource) = &work.resource {
            exporter.set_resource(resource);
        }
        capacity = work.spans.len().max(16).min(config.max_export_batch_size);
        export(shared, &exporter, work.spans);
        if !work.flushes.is_empty() {
            let mut failed = lock(&shared.state).unreported.take();
            if let Err(e) = exporter.force_flush() {
                failed.get_or_insert(e.to_string());
            }
            for flush in work.flushes {
                let _ = flush.try_send(failed.clone());
            }
        }
        if let Some(deadline) = work.closing {
            let left = deadline.saturating_duration_since(Instant::now());
            let shut = exporter
                .shutdown_with_timeout(left)
                .map_err(|e| e.to_string());
            let result = match lock(&shared.state).unreported.take() {
                Some(e) => Err(e),
                None => shut,
            };
            // Dropped before the end is published: the exporter's destructor (a plugin's, say) runs inside the
            // shutdown's deadline, not in the caller's join.
            drop(exporter);
            lock(&shared.state).stopped = Some(result);
            shared.stopped.notify_all();
            return;
        }
    }
}

/// Exports `spans` in batches of at most `max_export_batch_size`: taken as they are when they fit (the usual case),
/// else in pieces, each span moved once more.
fn export<E: SpanExporter>(shared: &Shared, exporter: &E, spans: Vec<SpanData>) {
    let max = shared.config.max_export_batch_size;
    if spans.len() <= max {
        return export_batch(shared, exporter, spans);
    }
    let mut spans = spans.into_iter();
    while spans.len() > 0 {
        export_batch(shared, exporter, spans.by_ref().take(max).collect());
    }
}

/// Exports one batch, keeping a failure for the next flush or shutdown; the batch stops counting against the
/// queue's size.
fn export_batch<E: SpanExporter>(shared: &Shared, exporter: &E, batch: Vec<SpanData>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    // A panic costs its batch, not the thread (every later span would wait in a queue nobody empties).
    let exported = catch_unwind(AssertUnwindSafe(|| {
        futures_executor::block_on(exporter.export(batch))
    }));
    let error = match exported {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("the export panicked".to_string()),
    };
    let mut state = lock(&shared.state);
    state.taken = state.taken.saturating_sub(n);
    let Some(error) = error else { return };
    state.unreported = Some(error.clone());
    drop(state);
    // Reported as the SDK's batch processor reports it: an internal event, shown (rate-limited) on stderr.
    tracing::error!(
        target: "opentelemetry_sdk",
        name = "BatchSpanProcessor.ExportError",
        error = %error,
    );
}

/// Waits until there is something to do and takes it: every queued span (the queue is left with `fresh`), the
/// flushes waiting, shutdown, a resource.
fn wait_for_work(shared: &Shared, last_export: &mut Instant, fresh: Vec<SpanData>) -> Work {
    let config = shared.config;
    // Shutdown, a flush, the period or a full batch: the queue goes out now.
    let export_now = |state: &State, last_export: &Instant| {
        state.closing.is_some()
            || !state.flushes.is_empty()
            || last_export.elapsed() >= config.schedule_delay
            || state.spans.len() >= config.max_export_batch_size
    };
    let mut state = lock(&shared.state);
    while !export_now(&state, last_export) && state.resource.is_none() {
        let left = config.schedule_delay.saturating_sub(last_export.elapsed());
        state.waiting = true;
        state = shared
            .wake
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        state.waiting = false;
    }
    let export = export_now(&state, last_export);
    let resource = state.resource.take();
    let closing = state.closing;
    let flushes = std::mem::take(&mut state.flushes);
    // Woken only for the resource: the spans wait for their turn.
    let spans = if export {
        std::mem::replace(&mut state.spans, fresh)
    } else {
        Vec::new()
    };
    state.taken += spans.len();
    drop(state);
    if export {
        *last_export = Instant::now();
    }
    Work {
        spans,
        flushes,
        closing,
        resource,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distro::editor::tests::span;
    use opentelemetry::trace::Status;
    use std::borrow::Cow;
    use std::sync::mpsc::{Receiver, Sender, channel};

    /// Long enough for any wait on a busy machine; a test waits that long only when it is about to fail.
    const PATIENCE: Duration = Duration::from_secs(60);
    /// A period that never comes during a test.
    const NEVER: Duration = Duration::from_secs(24 * 3600);

    #[derive(Debug, PartialEq)]
    enum Seen {
        Export(Vec<String>),
        Flush,
        Shutdown,
        Resource(String),
    }

    /// An exporter that reports every call; with a gate, an export waits until the gate opens.
    #[derive(Debug)]
    struct Recorder {
        seen: Mutex<Sender<Seen>>,
        gate: Option<Arc<(Mutex<bool>, Condvar)>>,
        /// The first export panics.
        panics: AtomicBool,
    }

    impl SpanExporter for Recorder {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            if let Some(gate) = &self.gate {
                let (open, cv) = &**gate;
                let open = open.lock().unwrap();
                drop(cv.wait_while(open, |open| !*open).unwrap());
            }
            if self.panics.swap(false, Ordering::Relaxed) {
                panic!("a planted panic");
            }
            if batch.iter().any(|s| s.name == "fail") {
                return Err(OTelSdkError::InternalFailure("a planted failure".into()));
            }
            let names = batch.iter().map(|s| s.name.to_string()).collect();
            let _ = self.seen.lock().unwrap().send(Seen::Export(names));
            Ok(())
        }
        fn force_flush(&self) -> OTelSdkResult {
            let _ = self.seen.lock().unwrap().send(Seen::Flush);
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            let _ = self.seen.lock().unwrap().send(Seen::Shutdown);
            Ok(())
        }
        fn set_resource(&mut self, resource: &Resource) {
            let name = resource
                .get(&opentelemetry::Key::from_static_str("service.name"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            let _ = self.seen.lock().unwrap().send(Seen::Resource(name));
        }
    }

    fn queue(
        max_queue_size: usize,
        max_export_batch_size: usize,
        schedule_delay: Duration,
        gate: Option<Arc<(Mutex<bool>, Condvar)>>,
    ) -> (BatchQueue, Receiver<Seen>) {
        queue_panicking_first(
            false,
            max_queue_size,
            max_export_batch_size,
            schedule_delay,
            gate,
        )
    }

    /// [`queue`], whose exporter's first export panics when `panics`.
    fn queue_panicking_first(
        panics: bool,
        max_queue_size: usize,
        max_export_batch_size: usize,
        schedule_delay: Duration,
        gate: Option<Arc<(Mutex<bool>, Condvar)>>,
    ) -> (BatchQueue, Receiver<Seen>) {
        let (tx, rx) = channel();
        let exporter = Recorder {
            seen: Mutex::new(tx),
            gate,
            panics: AtomicBool::new(panics),
        };
        let config = QueueConfig {
            max_queue_size,
            max_export_batch_size,
            schedule_delay,
        };
        (BatchQueue::new(exporter, config), rx)
    }

    fn named(i: usize) -> SpanData {
        let mut s = span(Status::Unset);
        s.name = Cow::Owned(format!("s{i}"));
        s
    }

    fn names(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("s{i}")).collect()
    }

    fn next(rx: &Receiver<Seen>) -> Seen {
        rx.recv_timeout(PATIENCE).expect("the batch thread reports")
    }

    /// A full batch goes out without waiting for the period, in batches, in order.
    #[test]
    fn a_full_batch_is_exported_at_once_and_in_order() {
        let (q, rx) = queue(100, 3, NEVER, None);
        for i in 0..7 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        assert_eq!(next(&rx), Seen::Export(names(0..3)));
        assert_eq!(next(&rx), Seen::Export(names(3..6)));
        // The seventh waits for a flush.
        q.force_flush().expect("done");
        assert_eq!(next(&rx), Seen::Export(names(6..7)));
        assert_eq!(next(&rx), Seen::Flush);
        assert!(rx.try_recv().is_err());
    }

    /// With the exports stuck, the queue holds `max_queue_size` spans, those being exported included, and drops the
    /// rest, saying why; once the exports resume, every span it held goes out, each once, in batches of at most
    /// `max_export_batch_size`.
    #[test]
    fn a_full_queue_drops_and_keeps_what_it_holds() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (q, rx) = queue(4, 2, NEVER, Some(gate.clone()));
        // Two go out at once (and stick at the gate); two more fill the queue.
        for i in 0..2 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        // Wait until the batch thread took the first batch: the queue is empty again.
        let deadline = Instant::now() + PATIENCE;
        while !lock(&q.shared.state).spans.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the batch thread never took its batch"
            );
            std::thread::yield_now();
        }
        for i in 2..4 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        for i in 4..50 {
            assert_eq!(q.push(named(i)), Err(Dropped::Full), "span {i}");
        }
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        q.shutdown_with_timeout(PATIENCE).expect("done");
        let mut exported = Vec::new();
        while let Ok(seen) = rx.try_recv() {
            if let Seen::Export(batch) = seen {
                assert!(batch.len() <= 2, "{batch:?}");
                exported.extend(batch);
            }
        }
        assert_eq!(exported, names(0..4));
    }

    /// A flush exports every span queued before it (in batches of at most the batch size), then flushes the
    /// exporter; shutdown does the same, then shuts the exporter down, once; after it, spans are refused and a
    /// flush or a second shutdown says it is shut down.
    #[test]
    fn flush_and_shutdown_export_everything_queued_before_them() {
        let (q, rx) = queue(1000, 4, NEVER, None);
        for i in 0..3 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        q.force_flush().expect("done");
        assert_eq!(next(&rx), Seen::Export(names(0..3)));
        assert_eq!(next(&rx), Seen::Flush);
        for i in 3..13 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        q.shutdown_with_timeout(PATIENCE).expect("done");
        let mut exported = Vec::new();
        let mut shutdowns = 0;
        while let Ok(seen) = rx.try_recv() {
            match seen {
                Seen::Export(batch) => {
                    assert!(batch.len() <= 4, "{batch:?}");
                    exported.extend(batch);
                }
                Seen::Shutdown => shutdowns += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(exported, names(3..13));
        assert_eq!(shutdowns, 1);
        assert_eq!(q.push(named(99)), Err(Dropped::Closed));
        assert!(matches!(
            q.force_flush(),
            Err(OTelSdkError::AlreadyShutdown)
        ));
        assert!(matches!(
            q.shutdown_with_timeout(PATIENCE),
            Err(OTelSdkError::AlreadyShutdown)
        ));
        assert!(rx.try_recv().is_err());
    }

    /// An export that never returns holds shutdown no longer than its deadline, and a span ended meanwhile is
    /// refused, not queued behind it.
    #[test]
    fn a_stuck_export_holds_shutdown_only_until_its_deadline() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (q, _rx) = queue(10, 1, NEVER, Some(gate.clone()));
        assert_eq!(q.push(named(0)), Ok(()));
        let q = Arc::new(q);
        let (tx, rx) = channel();
        let stopping = q.clone();
        std::thread::spawn(move || {
            let _ = tx.send(stopping.shutdown_with_timeout(Duration::from_millis(50)));
        });
        // Waited for as an event: a shutdown that ignored its deadline fails here instead of hanging the test.
        let result = rx.recv_timeout(PATIENCE).expect("shutdown returns");
        assert!(
            matches!(result, Err(OTelSdkError::Timeout(_))),
            "{result:?}"
        );
        assert_eq!(q.push(named(1)), Err(Dropped::Closed));
        // Let the thread end.
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    /// A shutdown deadline too far to represent is taken as a long one, not a panic.
    #[test]
    fn an_unrepresentable_deadline_does_not_panic() {
        let (q, rx) = queue(10, 5, NEVER, None);
        assert_eq!(q.push(named(0)), Ok(()));
        q.shutdown_with_timeout(Duration::MAX).expect("done");
        assert_eq!(next(&rx), Seen::Export(names(0..1)));
        assert_eq!(next(&rx), Seen::Shutdown);
    }

    /// A backlog far larger than a batch is exported in batches, each span once, in order.
    #[test]
    fn a_large_backlog_goes_out_in_batches_in_order() {
        let (q, rx) = queue(100_000, 7, NEVER, None);
        for i in 0..20_000 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        q.shutdown_with_timeout(PATIENCE).expect("done");
        let mut exported = Vec::new();
        for seen in rx.try_iter() {
            if let Seen::Export(batch) = seen {
                assert!(batch.len() <= 7);
                exported.extend(batch);
            }
        }
        assert_eq!(exported, names(0..20_000));
    }

    /// The period exports a span that never fills a batch; the resource reaches the exporter before any export
    /// after it was set.
    #[test]
    fn the_period_exports_a_lone_span_after_the_resource() {
        let (q, rx) = queue(10, 5, Duration::from_millis(20), None);
        q.set_resource(
            &Resource::builder_empty()
                .with_service_name("checkout")
                .build(),
        );
        assert_eq!(q.push(named(0)), Ok(()));
        let mut seen = Vec::new();
        while !seen.contains(&Seen::Export(names(0..1))) {
            seen.push(next(&rx));
        }
        assert_eq!(
            seen.first(),
            Some(&Seen::Resource("checkout".into())),
            "{seen:?}"
        );
        q.shutdown_with_timeout(PATIENCE).expect("done");
    }

    /// A queue dropped without shutdown still exports what waits, then its thread ends.
    #[test]
    fn a_queue_dropped_without_shutdown_exports_what_waits() {
        let (q, rx) = queue(10, 5, NEVER, None);
        assert_eq!(q.push(named(0)), Ok(()));
        drop(q);
        assert_eq!(next(&rx), Seen::Export(names(0..1)));
        assert_eq!(next(&rx), Seen::Shutdown);
    }

    /// An export that panics costs its batch, and the thread goes on with the next.
    #[test]
    fn a_panicking_export_costs_its_batch_only() {
        let (q, rx) = queue_panicking_first(true, 10, 2, NEVER, None);
        for i in 0..2 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        // Whether the full batch or the flush sent it, the panicking batch is done with when the flush returns.
        let _ = q.force_flush();
        for i in 2..4 {
            assert_eq!(q.push(named(i)), Ok(()));
        }
        q.force_flush().expect("done");
        assert_eq!(next(&rx), Seen::Flush);
        assert_eq!(next(&rx), Seen::Export(names(2..4)));
        assert_eq!(next(&rx), Seen::Flush);
        assert!(rx.try_recv().is_err());
    }

    /// A flush asked for while a round is exporting spans queued before it hears of that round's failure.
    #[test]
    fn a_flush_hears_of_a_failure_in_the_round_under_way() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (q, _rx) = queue(10, 1, NEVER, Some(gate.clone()));
        let mut failing = named(0);
        failing.name = Cow::Borrowed("fail");
        assert_eq!(q.push(failing), Ok(()));
        let q = Arc::new(q);
        let wait_until = |what: &str, done: &dyn Fn(&State) -> bool| {
            let deadline = Instant::now() + PATIENCE;
            while !done(&lock(&q.shared.state)) {
                assert!(Instant::now() < deadline, "{what}");
                std::thread::yield_now();
            }
        };
        wait_until("the batch thread takes the span", &|s| s.spans.is_empty());
        let (tx, rx) = channel();
        let flushing = q.clone();
        std::thread::spawn(move || {
            let _ = tx.send(flushing.force_flush());
        });
        wait_until("the flush is asked for", &|s| !s.flushes.is_empty());
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let result = rx.recv_timeout(PATIENCE).expect("the flush returns");
        assert!(
            matches!(&result, Err(OTelSdkError::InternalFailure(e)) if e.contains("planted")),
            "{result:?}"
        );
        // Told once: the next flush has nothing to report.
        q.force_flush().expect("done");
    }

    /// Spans ended on many threads at once are each exported once: none lost, none twice.
    #[test]
    fn spans_from_many_threads_are_each_exported_once() {
        let (q, rx) = queue(100_000, 64, Duration::from_millis(1), None);
        let q = Arc::new(q);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        assert_eq!(q.push(named(t * 1000 + i)), Ok(()));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        q.shutdown_with_timeout(PATIENCE).expect("done");
        let mut exported: Vec<String> = rx
            .try_iter()
            .flat_map(|seen| match seen {
                Seen::Export(batch) => {
                    assert!(batch.len() <= 64);
                    batch
                }
                _ => Vec::new(),
            })
            .collect();
        exported.sort();
        let mut expected: Vec<String> = (0..4)
            .flat_map(|t| (0..500).map(move |i| format!("s{}", t * 1000 + i)))
            .collect();
        expected.sort();
        assert_eq!(exported, expected);
    }

    /// Sizes the settings could never give still make a working queue.
    #[test]
    fn zero_sizes_are_taken_as_one() {
        let (q, rx) = queue(0, 0, NEVER, None);
        assert_eq!(q.push(named(0)), Ok(()));
        assert_eq!(next(&rx), Seen::Export(names(0..1)));
        q.shutdown_with_timeout(PATIENCE).expect("done");
    }
}

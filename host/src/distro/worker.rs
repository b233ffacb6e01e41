//! Runs a distro's exporter and batch-processor calls on a thread of their own with a deadline: a component that
//! hangs costs one stuck thread and a counted failure, never the batch thread, the application's shutdown or the
//! other exporters.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::distro::faults::{Component, Faults};
use abi_stable::std_types::RResult;
use ndotel_api::ffi::FfiError;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};

type Job = Box<dyn FnOnce() + Send>;

/// Why a call did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stuck {
    /// A previous call has not returned yet.
    Busy,
    /// The call did not return in time (it goes on in the background).
    TimedOut(Duration),
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stuck::Busy => f.write_str("still stuck in an earlier call; skipped"),
            Stuck::TimedOut(d) => write!(
                f,
                "timed out after {d:?} (it hangs; later calls are skipped until it returns)"
            ),
        }
    }
}

/// Why a [`with_deadline`] call gave no result.
#[derive(Debug)]
pub(crate) enum Missed {
    /// No thread could be started for the call.
    NoThread(std::io::Error),
    /// The call did not return in time (it goes on in the background).
    TimedOut(Duration),
}

impl std::fmt::Display for Missed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missed::NoThread(e) => write!(f, "cannot start a thread for it: {e}"),
            Missed::TimedOut(d) => write!(f, "did not return within {d:?}"),
        }
    }
}

/// One worker thread with a deadline per call.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
    busy: Arc<AtomicBool>,
    timeout: Duration,
}

impl Worker {
    pub(crate) fn new(name: &str, timeout: Duration) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })?;
        Ok(Worker {
            jobs,
            busy: Arc::new(AtomicBool::new(false)),
            timeout,
        })
    }

    /// Runs `f` on the worker and waits for it up to the deadline.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stuck> {
        self.start(f)?
            .recv_timeout(self.timeout)
            .map_err(|_| Stuck::TimedOut(self.timeout))
    }

    /// Runs `f` on the worker and waits for it as long as `keep_waiting` (asked once per deadline) says so.
    pub(crate) fn run_while<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
        keep_waiting: impl Fn() -> bool,
    ) -> Result<T, Stuck> {
        let answer = self.start(f)?;
        loop {
            match answer.recv_timeout(self.timeout) {
                Ok(value) => return Ok(value),
                Err(mpsc::RecvTimeoutError::Timeout) if keep_waiting() => {}
                Err(_) => return Err(Stuck::TimedOut(self.timeout)),
            }
        }
    }

    /// Whether a call is still running (it may be stuck).
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    fn start<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<mpsc::Receiver<T>, Stuck> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(Stuck::Busy);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let busy = self.busy.clone();
        let job: Job = Box::new(move || {
            let result = f();
            // Clear `busy` before answering: a caller that has its answer may call again at once, and must not find
            // the worker still marked busy by the call that just returned.
            busy.store(false, Ordering::Release);
            let _ = tx.send(result);
        });
        if self.jobs.send(job).is_err() {
            self.busy.store(false, Ordering::Release);
            return Err(Stuck::Busy);
        }
        Ok(rx)
    }
}

/// Runs `f` on a fresh thread called `name` and waits for it up to `timeout`: for one-off calls into distro code at
/// start-up (`init`, `resource()`, component constructors), which must not hang the application's start.
/// A call that times out goes on in the background; its result is discarded.
pub(crate) fn with_deadline<T: Send + 'static>(
    name: &str,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Missed> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(Missed::NoThread)?;
    rx.recv_timeout(timeout)
        .map_err(|_| Missed::TimedOut(timeout))
}

/// Calls a distro component on `worker`, counting a failure, a panic or a hang against `component`.
pub(crate) fn call_component<C: Send + Sync + 'static>(
    worker: &Worker,
    target: &Arc<C>,
    faults: &Faults,
    component: Component,
    f: impl FnOnce(&C) -> RResult<(), FfiError> + Send + 'static,
) -> OTelSdkResult {
    let target = target.clone();
    match worker.run(move || f(&target)) {
        Ok(RResult::ROk(())) => Ok(()),
        Ok(RResult::RErr(e)) => {
            faults.record(component, &e);
            Err(OTelSdkError::InternalFailure(e.to_string()))
        }
        Err(stuck) => {
            faults.record(component, &stuck);
            Err(OTelSdkError::InternalFailure(stuck.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hanging_call_times_out_and_later_calls_are_skipped_until_it_returns() {
        let w = Worker::new("test", Duration::from_millis(50)).unwrap();
        assert_eq!(w.run(|| 7).unwrap(), 7);
        let (release, wait) = mpsc::channel::<()>();
        assert_eq!(
            w.run(move || wait.recv().ok()).unwrap_err(),
            Stuck::TimedOut(Duration::from_millis(50))
        );
        assert_eq!(w.run(|| 1).unwrap_err(), Stuck::Busy);
        release.send(()).unwrap();
        // Wait for the stuck call to return (an event, not a sleep): the worker answers again once it has.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match w.run(|| 2) {
                Ok(v) => break assert_eq!(v, 2),
                Err(_) if std::time::Instant::now() < deadline => std::thread::yield_now(),
                Err(e) => panic!("the worker never recovered: {e}"),
            }
        }
    }

    #[test]
    fn back_to_back_calls_never_find_the_worker_busy() {
        // The race: the answer used to be sent before `busy` was cleared, so an immediate next call was refused.
        let w = Worker::new("test", Duration::from_secs(60)).unwrap();
        for i in 0..20_000u32 {
            assert_eq!(w.run(move || i), Ok(i), "call {i} was refused");
        }
    }
}

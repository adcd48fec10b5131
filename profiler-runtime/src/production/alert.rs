//! SLA alerts: a callback for each request slower than its root's SLA threshold
//! ([`sampling::set_sla`]), rate-limited, run on a background thread.
//!
//! The request's thread only hands the violation to a bounded queue (and only when a callback is
//! set); the thread `profiler-alerts` applies the rate limit, builds the trace of tail-recorded
//! requests, calls the callback, and writes a flight-recorder dump if asked to
//! ([`dump_on_alert`]). A full queue or an exhausted rate limit counts the violation as
//! suppressed ([`stats`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::collect::calibration;
use crate::collect::profile::Profile;
use crate::export::{ExportFilesError, Format};
use crate::production::sampling::{self, KeptRequest};

/// One request that broke its root's SLA.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Violation {
    /// The request's root name.
    pub root: String,
    /// How long the request took.
    pub duration: Duration,
    /// The SLA threshold it broke.
    pub threshold: Duration,
    /// The name of the thread that handled it.
    pub thread: String,
    /// The request's trace, when it was recorded (tail mode or aggregation on, and it fitted the
    /// buffer): one timeline, the request's root span with its calls.
    pub trace: Option<Profile>,
    /// Violations of the same root suppressed by the rate limit since the previous delivered one.
    pub suppressed_before: u64,
}

/// Counters of the alert machinery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Violations handed to the callback.
    pub delivered: u64,
    /// Violations not handed over: rate limit, full queue, or a callback that panicked.
    pub suppressed: u64,
    /// Flight-recorder dumps written after an alert ([`dump_on_alert`]).
    pub dumps: u64,
    /// Dumps that could not be written.
    pub dump_errors: u64,
}

type Callback = Arc<dyn Fn(&Violation) + Send + Sync>;

/// The rate limit: at most `max` alerts per root per `per`.
#[derive(Clone, Copy, Debug)]
struct RateLimit {
    max: u32,
    per: Duration,
}

#[derive(Default)]
struct Shared {
    callback: RwLock<Option<Callback>>,
    limit: Mutex<Option<RateLimit>>,
    dump_prefix: Mutex<Option<PathBuf>>,
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static DELIVERED: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
static DUMPS: AtomicU64 = AtomicU64::new(0);
static DUMP_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Violations reported and not yet handled by the alert thread.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// Default rate limit: 5 alerts per root per minute.
pub const DEFAULT_RATE_LIMIT: (u32, Duration) = (5, Duration::from_secs(60));

const QUEUE: usize = 1024;

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(Shared::default)
}

struct Pending {
    root: &'static str,
    duration_ticks: u64,
    threshold_ns: u64,
    thread: String,
    kept: Option<Arc<KeptRequest>>,
}

fn sender() -> Option<&'static SyncSender<Pending>> {
    static SENDER: OnceLock<Option<SyncSender<Pending>>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(QUEUE);
            std::thread::Builder::new()
                .name("profiler-alerts".into())
                .spawn(move || run(&rx))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Sets the callback that receives SLA violations (replacing any previous one) and starts the
/// alert thread. The callback runs on the thread `profiler-alerts`, never on a request's thread;
/// a panic in it is caught and counted as a suppressed alert.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use profiler_runtime::{production::alert, production::sampling};
/// sampling::set_sla("doc_checkout", Some(Duration::from_millis(50)));
/// alert::on_sla_violation(|v| {
///     // page someone, log it, write v.trace somewhere
///     let _ = (v.root.as_str(), v.duration, v.trace.is_some());
/// });
/// ```
pub fn on_sla_violation(callback: impl Fn(&Violation) + Send + Sync + 'static) {
    sampling::set_violation_hook(report);
    *shared()
        .callback
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(callback));
    if sender().is_some() {
        ACTIVE.store(true, Ordering::Release);
    }
}

/// Removes the callback; violations are still counted in the aggregates.
pub fn clear_callback() {
    ACTIVE.store(false, Ordering::Release);
    *shared()
        .callback
        .write()
        .unwrap_or_else(PoisonError::into_inner) = None;
}

/// At most `max` alerts per root in any window of `per` (default [`DEFAULT_RATE_LIMIT`]); the
/// others are counted as suppressed and reported with the next delivered one.
pub fn set_rate_limit(max: u32, per: Duration) {
    *shared()
        .limit
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(RateLimit { max, per });
}

/// After each delivered alert, write the flight recorder to `prefix` (plus `.trace.json` and
/// `.speedscope.json`, see [`sampling::dump_flight_recorder`]);
/// `None` stops it.
pub fn dump_on_alert(prefix: Option<PathBuf>) {
    *shared()
        .dump_prefix
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = prefix;
}

/// The alert counters.
pub fn stats() -> AlertStats {
    AlertStats {
        delivered: DELIVERED.load(Ordering::Relaxed),
        suppressed: SUPPRESSED.load(Ordering::Relaxed),
        dumps: DUMPS.load(Ordering::Relaxed),
        dump_errors: DUMP_ERRORS.load(Ordering::Relaxed),
    }
}

/// Waits until every violation reported so far has been handled (delivered or suppressed), or
/// `timeout` passes. Returns whether the queue is empty.
pub fn wait_delivered(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while PENDING.load(Ordering::Acquire) > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Called by a request's thread when it broke its SLA: hands the violation over without blocking.
pub(crate) fn report(
    root: &'static str,
    duration_ticks: u64,
    threshold_ns: u64,
    kept: Option<Arc<KeptRequest>>,
) {
    if !ACTIVE.load(Ordering::Acquire) {
        return;
    }
    let Some(tx) = sender() else { return };
    let thread = kept.as_ref().map_or_else(
        || {
            std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned()
        },
        |k| k.thread_name().to_owned(),
    );
    PENDING.fetch_add(1, Ordering::AcqRel);
    let pending = Pending {
        root,
        duration_ticks,
        threshold_ns,
        thread,
        kept,
    };
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(pending) {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        PENDING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The alert thread: rate limit, build, deliver, dump.
fn run(rx: &Receiver<Pending>) {
    // Per root: (window start, delivered in window, suppressed since the last delivery).
    let mut windows: HashMap<&'static str, (Instant, u32, u64)> = HashMap::new();
    for pending in rx {
        handle(&mut windows, pending);
        PENDING.fetch_sub(1, Ordering::AcqRel);
    }
}

fn handle(windows: &mut HashMap<&'static str, (Instant, u32, u64)>, pending: Pending) {
    let limit = shared()
        .limit
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or(RateLimit {
            max: DEFAULT_RATE_LIMIT.0,
            per: DEFAULT_RATE_LIMIT.1,
        });
    let now = Instant::now();
    let window = windows.entry(pending.root).or_insert((now, 0, 0));
    if now.duration_since(window.0) >= limit.per {
        *window = (now, 0, window.2);
    }
    if window.1 >= limit.max {
        window.2 += 1;
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    window.1 += 1;
    let suppressed_before = std::mem::take(&mut window.2);
    let callback = shared()
        .callback
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let Some(callback) = callback else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let violation = Violation {
        root: pending.root.to_owned(),
        duration: Duration::from_nanos(calibration::ticks_to_ns(pending.duration_ticks)),
        threshold: Duration::from_nanos(pending.threshold_ns),
        thread: pending.thread,
        trace: pending
            .kept
            .map(|kept| sampling::requests_profile(std::slice::from_ref(&kept))),
        suppressed_before,
    };
    let delivered =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&violation))).is_ok();
    if !delivered {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    DELIVERED.fetch_add(1, Ordering::Relaxed);
    let prefix = shared()
        .dump_prefix
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if let Some(prefix) = prefix {
        let result: Result<_, ExportFilesError> =
            sampling::dump_flight_recorder(&prefix, &[Format::ChromeTrace, Format::Speedscope]);
        match result {
            Ok(_) => DUMPS.fetch_add(1, Ordering::Relaxed),
            Err(_) => DUMP_ERRORS.fetch_add(1, Ordering::Relaxed),
        };
    }
}

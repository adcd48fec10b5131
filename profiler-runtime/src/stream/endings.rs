//! How a run ends with its streamed file complete: SIGINT, SIGTERM and SIGHUP, and
//! `std::process::exit`.
//!
//! The signal handler does only async-signal-safe work: it stores the signal number in an atomic
//! and writes one byte to a pipe that wakes the collector thread. The collector then completes
//! the file (its last drain included) and lets the signal take its ordinary course: when the
//! signal's disposition was the default one, it restores that and raises the signal again, so the
//! process ends as it would have (killed by SIGINT, exit status 130 in a shell). When the program
//! had a handler of its own for the signal (installed before `init`), ours calls it after noting
//! the signal, and the collector only writes out and syncs what it holds, leaving the stream open:
//! the program decides whether to end. The same holds when the program installs its own handler
//! after `init` (the collector sees that the handler in place is no longer ours). `process::exit`
//! runs the `atexit` hook, which completes the file on the exiting thread.
//!
//! Programs that handle signals themselves can opt out (`Config::signals(false)`,
//! `PROFILER_SIGNALS=0`); the `atexit` hook is installed either way.

use std::time::Duration;

/// What woke the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The interval passed.
    Timeout,
    /// Its guard asked it to stop.
    Stop,
    /// One of the handled signals arrived.
    Signal(i32),
}

#[cfg(unix)]
pub(crate) use imp::{
    ends_process, install_at_exit, install_signals, reraise, signal_name, stop, wait,
};

#[cfg(not(unix))]
pub(crate) use fallback::{
    ends_process, install_at_exit, install_signals, reraise, signal_name, stop, wait,
};

#[cfg(unix)]
#[allow(unsafe_code)]
mod imp {
    use super::{Duration, Wake};
    use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
    use std::sync::Once;

    /// The signals whose default action ends the process and that a terminal, a service manager
    /// or a CI runner sends.
    const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    /// The pipe's ends (-1 until created).
    static READ_FD: AtomicI32 = AtomicI32::new(-1);
    static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
    /// The last signal received and not yet handled (0: none).
    static PENDING: AtomicI32 = AtomicI32::new(0);
    /// Per entry of `SIGNALS`: the program's own handler (a `sa_handler` or `sa_sigaction`
    /// address) to call after ours, 0 for none; and whether it wants `siginfo`.
    static CHAINED: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
    static CHAINED_SIGINFO: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];
    /// Per entry of `SIGNALS`: whether our handler was installed.
    static OURS: [AtomicBool; 3] = [const { AtomicBool::new(false) }; 3];

    /// The pipe, created once: non-blocking and close-on-exec on both ends.
    fn pipe() -> bool {
        static CREATE: Once = Once::new();
        CREATE.call_once(|| {
            let mut fds = [0 as libc::c_int; 2];
            // SAFETY: `fds` is a valid array of two ints for `pipe` to fill.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return;
            }
            for fd in fds {
                // SAFETY: `fd` is an open descriptor we own; F_GETFL/F_SETFL/F_SETFD take ints.
                unsafe {
                    let flags = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            READ_FD.store(fds[0], Ordering::Release);
            WRITE_FD.store(fds[1], Ordering::Release);
        });
        READ_FD.load(Ordering::Acquire) >= 0
    }

    /// One byte into the pipe: async-signal-safe (`write` is), and a full pipe already wakes.
    fn poke() {
        let fd = WRITE_FD.load(Ordering::Acquire);
        if fd >= 0 {
            let byte = 1u8;
            // SAFETY: `fd` is the pipe's write end (never closed); one byte from a live local.
            unsafe {
                libc::write(fd, std::ptr::from_ref(&byte).cast(), 1);
            }
        }
    }

    extern "C" fn on_signal(
        sig: libc::c_int,
        info: *mut libc::siginfo_t,
        context: *mut libc::c_void,
    ) {
        PENDING.store(sig, Ordering::SeqCst);
        poke();
        let Some(i) = SIGNALS.iter().position(|&s| s == sig) else {
            return;
        };
        let chained = CHAINED[i].load(Ordering::Acquire);
        if chained != 0 {
            if CHAINED_SIGINFO[i].load(Ordering::Acquire) {
                // SAFETY: the address was the program's `sa_sigaction` (SA_SIGINFO was set), a
                // function of this signature that the kernel would have called with these
                // arguments.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(chained) };
                f(sig, info, context);
            } else {
                // SAFETY: the address was the program's `sa_handler`, a function of one int.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(chained) };
                f(sig);
            }
        }
    }

    /// Our handler as `sigaction` holds it.
    fn handler_address() -> libc::sighandler_t {
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_signal;
        f as *const () as libc::sighandler_t
    }

    /// Installs the handler for SIGINT, SIGTERM and SIGHUP (once; later calls do nothing). A
    /// signal the program ignores stays ignored. Returns whether the wake-up pipe exists.
    pub(crate) fn install_signals() -> bool {
        static INSTALL: Once = Once::new();
        if !pipe() {
            return false;
        }
        INSTALL.call_once(|| {
            for (i, &sig) in SIGNALS.iter().enumerate() {
                // SAFETY: all-zero is a valid `sigaction` (no handler, empty mask, no flags).
                let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
                // SAFETY: a null new action only reads the current one into `old`.
                if unsafe { libc::sigaction(sig, std::ptr::null(), &raw mut old) } != 0 {
                    continue;
                }
                if old.sa_sigaction == libc::SIG_IGN {
                    continue;
                }
                if old.sa_sigaction != libc::SIG_DFL {
                    CHAINED_SIGINFO[i]
                        .store(old.sa_flags & libc::SA_SIGINFO != 0, Ordering::Release);
                    CHAINED[i].store(old.sa_sigaction, Ordering::Release);
                }
                // SAFETY: as above.
                let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
                action.sa_sigaction = handler_address();
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                // SAFETY: `sa_mask` is a valid signal set to empty.
                unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
                // SAFETY: a valid action whose handler only does async-signal-safe work.
                if unsafe { libc::sigaction(sig, &raw const action, std::ptr::null_mut()) } == 0 {
                    OURS[i].store(true, Ordering::Release);
                }
            }
        });
        true
    }

    /// Waits for a signal, a stop of this collector (`stopping`, set by [`stop`]) or the
    /// interval. Each collector has its own flag: while two guards stream (the second records
    /// into the first one's file), a stop is for one collector, and the other may be the one that
    /// empties the pipe, so the flag is checked after every wake, a timeout included.
    pub(crate) fn wait(interval: Duration, stopping: &AtomicBool) -> Wake {
        pipe();
        if stopping.load(Ordering::Acquire) {
            return Wake::Stop;
        }
        let fd = READ_FD.load(Ordering::Acquire);
        if fd < 0 {
            std::thread::sleep(interval);
        } else {
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = interval.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&raw mut poll, 1, ms) };
            if ready > 0 {
                let mut sink = [0u8; 64];
                // SAFETY: reading into a live local buffer from our non-blocking pipe.
                while unsafe { libc::read(fd, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
            }
        }
        match PENDING.swap(0, Ordering::AcqRel) {
            0 if stopping.load(Ordering::Acquire) => Wake::Stop,
            0 => Wake::Timeout,
            sig => Wake::Signal(sig),
        }
    }

    /// Asks the collector waiting with `stopping` to stop, waking it.
    pub(crate) fn stop(stopping: &AtomicBool) {
        stopping.store(true, Ordering::Release);
        poke();
    }

    /// Whether `sig` should end the process once the file is complete: its disposition was the
    /// default one and our handler is still the one in place. False when the program handles
    /// the signal itself (a handler before ours, which ours called, or one installed after).
    pub(crate) fn ends_process(sig: i32) -> bool {
        let Some(i) = SIGNALS.iter().position(|&s| s == sig) else {
            return false;
        };
        if CHAINED[i].load(Ordering::Acquire) != 0 || !OURS[i].load(Ordering::Acquire) {
            return false;
        }
        // SAFETY: all-zero is a valid `sigaction`.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one.
        let read = unsafe { libc::sigaction(sig, std::ptr::null(), &raw mut current) };
        read == 0 && current.sa_sigaction == handler_address()
    }

    /// Restores `sig`'s default disposition and raises it: the process ends as it would have
    /// without us.
    pub(crate) fn reraise(sig: i32) {
        // SAFETY: restoring the default disposition, then raising the signal on this thread;
        // its default action ends the process.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    extern "C" fn at_exit() {
        crate::stream_exit_hook();
    }

    /// Registers the `atexit` hook (once).
    pub(crate) fn install_at_exit() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            // SAFETY: registering a function that takes no arguments and does not unwind (the
            // hook catches panics).
            unsafe {
                libc::atexit(at_exit);
            }
        });
    }

    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub(crate) fn signal_name(sig: i32) -> &'static str {
        match sig {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }
}

#[cfg(not(unix))]
mod fallback {
    use super::{Duration, Wake};
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(crate) fn install_signals() -> bool {
        false
    }
    pub(crate) fn install_at_exit() {}
    pub(crate) fn wait(interval: Duration, stopping: &AtomicBool) -> Wake {
        let step = interval.min(Duration::from_millis(5));
        let mut waited = Duration::ZERO;
        while waited < interval {
            if stopping.load(Ordering::Acquire) {
                return Wake::Stop;
            }
            std::thread::sleep(step);
            waited += step;
        }
        Wake::Timeout
    }
    pub(crate) fn stop(stopping: &AtomicBool) {
        stopping.store(true, Ordering::Release);
    }
    pub(crate) fn ends_process(_sig: i32) -> bool {
        false
    }
    pub(crate) fn reraise(_sig: i32) {}
    pub(crate) fn signal_name(_sig: i32) -> &'static str {
        "a signal"
    }
}

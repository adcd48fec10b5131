//! Profiles built by hand, whose true counts and times are known by construction.
//!
//! ```
//! use profiler_tests::synthetic::{call, ProfileBuilder};
//! let mut b = ProfileBuilder::new(1_000);
//! let main = b.function("main");
//! let parse = b.function("parse");
//! b.thread("main", vec![call(main, 0, 1_000, vec![call(parse, 100, 300, vec![])])]);
//! let profile = b.build();
//! assert_eq!(profile.span_count(), 2);
//! ```

use profiler_runtime::{
    AsyncSpan, ClockInfo, ClockKind, FunctionEntry, FunctionKind, Profile, Span, SpanFlags,
    ThreadTimeline,
};

/// One call and the calls it made, in nanoseconds.
#[derive(Clone, Debug)]
pub struct Call {
    /// Index of the function.
    pub function: u32,
    /// Start.
    pub start_ns: u64,
    /// End.
    pub end_ns: u64,
    /// Flags of the span.
    pub flags: SpanFlags,
    /// The calls it made, in order.
    pub children: Vec<Call>,
}

/// A call of `function` from `start_ns` to `end_ns` that made `children`.
pub fn call(function: u32, start_ns: u64, end_ns: u64, children: Vec<Call>) -> Call {
    Call {
        function,
        start_ns,
        end_ns,
        flags: SpanFlags::default(),
        children,
    }
}

impl Call {
    /// Marks the span as continued from an earlier profile.
    #[must_use]
    pub fn continued(mut self) -> Call {
        self.flags.continued = true;
        self
    }

    /// Marks the span as still open at the flush.
    #[must_use]
    pub fn incomplete(mut self) -> Call {
        self.flags.incomplete = true;
        self
    }
}

/// Builds a [`Profile`] from functions, threads of nested calls and async lifetimes.
#[derive(Debug)]
pub struct ProfileBuilder {
    profile: Profile,
}

impl ProfileBuilder {
    /// An empty profile from 0 to `end_ns`.
    pub fn new(end_ns: u64) -> ProfileBuilder {
        ProfileBuilder {
            profile: Profile {
                functions: Vec::new(),
                threads: Vec::new(),
                async_spans: Vec::new(),
                start_ns: 0,
                end_ns,
                epoch_unix_ns: 1_795_595_063_000_000_000,
                clock: ClockInfo {
                    kind: ClockKind::Monotonic,
                    ticks_per_second: 1e9,
                },
                dropped_events: 0,
                process_name: "synthetic".to_owned(),
                pid: 4242,
                build: None,
            },
        }
    }

    /// Adds a synchronous function and returns its index.
    pub fn function(&mut self, name: &str) -> u32 {
        self.function_of_kind(name, FunctionKind::Function)
    }

    /// Adds a function of `kind` and returns its index.
    pub fn function_of_kind(&mut self, name: &str, kind: FunctionKind) -> u32 {
        let line = self.profile.functions.len() as u32 + 1;
        self.profile.functions.push(FunctionEntry {
            name: name.to_owned(),
            module_path: "synthetic".to_owned(),
            file: "src/synthetic.rs".to_owned(),
            line,
            kind,
            budget_ns: None,
        });
        line - 1
    }

    /// Adds a thread (tid = its position + 1) whose root calls are `roots`.
    pub fn thread(&mut self, name: &str, roots: Vec<Call>) -> &mut ProfileBuilder {
        let mut spans = Vec::new();
        // Depth-first, iteratively: (call, parent index, depth).
        let mut stack: Vec<(Call, Option<u32>, u32)> =
            roots.into_iter().rev().map(|c| (c, None, 0)).collect();
        while let Some((call, parent, depth)) = stack.pop() {
            let index = spans.len() as u32;
            spans.push(Span {
                function: call.function,
                start_ns: call.start_ns,
                end_ns: call.end_ns,
                depth,
                parent,
                flags: call.flags,
            });
            for child in call.children.into_iter().rev() {
                stack.push((child, Some(index), depth + 1));
            }
        }
        let tid = self.profile.threads.len() as u32 + 1;
        self.profile.threads.push(ThreadTimeline {
            tid,
            name: name.to_owned(),
            spans,
            dropped_events: 0,
            exited: false,
        });
        self
    }

    /// Adds the lifetime of one future of `function`.
    pub fn future(
        &mut self,
        function: u32,
        start_ns: u64,
        end_ns: u64,
        cancelled: bool,
    ) -> &mut ProfileBuilder {
        let id = self.profile.async_spans.len() as u64 + 1;
        self.profile.async_spans.push(AsyncSpan {
            function,
            id,
            start_ns,
            end_ns,
            start_tid: 1,
            end_tid: 1,
            cancelled,
            flags: SpanFlags::default(),
        });
        self
    }

    /// Sets the events lost on `tid` (and in the total).
    pub fn dropped(&mut self, tid: u32, events: u64) -> &mut ProfileBuilder {
        if let Some(t) = self.profile.threads.iter_mut().find(|t| t.tid == tid) {
            t.dropped_events = events;
        }
        self.profile.dropped_events += events;
        self
    }

    /// The profile, checked well formed.
    ///
    /// # Panics
    ///
    /// If the calls given do not nest.
    pub fn build(&self) -> Profile {
        self.profile
            .validate()
            .expect("synthetic profile is well formed");
        self.profile.clone()
    }
}

//! Tutorial 02: every place `#[profile]` goes (free functions, methods, `impl` blocks, trait
//! impls, async functions), `profile_scope!` for a block, `ProfileContext` for a request, and
//! `#[profile(name = ...)]`, on a small full-text search service.
//!
//! Run: `cargo run --release -p profiler-examples --example attributes_and_scopes`
//! Writes `target/profiles/attributes_and_scopes.trace.json` and `.speedscope.json`, or under
//! `$PROFILER_OUTPUT`.

use std::collections::HashMap;
use std::sync::Arc;

use profiler_examples::logs::Rng;
use profiler_examples::{measure, output_prefix};
use profiler_runtime::{profile, profile_scope, ProfileContext};

const WORDS: &[&str] = &[
    "latency",
    "profile",
    "thread",
    "buffer",
    "span",
    "flush",
    "timeline",
    "export",
    "trace",
    "async",
    "future",
    "poll",
    "lock",
    "queue",
    "request",
    "budget",
    "sample",
    "tail",
    "metric",
    "histogram",
    "cache",
    "index",
    "query",
    "token",
    "score",
    "merge",
    "shard",
    "batch",
];

// ANCHOR: free_fn
/// Splits a text into lowercase words: a plain free function.
#[profile]
fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}
// ANCHOR_END: free_fn

/// A generated document: `words` words drawn from [`WORDS`].
fn make_document(rng: &mut Rng, words: usize) -> String {
    let mut text = String::with_capacity(words * 8);
    for i in 0..words {
        if i > 0 {
            text.push(if i % 12 == 0 { '.' } else { ' ' });
        }
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    text
}

// ANCHOR: impl_block
/// An inverted index: word to (document, occurrences).
#[derive(Debug, Default)]
struct Index {
    postings: HashMap<String, Vec<(u32, u32)>>,
    documents: u32,
}

/// Every method of the block is recorded as `attributes_and_scopes::Index::<method>`.
#[profile]
impl Index {
    fn add(&mut self, text: &str) {
        let id = self.documents;
        self.documents += 1;
        let mut counts: HashMap<String, u32> = HashMap::new();
        for word in tokenize(text) {
            *counts.entry(word).or_default() += 1;
        }
        // A scope: the rest of this block is its own span, nested under `Index::add`.
        profile_scope!("append postings");
        for (word, n) in counts {
            self.postings.entry(word).or_default().push((id, n));
        }
    }

    fn lookup(&self, word: &str) -> &[(u32, u32)] {
        self.postings.get(word).map_or(&[], Vec::as_slice)
    }

    /// Too small and too hot to be worth a span: left out of the block.
    #[profile(skip)]
    fn len(&self) -> u32 {
        self.documents
    }
}
// ANCHOR_END: impl_block

// ANCHOR: trait_impl
/// How a hit is scored; two implementations, told apart in the profile by their trait-impl names
/// (`<attributes_and_scopes::TfIdf as attributes_and_scopes::Scorer>::score`).
trait Scorer {
    fn score(&self, index: &Index, query: &[String]) -> Vec<(u32, f64)>;
}

struct TermCount;
struct TfIdf;

#[profile]
impl Scorer for TermCount {
    fn score(&self, index: &Index, query: &[String]) -> Vec<(u32, f64)> {
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for word in query {
            for &(doc, n) in index.lookup(word) {
                *scores.entry(doc).or_default() += f64::from(n);
            }
        }
        top(scores, 10)
    }
}

#[profile]
impl Scorer for TfIdf {
    fn score(&self, index: &Index, query: &[String]) -> Vec<(u32, f64)> {
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for word in query {
            let postings = index.lookup(word);
            if postings.is_empty() {
                continue;
            }
            let idf = (f64::from(index.len()) / postings.len() as f64).ln_1p();
            for &(doc, n) in postings {
                *scores.entry(doc).or_default() += f64::from(n).sqrt() * idf;
            }
        }
        top(scores, 10)
    }
}
// ANCHOR_END: trait_impl

// ANCHOR: named
/// A method instrumented on its own, under a name chosen for the profile.
#[profile(name = "search::rank")]
fn top(scores: HashMap<u32, f64>, n: usize) -> Vec<(u32, f64)> {
    let mut all: Vec<(u32, f64)> = scores.into_iter().collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(n);
    all
}
// ANCHOR_END: named

// ANCHOR: async_fns
/// Builds one shard of the corpus: an async function. Each poll is a span on the thread that
/// polled it; the whole call, across awaits and threads, is one async span.
#[profile]
async fn build_shard(seed: u64, documents: usize) -> Index {
    let mut rng = Rng::new(seed);
    let mut index = Index::default();
    for n in 0..documents {
        index.add(&make_document(&mut rng, 120));
        if n % 100 == 99 {
            // Give the other shards a turn, as a real loader would between reads.
            tokio::task::yield_now().await;
        }
    }
    index
}

/// Answers one query on every shard concurrently, inside a request context.
#[profile]
async fn search(shards: Arc<Vec<Index>>, text: String) -> usize {
    let query = tokenize(&text);
    let mut tasks = Vec::new();
    for shard in 0..shards.len() {
        let shards = Arc::clone(&shards);
        let query = query.clone();
        tasks.push(tokio::spawn(async move {
            let index = &shards[shard];
            // Both scorers, so the profile compares them.
            let coarse = TermCount.score(index, &query);
            let fine = TfIdf.score(index, &query);
            coarse.len().max(fine.len())
        }));
    }
    let mut hits = 0;
    for task in tasks {
        hits += task.await.expect("scoring task");
    }
    hits
}
// ANCHOR_END: async_fns

// ANCHOR: main
fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("search-worker")
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let hits = runtime.block_on(async {
        let shards = {
            // A scope around setup, on the main thread.
            profile_scope!("load corpus");
            let builds: Vec<_> = (0..4u64)
                .map(|seed| tokio::spawn(build_shard(seed + 1, 1500)))
                .collect();
            let mut shards = Vec::new();
            for build in builds {
                shards.push(build.await.expect("shard build"));
            }
            Arc::new(shards)
        };
        let mut rng = Rng::new(99);
        let mut hits = 0;
        for _ in 0..200 {
            // One request: everything it calls nests under `api_request` in the timeline.
            let _request = ProfileContext::new("api_request");
            let text = make_document(&mut rng, 3);
            hits += search(Arc::clone(&shards), text).await;
        }
        hits
    });
    drop(runtime);

    let profile = profiler_runtime::flush();
    println!("hits: {hits}");
    for name in [
        "tokenize",
        "Index::add",
        "append postings",
        "search::rank",
        "api_request",
    ] {
        let t = measure::totals(&profile, name);
        println!(
            "{name:<20} {:>7} calls {:>12}",
            t.calls,
            measure::ms(t.total_ns)
        );
    }
    let shard = measure::async_totals(&profile, "build_shard");
    println!(
        "build_shard          {:>7} calls {:>12} wall, {} polled in {} polls",
        shard.calls,
        measure::ms(shard.wall_ns),
        measure::ms(shard.busy_ns),
        shard.polls
    );
    match measure::write_profile(&profile, &output_prefix("attributes_and_scopes"), "") {
        Ok(paths) => paths.iter().for_each(|p| println!("wrote {}", p.display())),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
// ANCHOR_END: main

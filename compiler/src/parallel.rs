//! Work spread over every core, with results in input order: reading, rendering and scanning
//! model files, and parsing a large manifest in pieces.

/// How [`parallel_map`] hands out work.
pub(crate) struct Spread {
    /// Items per grab at most: small enough to keep every core busy to the end.
    pub batch: usize,
    /// Each helper thread's stack (the calling thread works too, on its own).
    pub stack_bytes: usize,
}

/// The cores this process may use, asked once: std reads the cgroup's CPU quota from files
/// each time, which costs a small check as much as a few models.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |p| p.get()))
}

/// `f(state, i)` for every `i` in `0..n`, on up to as many threads as the machine has cores,
/// each with its own `state` from `init`; the results in the order of `i`, so nothing that
/// depends on them depends on the thread that made them.
pub(crate) fn parallel_map<S, R: Send>(
    n: usize,
    spread: Spread,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = match n.div_ceil(spread.batch.max(1)) {
        0 | 1 => 1,
        grabs => cores().min(grabs),
    };
    // At least 16 grabs a thread, so no thread is left with a last big batch while the others
    // wait (at 112 models, batches of 16 split the work 64:48).
    let batch = spread.batch.min(n.div_ceil(threads * 16)).max(1);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut state = init();
        let mut done = Vec::new();
        loop {
            let from = next.fetch_add(batch, Ordering::Relaxed);
            if from >= n {
                return done;
            }
            for i in from..(from + batch).min(n) {
                done.push((i, f(&mut state, i)));
            }
        }
    };
    let parts = std::thread::scope(|s| {
        // No helper (resource limits): the calling thread does it all.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("stir-worker".into())
                    .stack_size(spread.stack_bytes)
                    .spawn_scoped(s, work)
                    .ok()
            })
            .collect();
        let mut parts = vec![work()];
        for h in helpers {
            parts.push(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        parts
    });
    let mut out: Vec<Option<R>> = std::iter::repeat_with(|| None).take(n).collect();
    for (i, r) in parts.into_iter().flatten() {
        out[i] = Some(r);
    }
    out.into_iter().flatten().collect()
}

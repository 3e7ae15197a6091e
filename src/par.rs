//! Work spread over the cores with its results kept in input order: the analysis of
//! many feed items at once ([`crate::pipeline::Pipeline::process_items`]) and `scan`
//! over many files. Plain scoped threads: the work is a few large CPU-bound pieces,
//! and the callers' order-dependent stages (story grouping, printing) stay on the
//! calling thread (BENCHMARKS.md, "Scan over files").

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use crate::isolate::{isolate, Panicked};

/// The cores this process may use (1 when the system does not say).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` over `items` on up to `threads` threads (the caller's among them), the results
/// in the order of `items`. Items are taken a small chunk at a time from a shared
/// counter, so one slow item does not leave the other threads idle. A panic in `f` is
/// raised again on the caller with its own message once the other threads are done.
pub fn map_ordered<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    // About eight chunks per thread: enough to even out items of unequal cost, few
    // enough that taking one costs nothing beside the items.
    let chunk = items.len().div_ceil(threads * 8);
    let chunks: Vec<&[T]> = items.chunks(chunk).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = chunks.get(at) else { break };
            done.push((at, chunk.iter().map(&f).collect()));
        }
        done
    };
    let mut parts = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut parts = work();
        let mut panic = None;
        for helper in helpers {
            match helper.join() {
                Ok(done) => parts.extend(done),
                Err(payload) => {
                    panic.get_or_insert(payload);
                }
            }
        }
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        parts
    });
    parts.sort_unstable_by_key(|(at, _)| *at);
    parts.into_iter().flat_map(|(_, done)| done).collect()
}

/// Runs `work(i)` for every `i` in `0..n` on up to `threads` threads, and hands each
/// result to `then` on the calling thread in the order of `i`, as soon as it and all
/// before it are done. A panic in `work(i)` is `i`'s [`Panicked`] and the others go on
/// (as [`isolate`] does for one). At most a few results per thread wait for their
/// turn, so a slow input holds back memory of only that many. The first error `then`
/// returns stops the work (inputs being worked on are finished and dropped) and is
/// returned. With one thread, or one input, everything runs on the caller in turn.
pub fn for_each_ordered<R: Send, E>(
    n: usize,
    threads: usize,
    work: impl Fn(usize) -> R + Sync,
    mut then: impl FnMut(usize, Result<R, Panicked>) -> Result<(), E>,
) -> Result<(), E> {
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        for at in 0..n {
            then(at, isolate(|| work(at)))?;
        }
        return Ok(());
    }
    let ahead = threads * 4;
    // The next input to take, the first not yet handed to `then`, and whether to stop.
    let state = Mutex::new((0usize, 0usize, false));
    let turn = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel::<(usize, Result<R, Panicked>)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (work, turn, lock) = (&work, &turn, &lock);
            scope.spawn(move || loop {
                let at = {
                    let mut state = lock();
                    while !state.2 && state.0 < n && state.0 >= state.1 + ahead {
                        state = turn.wait(state).unwrap_or_else(|e| e.into_inner());
                    }
                    if state.2 || state.0 >= n {
                        break;
                    }
                    state.0 += 1;
                    state.0 - 1
                };
                // `then` has stopped listening: nothing more to do.
                if tx.send((at, isolate(|| work(at)))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut want = 0;
        let mut result = Ok(());
        'receive: for (at, done) in rx.iter() {
            waiting.insert(at, done);
            while let Some(done) = waiting.remove(&want) {
                if let Err(err) = then(want, done) {
                    result = Err(err);
                    break 'receive;
                }
                want += 1;
                lock().1 = want;
                turn.notify_all();
            }
        }
        lock().2 = true;
        turn.notify_all();
        // Dropping the receiver ends workers blocked on sending.
        drop(rx);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_over_threads_keeps_the_order_of_its_items() {
        let items: Vec<u64> = (0..1000).collect();
        for threads in [1, 2, 3, 8] {
            let squares = map_ordered(&items, threads, |n| n * n);
            assert_eq!(squares, items.iter().map(|n| n * n).collect::<Vec<_>>());
        }
        assert!(map_ordered(&[] as &[u8], 4, |b| *b).is_empty());
    }

    #[test]
    fn a_panic_in_a_map_is_raised_with_its_message() {
        let items: Vec<u32> = (0..100).collect();
        let err = isolate(|| {
            map_ordered(&items, 2, |n| {
                if *n == 77 {
                    panic!("item {n} is bad");
                }
                *n
            })
        })
        .unwrap_err();
        assert_eq!(err.message, "item 77 is bad");
    }

    /// Results come in input order whatever order they finish in; a panic is its
    /// input's error and the inputs after it are still worked on.
    #[test]
    fn ordered_work_hands_results_in_order_and_isolates_panics() {
        for threads in [1, 2, 4] {
            let mut seen = Vec::new();
            for_each_ordered(
                40,
                threads,
                |at| {
                    if at == 5 {
                        panic!("input {at} panicked");
                    }
                    // Early inputs finish last.
                    std::thread::sleep(std::time::Duration::from_millis((40 - at as u64) / 8));
                    at * 10
                },
                |at, done| -> Result<(), ()> {
                    seen.push((at, done.map_err(|p| p.message)));
                    Ok(())
                },
            )
            .unwrap();
            let want: Vec<_> = (0..40)
                .map(|at| {
                    let done = if at == 5 {
                        Err("input 5 panicked".to_string())
                    } else {
                        Ok(at * 10)
                    };
                    (at, done)
                })
                .collect();
            assert_eq!(seen, want, "{threads} threads");
        }
    }

    #[test]
    fn an_error_from_then_stops_the_work() {
        let worked = AtomicUsize::new(0);
        let mut handed = 0;
        let result = for_each_ordered(
            1000,
            2,
            |at| {
                worked.fetch_add(1, Ordering::Relaxed);
                at
            },
            |at, _| {
                handed += 1;
                if at == 3 {
                    Err("stdout closed")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(result, Err("stdout closed"));
        assert_eq!(handed, 4);
        // At most the window ahead of the failed input was worked on.
        assert!(worked.load(Ordering::Relaxed) <= 4 + 2 * 4 + 2);
    }
}

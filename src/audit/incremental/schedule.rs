//! Work spread over the engine's workers: items are taken in order by whichever worker is
//! free (so the costliest go first when items come sorted by cost), results come back in
//! item order, and the first failure stops the others. Each call of `f` learns which worker
//! (0..workers) makes it, so a worker can use sessions of its own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{anyhow, Result};

/// `f(worker, item)` for every item on up to `workers` threads; the results in item order,
/// or the error of the lowest-numbered item that failed.
pub fn parallel_map<T: Sync, R: Send>(
    workers: usize,
    items: &[T],
    f: impl Fn(usize, &T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(|item| f(0, item)).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = |worker: usize| {
        let mut done: Vec<(usize, Result<R>)> = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let r = f(worker, item);
            if r.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, r));
        }
        done
    };
    let per_worker: Vec<Vec<(usize, Result<R>)>> = std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = (0..workers).map(|w| s.spawn(move || work(w))).collect();
        // Join every worker before looking at any result, so none is left running.
        let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        joined.into_iter().map(|j| j.map_err(|_| anyhow!("a worker thread panicked"))).collect::<Result<_>>()
    })?;
    let mut slots: Vec<Option<Result<R>>> = (0..items.len()).map(|_| None).collect();
    for (i, r) in per_worker.into_iter().flatten() {
        slots[i] = Some(r);
    }
    let mut out = Vec::with_capacity(items.len());
    let mut skipped = false;
    for slot in slots {
        match slot {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => return Err(e),
            None => skipped = true,
        }
    }
    anyhow::ensure!(!skipped, "work stopped before every item was done");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_item_order_whatever_the_workers() {
        let items: Vec<u64> = (0..50).collect();
        for workers in [1, 2, 7] {
            let got = parallel_map(workers, &items, |w, &x| {
                assert!(w < workers.min(items.len()), "worker {w} of {workers}");
                Ok(x * x)
            })
            .unwrap();
            assert_eq!(got, items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
        assert!(parallel_map(4, &[] as &[u64], |_, &x| Ok(x)).unwrap().is_empty());
    }

    #[test]
    fn the_lowest_failure_is_reported() {
        let items: Vec<u64> = (0..20).collect();
        for workers in [1, 3] {
            let err = parallel_map(workers, &items, |_, &x| if x >= 5 { Err(anyhow!("item {x}")) } else { Ok(x) })
                .unwrap_err()
                .to_string();
            // Workers may have taken items past the first failure; never one before it.
            assert!(err.starts_with("item "), "{err}");
            let n: u64 = err[5..].parse().unwrap();
            assert!(n >= 5, "{err}");
        }
        let err = parallel_map(1, &items, |_, &x| if x >= 5 { Err(anyhow!("item {x}")) } else { Ok(x) }).unwrap_err();
        assert_eq!(err.to_string(), "item 5");
    }
}

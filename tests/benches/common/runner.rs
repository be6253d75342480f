//! What the fwd, sched and director benches share: each runs its cases through a
//! `Runner`, either criterion's timing or (`LVS_BENCH_COUNT=N`) a plain count of N
//! iterations per case that `scripts/bench.sh` runs under callgrind. Each bench adds its
//! own `impl Runner { fn case(..) }`.

use std::time::Duration;

use criterion::Criterion;

/// How a bench's cases run.
pub enum Runner {
    /// Timed by criterion.
    Criterion(Box<Criterion>),
    /// `n` iterations of each case, announced as `case <index> <name> <n>`.
    Count { n: u64, index: usize },
}

/// A bench's `main`: `LVS_BENCH_COUNT=N` counts, otherwise criterion times every case
/// with `warm_ms` of warm-up and `measure_ms` of measurement.
pub fn main(all: fn(&mut Runner), warm_ms: u64, measure_ms: u64) {
    if let Ok(n) = std::env::var("LVS_BENCH_COUNT") {
        let n = n.parse().expect("LVS_BENCH_COUNT: a number of iterations");
        all(&mut Runner::Count { n, index: 0 });
        return;
    }
    let c = Criterion::default()
        .warm_up_time(Duration::from_millis(warm_ms))
        .measurement_time(Duration::from_millis(measure_ms))
        .sample_size(30)
        .nresamples(2000)
        .configure_from_args();
    let mut r = Runner::Criterion(Box::new(c));
    all(&mut r);
    if let Runner::Criterion(c) = r {
        c.final_summary();
    }
}

//! The model's own cost, apart from loading: one training epoch and scoring, at the
//! detector's default sizes (106 features, 4 calendar inputs, windows of 12, batches of
//! 32) on a seeded random series. `cargo bench -p portwatch-model --features bench --bench train`; an
//! older build's bench binary run with the same filter gives the A/B (BENCHMARKS.md).

use criterion::{Criterion, criterion_group, criterion_main};
use portwatch_model::DetectorConfig;
use portwatch_model::inference::forward_windows;
use portwatch_model::training::{Series, fresh_model, train};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FEATURES: usize = 106;
const TIME: usize = 4;

/// One gap-free day of steps (5-second samples of 1,440 rounds would be 17,280; a
/// tenth of that keeps an iteration short) with values in the scaled range.
fn series(steps: usize) -> Series {
    let width = FEATURES + TIME;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = Series::new(FEATURES, width);
    s.segments.push(
        (0..steps * width)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect(),
    );
    s
}

fn bench(c: &mut Criterion) {
    let cfg = DetectorConfig::new();
    let data = series(1728);
    let windows = data.windows(cfg.window, cfg.train_stride);
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    // 320 windows: ten optimiser steps of 32.
    g.bench_function("train_epoch_320_windows", |b| {
        b.iter(|| {
            let m = fresh_model(&cfg, FEATURES, TIME);
            train(m, &data, &windows, &cfg, 1, 320, 7, &mut |_, _| {}).map(|r| r.1)
        })
    });
    let model = fresh_model(&cfg, FEATURES, TIME).valid();
    let all = data.windows(cfg.window, 1);
    g.bench_function("score_1717_windows", |b| {
        b.iter(|| {
            let mut n = 0usize;
            forward_windows(&model, &data, &all, cfg.window, |_, out, _| n += out.len()).map(|()| n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

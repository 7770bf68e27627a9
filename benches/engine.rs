//! Engine benchmarks: topology construction at scale, one online step, prediction.
//!
//! `cargo bench --bench engine` (add `-- build` etc. to filter). The 1M-unit build is the
//! docs/rule.md (topology) target: a layer of 1,000,000 outputs with fan-in 16 builds in seconds.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lpn::{LayerSpec, LearnConfig, Network};
use std::hint::black_box;
use std::time::Duration;

fn grid_spec(side: usize, radius: f64, fan_in: usize) -> LayerSpec {
    let mut spec = LayerSpec::new(side * side, side * side);
    spec.dims = 2;
    spec.radius = radius;
    spec.fan_in = Some(fan_in);
    spec
}

fn inputs(n: usize, seed: u32) -> Vec<f32> {
    // Cheap deterministic pseudo-random inputs in [-1, 1).
    let mut s = seed.wrapping_mul(2654435761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    // 1000 x 1000 grid: spacing 1e-3, radius 2.5e-3 holds ~19 inputs, capped at 16.
    g.bench_function("layer_1M_outputs_fan_in_16", |b| {
        b.iter(|| {
            let net =
                Network::new(vec![grid_spec(1000, 0.0025, 16)], LearnConfig::default(), 0).unwrap();
            black_box(net.layers()[0].arena().n_live())
        })
    });
    g.bench_function("layer_65k_outputs_fan_in_16", |b| {
        b.iter(|| {
            let net =
                Network::new(vec![grid_spec(256, 0.01, 16)], LearnConfig::default(), 0).unwrap();
            black_box(net.layers()[0].arena().n_live())
        })
    });
    g.finish();
}

fn step(c: &mut Criterion) {
    let mut g = c.benchmark_group("step");
    for side in [64usize, 256] {
        let n = side * side;
        let spec = grid_spec(side, 2.5 / side as f64, 16);
        let x = inputs(n, 1);
        let t = inputs(n, 2);
        let net = Network::new(vec![spec], LearnConfig::default(), 0).unwrap();
        g.bench_function(format!("learn_{n}x{n}_fan_in_16"), |b| {
            b.iter_batched_ref(
                || net.clone(),
                |net| black_box(net.learn(&x, &t, 1, None, 0).unwrap()),
                BatchSize::LargeInput,
            )
        });
        g.bench_function(format!("predict_{n}x{n}_fan_in_16"), |b| {
            b.iter(|| black_box(net.predict(&x, 1, None).unwrap()))
        });
    }
    g.finish();
}

fn restructure(c: &mut Criterion) {
    let mut g = c.benchmark_group("restructure");
    let side = 128;
    let mut spec = grid_spec(side, 2.5 / side as f64, 8);
    spec.growth_radius = Some(4.0 / side as f64);
    let n = side * side;
    let mut net = Network::new(vec![spec], LearnConfig::default(), 0).unwrap();
    let x = inputs(n, 3);
    let t = inputs(n, 4);
    net.learn(&x, &t, 1, None, 0).unwrap();
    g.bench_function("pass_16k_rows", |b| {
        b.iter_batched_ref(
            || net.clone(),
            |net| black_box(net.restructure()),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, build, step, restructure);
criterion_main!(benches);

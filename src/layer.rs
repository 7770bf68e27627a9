//! One sparse local layer: its state, forward pass, a learning step on a given local error,
//! consolidation, and equality. Structural plasticity is in `structural.rs`.
use crate::arena::{Flat, FlatVec, Kind, SynapseArena};
use crate::budget::Budget;
use crate::cascade::CascadeParams;
use crate::config::{HiddenSignal, LayerSpec, LearnConfig};
use crate::error::Result;
use crate::rule::{learn_block, RuleParams, StepInputs};
use crate::topology::{build_neighbourhood, Geometry, Neighbourhood};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a layer's local error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Output,
    Feedback,
    Contrastive,
    Frozen,
}

impl From<HiddenSignal> for Signal {
    fn from(h: HiddenSignal) -> Self {
        match h {
            HiddenSignal::Feedback => Signal::Feedback,
            HiddenSignal::Contrastive => Signal::Contrastive,
            HiddenSignal::Frozen => Signal::Frozen,
        }
    }
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Output => "output",
            Signal::Feedback => "feedback",
            Signal::Contrastive => "contrastive",
            Signal::Frozen => "frozen",
        }
    }
}

/// Counters reported by `stats()`; checkpoints store them with `counters`/`from_counters`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerStats {
    pub touched_last: u64,
    pub touched_total: u64,
    /// Σ over steps of touched / live synapses; divided by `steps` gives the running fraction.
    pub touched_fraction_sum: f64,
    pub pruned_last: u64,
    pub grown_last: u64,
    pub pruned_total: u64,
    pub grown_total: u64,
    pub last_loss: f64,
}

impl LayerStats {
    /// Checkpoint packing: `[steps, touched_last, touched_total, pruned_last, grown_last,
    /// pruned_total, grown_total]` and `[touched_fraction_sum, last_loss]`.
    pub(crate) fn counters(&self, steps: u64) -> ([u64; 7], [f64; 2]) {
        (
            [
                steps,
                self.touched_last,
                self.touched_total,
                self.pruned_last,
                self.grown_last,
                self.pruned_total,
                self.grown_total,
            ],
            [self.touched_fraction_sum, self.last_loss],
        )
    }

    /// Inverse of `counters`: (steps, stats).
    pub(crate) fn from_counters(c: &[u64; 7], f: &[f64; 2]) -> (u64, Self) {
        let stats = LayerStats {
            touched_last: c[1],
            touched_total: c[2],
            touched_fraction_sum: f[0],
            pruned_last: c[3],
            grown_last: c[4],
            pruned_total: c[5],
            grown_total: c[6],
            last_loss: f[1],
        };
        (c[0], stats)
    }
}

/// Where a learn step's per-row Σx² comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Norms {
    /// `forward_scratch` ran on this very input (and the rows have not changed since).
    FromForward,
    /// `apply_step` sums them first (the input is not the one of the last forward pass).
    Sum,
}

/// Which side of the layer a per-unit vector has one entry for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    In,
    Out,
}

/// Declares the per-unit state vectors of a layer once: the checkpoint writer and reader,
/// equality and the Python `layer_state()` dict all walk this list.
macro_rules! unit_vectors {
    ($( $(#[$doc:meta])* $name:ident : $t:ty [$side:ident] ),* $(,)?) => {
        #[derive(Debug, Clone)]
        pub struct Layer {
            pub(crate) spec: LayerSpec,
            pub(crate) geo: Geometry,
            pub(crate) signal: Signal,
            pub(crate) arena: SynapseArena,
            $( $(#[$doc])* pub(crate) $name: Vec<$t>, )*
            pub(crate) budget: Budget,
            pub(crate) steps: u64,
            /// `F_h`, row-major `n_out × n_final_out`, for hidden layers with the feedback signal.
            pub(crate) feedback: Option<Vec<f32>>,
            pub(crate) stats: LayerStats,
            /// Growth neighbourhood, built on the first structural pass.
            pub(crate) growth: Option<Neighbourhood>,
            pub(crate) z: Vec<f32>,
            pub(crate) y: Vec<f32>,
            /// Each row's Σx² of the step's input: from the last `forward_scratch`, or summed by
    /// `apply_step` (scratch, like `z` and `y`).
            pub(crate) nx2: Vec<f32>,
            /// The inputs `x[pre[k]]` of every slot, as the last `forward_scratch` gathered
            /// them (scratch; small layers, AVX2 only): the step's kernel loads a row's inputs
            /// from here instead of gathering them again. Valid while `seen_ready`.
            pub(crate) seen: Vec<f32>,
            pub(crate) seen_ready: bool,
            pub(crate) e: Vec<f32>,
            pub(crate) involved: Vec<bool>,
            pub(crate) row_count: Vec<u32>,
        }

        impl Layer {
            /// Name, element kind and side of every per-unit vector, in checkpoint order.
            pub const UNIT_VECTORS: &'static [(&'static str, Kind, Side)] = &[
                $( (stringify!($name), <$t as crate::arena::Element>::KIND, Side::$side), )*
            ];

            /// Every per-unit vector, flat.
            pub fn unit_vectors(&self) -> Vec<(&'static str, Flat<'_>)> {
                vec![$( (stringify!($name), <$t as crate::arena::Element>::flat(&self.$name)), )*]
            }

            /// Replace a per-unit vector by name; the length must match its side.
            pub(crate) fn set_unit_vector(&mut self, name: &str, v: FlatVec) -> std::result::Result<(), String> {
                $(
                    if name == stringify!($name) {
                        let n = match Side::$side { Side::In => self.n_in(), Side::Out => self.n_out() };
                        let v = <$t as crate::arena::Element>::from_flat(v)
                            .ok_or_else(|| format!("{name} has the wrong element type"))?;
                        if v.len() != n {
                            return Err(format!("{name} has {} entries, expected {n}", v.len()));
                        }
                        self.$name = v;
                        return Ok(());
                    }
                )*
                Err(format!("no per-unit vector named {name}"))
            }

            fn same_unit_vectors(&self, o: &Layer) -> bool {
                fn eq<T: crate::arena::Element>(x: &[T], y: &[T]) -> bool {
                    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| T::same(a, b))
                }
                true $( && eq(&self.$name, &o.$name) )*
            }
        }
    };
}

unit_vectors! {
    bias: f32 [Out],
    /// `h_j`: running mean of |e_j| over the steps the row was involved in.
    error_trace: f32 [Out],
    /// `u_i`: running mean of |x_i| (structural growth prefers active inputs).
    activity_trace: f32 [In],
    /// Slots row `j` may grow to.
    max_fan_in: u32 [Out],
}

/// `Σ_k w[k] · x[pre[k]]` summed first to last in f32 (the order the reference sums in). On
/// x86-64 with AVX2 the products are formed 8 at a time (one gather) and then added in the same
/// order, so the result has the same bits.
#[inline]
fn row_dot(w: &[f32], pre: &[u32], x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if w.len() >= 8
        && !x.is_empty()
        && x.len() <= i32::MAX as usize
        && std::arch::is_x86_feature_detected!("avx2")
    {
        // SAFETY: AVX2 is present and every gathered index is clamped into `x` (see there).
        return unsafe { row_dot_avx2(w, pre, x) };
    }
    row_dot_scalar(w, pre, x)
}

#[inline]
fn row_dot_scalar(w: &[f32], pre: &[u32], x: &[f32]) -> f32 {
    add_products(0.0, w, pre, x)
}

/// `acc` plus each `w[k] · x[pre[k]]` in turn.
#[inline(always)]
fn add_products(mut acc: f32, w: &[f32], pre: &[u32], x: &[f32]) -> f32 {
    let last = x.len().saturating_sub(1);
    for k in 0..w.len().min(pre.len()) {
        // Indices are below n_in (an arena invariant); the `min` only lets the compiler drop
        // the bounds check, and never changes an index.
        acc += w[k] * x[(pre[k] as usize).min(last)];
    }
    acc
}

#[cfg(target_arch = "x86_64")]
use crate::simd::gather8;

/// Caller: AVX2 present, `x` non-empty with fewer than 2^31 entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_dot_avx2(w: &[f32], pre: &[u32], x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = w.len().min(pre.len());
    let mut acc = 0.0f32;
    let mut k = 0;
    let mut prod = [0.0f32; 8];
    // SAFETY: loads of 8 at `k` with `k + 8 <= n` stay inside `w` and `pre`; `x` as the caller
    // promises (`gather8`).
    unsafe {
        while k + 8 <= n {
            let xv = gather8(x, pre, k);
            let p = _mm256_mul_ps(_mm256_loadu_ps(w.as_ptr().add(k)), xv);
            _mm256_storeu_ps(prod.as_mut_ptr(), p);
            for v in prod {
                acc += v;
            }
            k += 8;
        }
    }
    add_products(acc, &w[k..n], &pre[k..n], x)
}

/// Rows per block of the forward pass: eight rows of exactly `BLOCK_ROW` live synapses go
/// through `dot_block_avx2` together.
const BLOCK: usize = 8;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const BLOCK_ROW: usize = 16;

/// `Σ_k w[k] · x[pre[k]]` of eight rows of exactly 16 live synapses starting at the slots in
/// `starts`, each summed first to last like `row_dot` — the same bits; with `NORMS` also each
/// row's `Σ_k x[pre[k]]²`, summed the same way (`rule::sum_of_squares`' bits). Row by row, the
/// sum is a chain of 16 dependent adds and the products are formed and then taken apart lane
/// by lane; here the products of the eight rows are formed 8 at a time (as in `row_dot_avx2`),
/// the 8x8 blocks transposed in registers, and the eight chains advance together in one
/// vector: one vector add per synapse position instead of eight scalar ones per chunk.
///
/// Caller: AVX2 present, `x` non-empty with fewer than 2^31 entries, each `starts[r] + 16`
/// within `weight` and `pre`; `keep` null, or valid for writes at every such slot (the
/// gathered inputs are stored there).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_block_avx2<const NORMS: bool>(
    weight: &[f32],
    pre: &[u32],
    starts: &[usize; BLOCK],
    x: &[f32],
    keep: *mut f32,
) -> ([f32; BLOCK], [f32; BLOCK]) {
    use std::arch::x86_64::*;
    // The standard 8x8 transpose: `rows[r]` lane `k` becomes `out[k]` lane `r`.
    #[inline(always)]
    unsafe fn transpose(r: [__m256; 8]) -> [__m256; 8] {
        unsafe {
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ]
        }
    }
    // SAFETY (caller): loads of 8 at `starts[r]` and `starts[r] + 8` stay inside the rows;
    // `x` as `gather8` needs it.
    unsafe {
        let (mut acc, mut acc_sq) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for half in 0..2 {
            let mut xv = [_mm256_setzero_ps(); 8];
            let mut p = [_mm256_setzero_ps(); 8];
            for r in 0..BLOCK {
                let at = starts[r] + 8 * half;
                xv[r] = gather8(x, pre, at);
                if !keep.is_null() {
                    _mm256_storeu_ps(keep.add(at), xv[r]);
                }
                p[r] = _mm256_mul_ps(_mm256_loadu_ps(weight.as_ptr().add(at)), xv[r]);
            }
            for column in transpose(p) {
                acc = _mm256_add_ps(acc, column);
            }
            if NORMS {
                for v in xv.iter_mut() {
                    *v = _mm256_mul_ps(*v, *v);
                }
                for column in transpose(xv) {
                    acc_sq = _mm256_add_ps(acc_sq, column);
                }
            }
        }
        let (mut out, mut sq) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        _mm256_storeu_ps(out.as_mut_ptr(), acc);
        _mm256_storeu_ps(sq.as_mut_ptr(), acc_sq);
        (out, sq)
    }
}

/// Synapses per rayon task in the forward pass.
const FORWARD_GRAIN: usize = 4096;

impl Layer {
    /// Build topology and arena; weights come from `draw_weight` in storage order.
    pub fn new(
        spec: LayerSpec,
        signal: Signal,
        cfg: &LearnConfig,
        draw_weight: impl FnMut() -> f32,
    ) -> Result<Self> {
        let geo = Geometry::new(&spec)?;
        let nb = build_neighbourhood(&spec, &geo, spec.radius, spec.fan_in);
        let mut arena = SynapseArena::from_neighbourhood(&nb, draw_weight);
        crate::cascade::allocate(&mut arena, cfg);
        let max_fan_in = (0..spec.n_out)
            .map(|j| spec.max_fan_in.unwrap_or(2 * arena.row_len(j)) as u32)
            .collect();
        Ok(Self::assemble(
            spec,
            geo,
            signal,
            arena,
            max_fan_in,
            Budget::new(cfg),
        ))
    }

    /// A layer around existing state (construction and checkpoint loading); per-unit vectors
    /// other than `max_fan_in` start at zero. The arena must have `spec.n_out` rows reading
    /// inputs below `spec.n_in` (checked).
    pub(crate) fn assemble(
        spec: LayerSpec,
        geo: Geometry,
        signal: Signal,
        arena: SynapseArena,
        max_fan_in: Vec<u32>,
        budget: Budget,
    ) -> Self {
        let (n_in, n_out) = (spec.n_in, spec.n_out);
        debug_assert!(arena.n_rows() == n_out && max_fan_in.len() == n_out);
        Layer {
            spec,
            geo,
            signal,
            arena,
            bias: vec![0.0; n_out],
            error_trace: vec![0.0; n_out],
            activity_trace: vec![0.0; n_in],
            max_fan_in,
            budget,
            steps: 0,
            feedback: None,
            stats: LayerStats::default(),
            growth: None,
            z: vec![0.0; n_out],
            y: vec![0.0; n_out],
            nx2: vec![0.0; n_out],
            seen: Vec::new(),
            seen_ready: false,
            e: vec![0.0; n_out],
            involved: vec![true; n_out],
            row_count: vec![0; n_out],
        }
    }

    pub fn n_in(&self) -> usize {
        self.spec.n_in
    }

    pub fn n_out(&self) -> usize {
        self.spec.n_out
    }

    pub fn spec(&self) -> &LayerSpec {
        &self.spec
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    pub fn signal(&self) -> Signal {
        self.signal
    }

    pub fn arena(&self) -> &SynapseArena {
        &self.arena
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    pub fn stats(&self) -> &LayerStats {
        &self.stats
    }

    /// `F_h` (row-major `n_out × n_final_out`) of a feedback-trained hidden layer.
    pub fn feedback(&self) -> Option<&[f32]> {
        self.feedback.as_deref()
    }

    pub fn learns_online(&self) -> bool {
        matches!(self.signal, Signal::Output | Signal::Feedback)
    }

    /// `z = b + W x`, `y = φ(z)`, written into the given buffers.
    pub fn forward_into(&self, x: &[f32], z: &mut [f32], y: &mut [f32]) {
        self.forward_rows::<false>(x, z, y, &mut [], &mut []);
    }

    /// `forward_into`, and with `NORMS` also each row's `Σ_k x[pre[k]]²` into `nx2` (summed
    /// first to last, as the rule's kernel would: the same bits), so a learn step that follows
    /// with the same input need not gather and square the row's inputs a second time.
    ///
    /// Rows go in spans of whole blocks, one span per rayon task (or one span for a small
    /// layer), and each span is one call compiled for AVX2 where the CPU has it: one feature
    /// check per span, and the block loop, the eight-row dot products and the activation
    /// inline in it.
    /// `seen`: empty, or one entry per slot for the gathered inputs (`Layer::seen`), filled
    /// only by the AVX2 build of a layer that runs inline; returns whether it was filled.
    fn forward_rows<const NORMS: bool>(
        &self,
        x: &[f32],
        z: &mut [f32],
        y: &mut [f32],
        nx2: &mut [f32],
        seen: &mut [f32],
    ) -> bool {
        let arena = &self.arena;
        // Whether the span ran the AVX2 build (the only one that fills `sn`).
        let span =
            |first: usize, zc: &mut [f32], yc: &mut [f32], nc: &mut [f32], sn: &mut [f32]| {
                #[cfg(target_arch = "x86_64")]
                if !x.is_empty()
                    && x.len() <= i32::MAX as usize
                    && std::arch::is_x86_feature_detected!("avx2")
                {
                    // SAFETY: AVX2 is present; `x` is non-empty with fewer than 2^31 entries, as
                    // the eight-row block needs (`dot_block_avx2`).
                    unsafe { self.forward_span_avx2::<NORMS>(first, x, zc, yc, nc, sn) };
                    return true;
                }
                #[cfg(not(target_arch = "x86_64"))]
                let _ = sn; // filled only by the AVX2 build
                self.forward_span::<NORMS, false>(first, x, zc, yc, nc, &mut []);
                false
            };
        if arena.n_slots() <= crate::pool::INLINE_SLOTS {
            let keeps = seen.len() == arena.n_slots();
            return span(0, z, y, nx2, seen) && keeps;
        }
        let rows = arena.n_rows().max(1);
        let per_task = BLOCK * (FORWARD_GRAIN * rows / arena.n_slots().max(1) / BLOCK).max(2);
        let spans = z.par_chunks_mut(per_task).zip(y.par_chunks_mut(per_task));
        if NORMS {
            spans
                .zip(nx2.par_chunks_mut(per_task))
                .enumerate()
                .for_each(|(c, ((zc, yc), nc))| {
                    span(c * per_task, zc, yc, nc, &mut []);
                });
        } else {
            spans.enumerate().for_each(|(c, (zc, yc))| {
                span(c * per_task, zc, yc, &mut [], &mut []);
            });
        }
        false
    }

    /// `forward_span` compiled for AVX2. Caller: AVX2 present, `x` non-empty with fewer than
    /// 2^31 entries.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_span_avx2<const NORMS: bool>(
        &self,
        first: usize,
        x: &[f32],
        z: &mut [f32],
        y: &mut [f32],
        nx2: &mut [f32],
        seen: &mut [f32],
    ) {
        self.forward_span::<NORMS, true>(first, x, z, y, nx2, seen)
    }

    /// Rows `first ..` (as many as `z` holds, `first` a multiple of `BLOCK`) into `z`, `y`, and
    /// with `NORMS` their Σx² into `nx2`: block by block, a whole block of eight 16-synapse rows
    /// at once where `AVX2` (only under `forward_span_avx2`), else row by row. `seen`: empty,
    /// or (from the first row) every slot's gathered input, written for every live slot.
    #[inline(always)]
    fn forward_span<const NORMS: bool, const AVX2: bool>(
        &self,
        first: usize,
        x: &[f32],
        z: &mut [f32],
        y: &mut [f32],
        nx2: &mut [f32],
        seen: &mut [f32],
    ) {
        let act = self.spec.activation;
        let arena = &self.arena;
        let bias = &self.bias;
        let (weight, pre) = (arena.weight(), arena.pre());
        let blocks = z.chunks_mut(BLOCK).zip(y.chunks_mut(BLOCK)).enumerate();
        for (c, (zc, yc)) in blocks {
            let j0 = first + c * BLOCK;
            let n = zc.len();
            let nc: &mut [f32] = if NORMS {
                &mut nx2[c * BLOCK..c * BLOCK + n]
            } else {
                &mut []
            };
            #[cfg(target_arch = "x86_64")]
            if AVX2 && n == BLOCK {
                let (start, len) = arena.row_spans(j0..j0 + BLOCK);
                let (start, len) = (&start[..BLOCK], &len[..BLOCK]);
                let full = len.iter().fold(true, |f, &l| f & (l as usize == BLOCK_ROW));
                let starts: [usize; BLOCK] = std::array::from_fn(|r| start[r]);
                let end = starts
                    .iter()
                    .fold(0, |m, &a| m.max(a))
                    .saturating_add(BLOCK_ROW);
                let fits = end <= weight.len().min(pre.len());
                let keep = if seen.len() >= end {
                    seen.as_mut_ptr()
                } else {
                    std::ptr::null_mut()
                };
                if full && fits {
                    // SAFETY: `AVX2` is true only under `forward_span_avx2` (AVX2 present, `x`
                    // as `dot_block_avx2` needs it); every row's 16 slots lie inside `weight`
                    // and `pre`, and inside `seen` where `keep` is not null (checked just
                    // above).
                    let (d, sq) = unsafe { dot_block_avx2::<NORMS>(weight, pre, &starts, x, keep) };
                    // z and y as two short loops over fixed lengths, the activation's match
                    // made once.
                    let (b, zb) = (&bias[j0..j0 + BLOCK], &mut zc[..BLOCK]);
                    for r in 0..BLOCK {
                        zb[r] = b[r] + d[r];
                    }
                    act.apply_all(zb, yc);
                    if NORMS {
                        nc[..BLOCK].copy_from_slice(&sq);
                    }
                    continue;
                }
            }
            for r in 0..n {
                let j = j0 + r;
                let live = arena.live(j);
                zc[r] = bias[j] + row_dot(&weight[live.clone()], &pre[live.clone()], x);
                yc[r] = act.apply(zc[r]);
                if AVX2 && !seen.is_empty() {
                    let last = x.len().saturating_sub(1);
                    for (v, &i) in seen[live.clone()].iter_mut().zip(&pre[live.clone()]) {
                        *v = x[(i as usize).min(last)];
                    }
                }
                if NORMS {
                    nc[r] = crate::rule::sum_of_squares(&pre[live], x);
                }
            }
        }
    }

    /// Forward into the layer's own scratch buffers (used by learning steps), each row's Σx²
    /// included where the layer learns online: `apply_step(.., Norms::FromForward)` with the
    /// same input reads them.
    pub(crate) fn forward_scratch(&mut self, x: &[f32]) {
        let mut z = std::mem::take(&mut self.z);
        let mut y = std::mem::take(&mut self.y);
        let mut nx2 = std::mem::take(&mut self.nx2);
        let mut seen = std::mem::take(&mut self.seen);
        self.seen_ready = false;
        if self.learns_online() {
            // A layer that runs inline hands its step the inputs it gathers (a few KB; a
            // large layer would move 4 more bytes per synapse through memory).
            let slots = self.arena.n_slots();
            let keep: &mut [f32] = if slots <= crate::pool::INLINE_SLOTS {
                seen.resize(slots, 0.0); // a no-op but after a structural change
                &mut seen
            } else {
                &mut []
            };
            self.seen_ready = self.forward_rows::<true>(x, &mut z, &mut y, &mut nx2, keep);
        } else {
            // No step follows on this layer (frozen, or target-free): no Σx² to hand over.
            self.forward_rows::<false>(x, &mut z, &mut y, &mut [], &mut []);
        }
        self.z = z;
        self.y = y;
        self.nx2 = nx2;
        self.seen = seen;
    }

    /// One application of the rule with input `x` and the local error already in `self.e`; the
    /// rows to involve are in `self.involved`. `loss` is the step loss fed to the budget.
    /// `norms`: whether the rows' Σx² of the last `forward_scratch` belong to this `x`.
    pub(crate) fn apply_step(&mut self, x: &[f32], loss: f64, cfg: &LearnConfig, norms: Norms) {
        let n_out = self.n_out();
        let expanding = self.budget.expanding;
        let mean_trace = if expanding {
            let (mut sum, mut n) = (0.0f64, 0usize);
            for j in 0..n_out {
                if self.involved[j] {
                    sum += self.error_trace[j] as f64;
                    n += 1;
                }
            }
            if n > 0 {
                sum / n as f64
            } else {
                0.0
            }
        } else {
            0.0
        };
        if norms == Norms::Sum {
            // Not the input of the last forward pass: each row's Σx² of this one, in the
            // order the forward pass sums it.
            self.arena.par_rows(&mut self.nx2[..], |_, row, nx2| {
                *nx2 = crate::rule::sum_of_squares(&row.pre[..row.live()], x);
            });
        }
        let params = RuleParams::new(cfg, &self.budget, self.spec.bias, mean_trace);
        let cascade = CascadeParams::new(cfg);
        let inputs = StepInputs {
            x,
            e: &self.e,
            involved: &self.involved,
            trace: &self.error_trace,
            params: &params,
            cascade: cascade.as_ref(),
            nx2: &self.nx2,
            // The inputs the forward pass gathered belong to this `x` only with its Σx².
            seen: (norms == Norms::FromForward && self.seen_ready).then_some(&self.seen[..]),
        };
        self.arena
            .par_blocks((&mut self.bias[..], &mut self.row_count[..]), |block| {
                learn_block(block, &inputs)
            });
        self.seen_ready = false;
        let touched: u64 = self.row_count.iter().map(|&c| c as u64).sum();
        let live = self.arena.n_live();
        self.stats.touched_last = touched;
        self.stats.touched_total += touched;
        if live > 0 {
            self.stats.touched_fraction_sum += touched as f64 / live as f64;
        }
        self.stats.last_loss = loss;
        self.budget.observe(loss, cfg);
        let rho_h = cfg.rho_trace;
        // Branch-free (kept where not involved), so the loop vectorises.
        let (trace, e, involved) = (
            &mut self.error_trace[..n_out],
            &self.e[..n_out],
            &self.involved[..n_out],
        );
        for j in 0..n_out {
            let h = rho_h * trace[j] + (1.0 - rho_h) * e[j].abs();
            trace[j] = if involved[j] { h } else { trace[j] };
        }
        for (u, &xi) in self.activity_trace.iter_mut().zip(x) {
            *u = rho_h * *u + (1.0 - rho_h) * xi.abs();
        }
        self.steps += 1;
        if cfg.auto_consolidate_every > 0 && self.steps.is_multiple_of(cfg.auto_consolidate_every) {
            self.auto_consolidate(cfg.auto_threshold, cfg.auto_increment);
        }
    }

    /// Mean of e² over all rows: the loss of a layer without targets.
    pub(crate) fn error_energy(&self) -> f64 {
        let mut sum = 0.0f64;
        for &e in &self.e {
            sum += (e as f64) * (e as f64);
        }
        sum / self.e.len() as f64
    }

    /// §3.2 task-boundary consolidation.
    pub fn consolidate(&mut self, strength: f32) {
        let (mut sum, mut n) = (0.0f64, 0usize);
        let long_trail = self.arena.columns().long_trail;
        for j in 0..self.n_out() {
            for &l in &long_trail[self.arena.live(j)] {
                if l > 0.0 {
                    sum += l as f64;
                    n += 1;
                }
            }
        }
        if n == 0 {
            return;
        }
        let mean = (sum / n as f64) as f32;
        self.arena.par_rows((), |_, row, ()| {
            let n = row.live();
            for k in 0..n {
                let c_old = row.consolidation[k];
                let c_new = (c_old + strength * row.long_trail[k] / mean).min(1.0);
                if c_new > c_old {
                    row.consolidation[k] = c_new;
                    row.anchor[k] = row.weight[k];
                }
            }
        });
    }

    /// §3.2 task-free variant: synapses with a strong long trail consolidate a little.
    fn auto_consolidate(&mut self, threshold: f32, increment: f32) {
        self.arena.par_rows((), |_, row, ()| {
            let n = row.live();
            for k in 0..n {
                if row.long_trail[k] > threshold {
                    let c_old = row.consolidation[k];
                    let c_new = (c_old + increment).min(1.0);
                    if c_new > c_old {
                        row.anchor[k] =
                            (c_old * row.anchor[k] + (c_new - c_old) * row.weight[k]) / c_new;
                        row.consolidation[k] = c_new;
                    }
                }
            }
        });
    }

    /// Equality of everything that influences future behaviour (spare arena slots excluded).
    pub fn same_state(&self, o: &Layer) -> bool {
        self.arena.same_live(&o.arena)
            && self.same_unit_vectors(o)
            && self.budget.same(&o.budget)
            && self.steps == o.steps
            && self.signal == o.signal
            && self.spec == o.spec
            && match (&self.feedback, &o.feedback) {
                (Some(x), Some(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits())
                }
                (None, None) => true,
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::tests::xorshift;

    #[test]
    fn row_dot_paths_agree_bit_for_bit() {
        let mut next = xorshift(0x9e37_79b9);
        let x: Vec<f32> = (0..300)
            .map(|_| (next() % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        for n in [0usize, 1, 7, 8, 9, 16, 23, 64, 100] {
            let pre: Vec<u32> = (0..n).map(|_| next() % 300).collect();
            let w: Vec<f32> = (0..n)
                .map(|_| (next() % 1999) as f32 / 997.0 - 1.0)
                .collect();
            let want = row_dot_scalar(&w, &pre, &x);
            let mut seq = 0.0f32;
            for k in 0..n {
                seq += w[k] * x[pre[k] as usize];
            }
            assert_eq!(want.to_bits(), seq.to_bits(), "n {n}");
            assert_eq!(row_dot(&w, &pre, &x).to_bits(), want.to_bits(), "n {n}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn block_of_eight_rows_gives_each_row_dot_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return; // no AVX2 here: the block path is never taken
        }
        let mut next = xorshift(0x2545_f491);
        // Values of mixed magnitude and sign, with zeros, so that the order of the adds shows.
        fn val(next: &mut impl FnMut() -> u32) -> f32 {
            match next() % 8 {
                0 => 0.0,
                1 => -0.0,
                k => ((next() % 20001) as f32 / 1000.0 - 10.0) * 10f32.powi(k as i32 - 4),
            }
        }
        let x: Vec<f32> = (0..500).map(|_| val(&mut next)).collect();
        let slots = 8 * 16 + 40;
        for _ in 0..200 {
            let pre: Vec<u32> = (0..slots).map(|_| next() % 500).collect();
            let w: Vec<f32> = (0..slots).map(|_| val(&mut next)).collect();
            // Rows at scattered, possibly overlapping-free offsets with gaps (spare slots).
            let mut starts = [0usize; BLOCK];
            let mut at = 0;
            for st in starts.iter_mut() {
                at += (next() % 6) as usize;
                *st = at;
                at += 16;
            }
            if at > slots {
                continue;
            }
            // SAFETY: AVX2 is present (checked above); `x` has 500 entries; every row's 16
            // slots lie inside `w` and `pre` (`at <= slots`).
            let (got, sq) =
                unsafe { dot_block_avx2::<true>(&w, &pre, &starts, &x, std::ptr::null_mut()) };
            let (plain, _) =
                unsafe { dot_block_avx2::<false>(&w, &pre, &starts, &x, std::ptr::null_mut()) };
            for r in 0..BLOCK {
                let a = starts[r];
                let want = row_dot_scalar(&w[a..a + 16], &pre[a..a + 16], &x);
                assert_eq!(got[r].to_bits(), want.to_bits(), "row {r}");
                assert_eq!(plain[r].to_bits(), want.to_bits(), "row {r} without norms");
                let want_sq = crate::rule::sum_of_squares(&pre[a..a + 16], &x);
                assert_eq!(sq[r].to_bits(), want_sq.to_bits(), "Σx² of row {r}");
            }
        }
    }

    /// The forward pass of a learning step, small (inline) and large (rayon spans), with rows
    /// of 16 live synapses and rows of other lengths: z and y as `forward_into` gives them and
    /// each row's Σx² with `rule::sum_of_squares`' bits.
    #[test]
    fn forward_scratch_hands_over_each_rows_sum_of_squares() {
        let mut next = xorshift(0x1234_5677);
        for (side, fan_in) in [(8usize, 16usize), (40, 16), (40, 9), (8, 30)] {
            let n = side * side;
            let mut spec = LayerSpec::new(n, n);
            spec.dims = 2;
            spec.radius = 2.5 / side as f64;
            spec.fan_in = Some(fan_in);
            let mut layer = Layer::new(spec, Signal::Output, &LearnConfig::default(), || {
                (next() % 2001) as f32 / 1000.0 - 1.0
            })
            .unwrap();
            // Drop one synapse from every 11th row: blocks with a short row go row by row, the
            // others (most) as whole blocks.
            layer.arena.par_rows((), |j, row, ()| {
                if j % 11 == 0 {
                    *row.len = row.len.saturating_sub(1);
                }
            });
            let x: Vec<f32> = (0..n)
                .map(|i| {
                    if i % 7 == 0 {
                        0.0
                    } else {
                        (next() % 2001) as f32 / 100.0 - 10.0
                    }
                })
                .collect();
            let (mut z, mut y) = (vec![0.0; n], vec![0.0; n]);
            layer.forward_into(&x, &mut z, &mut y);
            layer.forward_scratch(&x);
            let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&layer.z), bits(&z), "side {side} fan_in {fan_in}");
            assert_eq!(bits(&layer.y), bits(&y));
            for j in 0..n {
                let want = crate::rule::sum_of_squares(&layer.arena.pre()[layer.arena.live(j)], &x);
                assert_eq!(layer.nx2[j].to_bits(), want.to_bits(), "row {j}");
            }
            // A layer that runs inline keeps every live slot's input for the step (AVX2
            // builds); a larger one keeps none.
            let inline = layer.arena.n_slots() <= crate::pool::INLINE_SLOTS;
            #[cfg(target_arch = "x86_64")]
            let avx2 = std::arch::is_x86_feature_detected!("avx2");
            #[cfg(not(target_arch = "x86_64"))]
            let avx2 = false;
            assert_eq!(
                layer.seen_ready,
                inline && avx2,
                "side {side} fan_in {fan_in}"
            );
            if layer.seen_ready {
                for j in 0..n {
                    for k in layer.arena.live(j) {
                        let want = x[layer.arena.pre()[k] as usize];
                        assert_eq!(layer.seen[k].to_bits(), want.to_bits(), "slot {k}");
                    }
                }
                // The step consumes them: the next one needs a forward pass of its own input.
                layer.e.fill(0.1);
                layer.apply_step(&x, 0.5, &LearnConfig::default(), Norms::FromForward);
                assert!(!layer.seen_ready);
            }
        }
    }
}

//! The per-row learning rule (docs/rule.md, steps 1–6): candidates, pheromone factor, budgeted
//! selection, normalised update with consolidation pull, clipping, trails.
//!
//! One row is a handful of passes over its slots, each a straight loop the compiler vectorises
//! (no gathers after the first, no divisions per synapse, no branches on the selection):
//! 1. gather the row's inputs once into a small buffer and mark the candidates (key 0; -1 for
//!    a non-candidate) while counting them; `Σx²` comes from the forward pass of the same
//!    input (`StepInputs::nx2`), or `learn_row` sums it (`sum_of_squares`);
//! 2. only when the quota leaves candidates out: the priority (`priority`) as an integer key
//!    per candidate (its bit pattern);
//! 3. selection as a threshold on those keys (`key >= thr` once tied slots past the quota are
//!    dropped) — no selection at all when the quota takes every candidate, keys above counted in
//!    vector lanes for short rows, `select_nth` only for long rows with a real budget;
//! 4. one masked update pass (step, pull, clip) that also finds the largest selected
//!    co-activity;
//! 5. one fused trail pass (evaporate, deposit, long trail, consolidation decay).
//!
//! Rows of exactly 16 synapses (the default fan-in) get a copy of the kernel compiled for that
//! length, and on x86-64 an AVX2 build is chosen at run time: once per block of rows in a
//! learn step (`learn_block`, the row loop and kernel compiled as one function), per row in
//! `learn_row`.
//!
//! Divisions happen once per row (`η e / (ε + Σx²)`, `(1 − ρ_s) / max a`) and once per step
//! (`1 / (1 + κ_s + κ_l)`); `lpn.reference` uses the same formulas, so results stay bit-equal.
use crate::arena::{RowMut, RowStep, RowsMut};
use crate::budget::Budget;
use crate::cascade::CascadeParams;
use crate::config::LearnConfig;
use std::cell::RefCell;

/// Everything a row needs to know about this step besides its own synapses.
#[derive(Debug, Clone, Copy)]
pub struct RuleParams {
    pub lr: f32,
    pub bias_lr: f32,
    pub kappa_short: f32,
    pub kappa_long: f32,
    pub beta: f32,
    pub rho_short: f32,
    pub rho_long: f32,
    pub rho_consolidation: f32,
    pub pull: f32,
    /// Routing weights of consolidation and long trail in the priority (0: plain rule).
    pub route_consolidation: f32,
    pub route_long: f32,
    /// Whether the weight step carries `g` (false: trails only steer the selection).
    pub trail_scaled_step: bool,
    pub w_max: f32,
    pub eps: f32,
    pub use_bias: bool,
    /// Budget fraction `f` of the layer.
    pub budget: f64,
    /// Whether the layer is expanding this step (§3.1).
    pub expanding: bool,
    /// Mean error trace over involved rows (expansion quota); 0 disables the skew.
    pub mean_trace: f64,
    /// The plain quota of rows with up to `RANK_ROW` candidates, made once per step.
    pub plain_quotas: PlainQuotas,
}

/// `quota(nc, f, …)` without the skew for `nc = 0..=RANK_ROW`, made for one budget fraction:
/// a row of the default fan-in reads its quota instead of computing it (about 20 instructions
/// of f64 arithmetic per row). It answers only for the fraction it was made for, so a
/// `RuleParams` whose `budget` was changed afterwards falls back to `quota`, never to a stale
/// entry.
#[derive(Debug, Clone, Copy)]
pub struct PlainQuotas {
    budget: f64,
    quota: [u8; RANK_ROW + 1],
}

impl PlainQuotas {
    pub fn new(budget: f64) -> Self {
        let quota = std::array::from_fn(|nc| quota(nc, budget, false, 0.0, 0.0) as u8);
        PlainQuotas { budget, quota }
    }
}

impl RuleParams {
    /// This step's parameters for a layer with the given budget state; `use_bias` is the
    /// layer's spec, `mean_trace` the mean error trace over involved rows (used when expanding).
    pub fn new(cfg: &LearnConfig, budget: &Budget, use_bias: bool, mean_trace: f64) -> Self {
        RuleParams {
            lr: cfg.lr,
            bias_lr: cfg.bias_lr(),
            kappa_short: cfg.kappa_short,
            kappa_long: cfg.kappa_long,
            beta: cfg.beta,
            rho_short: cfg.rho_short,
            rho_long: cfg.rho_long,
            rho_consolidation: cfg.rho_consolidation,
            pull: cfg.pull,
            route_consolidation: cfg.route_consolidation,
            route_long: cfg.route_long,
            trail_scaled_step: cfg.trail_scaled_step,
            w_max: cfg.w_max,
            eps: cfg.eps,
            use_bias,
            budget: budget.fraction,
            expanding: budget.expanding,
            mean_trace,
            plain_quotas: PlainQuotas::new(budget.fraction),
        }
    }

    /// The pheromone factor's reciprocal `1 / (1 + κ_s + κ_l)` (`pheromone`).
    #[inline(always)]
    fn inv_norm(&self) -> f32 {
        1.0 / (1.0 + self.kappa_short + self.kappa_long)
    }

    /// The choices this step's parameters make for every row, worked out once per block.
    #[inline(always)]
    fn plan(&self) -> RowPlan<'_> {
        RowPlan {
            routes: self.route_consolidation != 0.0 || self.route_long != 0.0,
            skew_from: if self.expanding && self.mean_trace > 0.0 {
                self.mean_trace
            } else {
                f64::INFINITY
            },
            table: (self.plain_quotas.budget.to_bits() == self.budget.to_bits())
                .then_some(&self.plain_quotas.quota),
            inv_norm: self.inv_norm(),
            p: self,
        }
    }
}

/// What a row's step does that depends only on the step's parameters (`RuleParams::plan`),
/// held in values rather than re-read and re-tested on every row.
#[derive(Clone, Copy)]
struct RowPlan<'a> {
    /// Whether the routing factor is part of the priority (a routing weight is not 0).
    routes: bool,
    /// A row whose error trace is above this gets the expansion skew (infinite: none does).
    skew_from: f64,
    /// The plain quotas, when made for this step's budget fraction.
    table: Option<&'a [u8; RANK_ROW + 1]>,
    /// `RuleParams::inv_norm`.
    inv_norm: f32,
    p: &'a RuleParams,
}

impl RowPlan<'_> {
    /// The quota of a row with `nc` candidates and error trace `trace`: `quota(…)` with this
    /// step's budget, from the table when the row gets the plain quota — rows of up to
    /// `RANK_ROW` candidates, not skewed up (not expanding, or `trace` not above the mean,
    /// where `max(1, h / mean h)` is exactly 1).
    #[inline(always)]
    fn row_quota(&self, nc: usize, trace: f32) -> usize {
        // NaN traces are not skewed (`max(1, NaN)` is 1), hence `>` and not `<=`.
        let skewed = trace as f64 > self.skew_from;
        match self.table {
            Some(t) if nc <= RANK_ROW && !skewed => t[nc] as usize,
            _ => {
                let p = self.p;
                quota(nc, p.budget, p.expanding, trace, p.mean_trace)
            }
        }
    }
}

/// Rows this short pick their quota by counting, in 16 vector lanes, the keys above each one:
/// branch-free, cheaper than any sort at this size.
const RANK_ROW: usize = 16;
/// Rows up to this long keep their scratch on the stack; longer ones use a per-thread buffer.
const STACK_ROW: usize = 64;

#[derive(Default)]
struct Scratch {
    xs: Vec<f32>,
    key: Vec<i32>,
    wide: Vec<u64>,
}

thread_local! {
    // Only rows longer than STACK_ROW come here; reused so a warm step does not allocate.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `ceil(v)` for `v >= 0` without a libm call (baseline x86-64 has no rounding instruction);
/// NaN gives 0, +inf saturates. Exact: `v as u64` truncates, and a fraction rounds up.
#[inline]
fn ceil_count(v: f64) -> usize {
    let t = v as u64;
    (if (t as f64) < v {
        t.saturating_add(1)
    } else {
        t
    }) as usize
}

/// Row quota `k_j` (§3 step 3 and §3.1): `ceil(f·|C|)`, and while expanding
/// `ceil(f·|C|·max(1, h_j / mean h))`, so a row never gets less than its plain quota; always
/// within `1..=|C|`.
#[inline]
pub fn quota(
    n_candidates: usize,
    budget: f64,
    expanding: bool,
    trace: f32,
    mean_trace: f64,
) -> usize {
    if n_candidates == 0 {
        return 0;
    }
    let nc = n_candidates as f64;
    let k = if expanding && mean_trace > 0.0 {
        budget * nc * (trace as f64 / mean_trace).max(1.0)
    } else {
        budget * nc
    };
    // `ceil_count(k).clamp(1, |C|)` without the general float-to-u64 conversion (a dozen
    // instructions per row on x86-64): NaN and k <= 0 give 1, k >= |C| gives |C|, and in
    // between `k` fits an i64 exactly as `ceil_count` would convert it.
    if k.is_nan() || k <= 0.0 {
        return 1;
    }
    if k >= nc {
        return n_candidates;
    }
    if k >= 4.0e18 {
        // Never for a real row (shorter than 2^32 slots); kept so the fast path below is sound.
        return ceil_count(k).clamp(1, n_candidates);
    }
    // SAFETY: 0 < k < 4e18 < 2^63 and finite, so it truncates to an in-range i64.
    let t = unsafe { k.to_int_unchecked::<i64>() } as usize;
    (if (t as f64) < k { t + 1 } else { t }).clamp(1, n_candidates)
}

/// The `quota` best candidates by (key descending, slot ascending) as the key of the last one
/// taken (`thr`) and the slot just past it (`tie_end`): slot `k` is picked iff
/// `key[k] > thr || (key[k] == thr && k < tie_end)`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cut {
    thr: i32,
    tie_end: usize,
}

impl Cut {
    /// Make the cut a plain threshold: tied slots past `tie_end` drop out (key -1), so that
    /// afterwards slot `k` is picked iff `key[k] >= thr` — one compare, vectorised.
    #[inline]
    fn apply(self, key: &mut [i32]) -> i32 {
        let from = self.tie_end.min(key.len());
        for kk in key[from..].iter_mut() {
            if *kk == self.thr {
                *kk = -1;
            }
        }
        self.thr
    }
}

/// Selection for short rows without sorting. The quota's best slots are those by key
/// descending, then slot ascending. Per slot, how many keys lie strictly above its own is
/// counted in 16 vertical lanes (`counts_above`: per slot `m` one broadcast, a compare and a
/// subtract, no branches, no horizontal sums). A slot with fewer than `quota` keys above it has
/// a key at least the quota-th best one, `v*`; when exactly `quota` slots qualify they are the
/// selection. Otherwise keys equal to `v*` straddle the quota — they are the slots with the
/// largest qualifying count, `c*` (as many keys lie above `v*`) — and only the first
/// `quota − c*` of them by slot stay. Selected slots keep their key, the rest get -1. Returns
/// the threshold (0) that `key >= thr` then reads. Caller: `quota` below the number of
/// candidates (keys >= 0), so `v*` is a candidate's key and every -1 drops out.
#[inline(always)]
fn select_short<const AVX2: bool>(key: &mut [i32], quota: usize) -> i32 {
    if quota == 1 {
        return select_one::<AVX2>(key);
    }
    let n = key.len();
    let mut k16 = [-1i32; RANK_ROW];
    k16[..n].copy_from_slice(key);
    let mut above = [0i32; RANK_ROW];
    let q = quota as i32;
    if !keep_above::<AVX2>(&mut k16, n, q, &mut above) {
        // A tie at `v*` crosses the quota (rare with real-valued priorities): keep the slots
        // above `v*` and the first `q − c*` of those at it.
        let c_star = above.iter().filter(|&&a| a < q).max().copied().unwrap_or(0);
        let mut need = q - c_star;
        for (kk, &a) in k16.iter_mut().zip(&above) {
            let at_tie = a == c_star;
            if a > c_star || (at_tie && need <= 0) {
                *kk = -1;
            }
            need -= at_tie as i32;
        }
    }
    key.copy_from_slice(&k16[..n]);
    0
}

/// Selection of one candidate (`quota` 1: a small budget, or a row with few candidates, as
/// on sparse input): the best key, the lowest slot among equal ones — what `select_short` and
/// `cut_by_select` pick for a quota of 1, found by one maximum instead of counting every
/// pair. The selected slot keeps its key, every other gets -1; returns the threshold (0) that
/// `key >= thr` then reads. Caller: at least one candidate (key >= 0).
#[inline(always)]
fn select_one<const AVX2: bool>(key: &mut [i32]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 && key.len() == RANK_ROW {
        // SAFETY: `AVX2` is true only under `learn_row_avx2` (the CPU has AVX2); 16 keys.
        unsafe { select_one16_avx2(key) };
        return 0;
    }
    let best = key.iter().copied().fold(-1, i32::max);
    let at = key.iter().position(|&k| k == best).unwrap_or(0);
    for (i, k) in key.iter_mut().enumerate() {
        *k |= -((i != at) as i32);
    }
    0
}

/// `select_one` for a row of 16 in vector lanes: the maximum by three shuffles, its first
/// slot from one mask. Caller: AVX2 present, `key` holds 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn select_one16_avx2(key: &mut [i32]) {
    use std::arch::x86_64::*;
    // SAFETY (caller): 8-lane loads and stores at lanes 0 and 8 of 16 keys.
    unsafe {
        let kp = key.as_mut_ptr() as *mut __m256i;
        let (k0, k1) = (_mm256_loadu_si256(kp), _mm256_loadu_si256(kp.add(1)));
        // The maximum in every lane: halves, then pairs of pairs, then pairs.
        let m = _mm256_max_epi32(k0, k1);
        let m = _mm256_max_epi32(m, _mm256_permute2x128_si256::<0x01>(m, m));
        let m = _mm256_max_epi32(m, _mm256_shuffle_epi32::<0b01_00_11_10>(m));
        let m = _mm256_max_epi32(m, _mm256_shuffle_epi32::<0b10_11_00_01>(m));
        let eq = |k| _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(k, m))) as u32;
        // Not 0: the maximum is one of the keys.
        let at = (eq(k0) | eq(k1) << 8).trailing_zeros() as i32;
        let all = _mm256_set1_epi32(-1);
        let keep = |k, first| {
            let slot = _mm256_add_epi32(
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                _mm256_set1_epi32(first),
            );
            let other = _mm256_xor_si256(_mm256_cmpeq_epi32(slot, _mm256_set1_epi32(at)), all);
            _mm256_or_si256(k, other)
        };
        _mm256_storeu_si256(kp, keep(k0, 0));
        _mm256_storeu_si256(kp.add(1), keep(k1, 8));
    }
}

/// The usual case of `select_short`: count the keys above each slot into `above`; if exactly
/// `q` slots have fewer than `q` above them, drop the others (key -1) and return true, else
/// leave `k16` as it is and return false (a tie crosses the quota).
#[inline(always)]
fn keep_above<const AVX2: bool>(
    k16: &mut [i32; RANK_ROW],
    n: usize,
    q: i32,
    above: &mut [i32; RANK_ROW],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: `AVX2` is true only under `learn_row_avx2`, which runs on CPUs with AVX2.
        return unsafe { keep_above_avx2(k16, q, above) };
    }
    counts_above(k16, n, above);
    let taken: i32 = above.iter().map(|&a| (a < q) as i32).sum();
    if taken != q {
        return false;
    }
    for (kk, &a) in k16.iter_mut().zip(above.iter()) {
        *kk |= -((a >= q) as i32);
    }
    true
}

/// `keep_above` in vector lanes: the counts stay in two registers, the kept lanes are one
/// compare, their number two table lookups.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn keep_above_avx2(k16: &mut [i32; RANK_ROW], q: i32, above: &mut [i32; RANK_ROW]) -> bool {
    use std::arch::x86_64::*;
    let (r0, r1) = counts_above_lanes(k16);
    // SAFETY (caller): AVX2 present; 8-lane loads and stores at lanes 0 and 8 of 16-lane arrays.
    unsafe {
        let ap = above.as_mut_ptr() as *mut __m256i;
        _mm256_storeu_si256(ap, r0);
        _mm256_storeu_si256(ap.add(1), r1);
        let qv = _mm256_set1_epi32(q);
        let (m0, m1) = (_mm256_cmpgt_epi32(qv, r0), _mm256_cmpgt_epi32(qv, r1));
        let b0 = _mm256_movemask_ps(_mm256_castsi256_ps(m0)) as usize;
        let b1 = _mm256_movemask_ps(_mm256_castsi256_ps(m1)) as usize;
        if (BITS_SET[b0] + BITS_SET[b1]) as i32 != q {
            return false;
        }
        let ones = _mm256_set1_epi32(-1);
        let kp = k16.as_mut_ptr() as *mut __m256i;
        let k0 = _mm256_or_si256(_mm256_loadu_si256(kp), _mm256_xor_si256(m0, ones));
        let k1 = _mm256_or_si256(_mm256_loadu_si256(kp.add(1)), _mm256_xor_si256(m1, ones));
        _mm256_storeu_si256(kp, k0);
        _mm256_storeu_si256(kp.add(1), k1);
        true
    }
}

/// `above[k] = #{m < n : k16[m] > k16[k]}` for the baseline build: SSE2 intrinsics on x86-64
/// (left to itself the compiler vectorises across `m`, one lane insert per key), plain Rust
/// elsewhere; with AVX2, `counts_above_lanes`.
#[inline(always)]
fn counts_above(k16: &[i32; RANK_ROW], n: usize, above: &mut [i32; RANK_ROW]) {
    let n = n.min(RANK_ROW);
    #[cfg(target_arch = "x86_64")]
    counts_above_sse2(k16, n, above);
    #[cfg(not(target_arch = "x86_64"))]
    counts_above_portable(k16, n, above)
}

/// `counts_above` in plain Rust: the definition, and the code on other architectures.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn counts_above_portable(k16: &[i32; RANK_ROW], n: usize, above: &mut [i32; RANK_ROW]) {
    for &km in &k16[..n] {
        for k in 0..RANK_ROW {
            above[k] += (km > k16[k]) as i32;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn counts_above_sse2(k16: &[i32; RANK_ROW], n: usize, above: &mut [i32; RANK_ROW]) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of baseline x86-64; every load and store is of 4 lanes inside a
    // 16-lane array.
    unsafe {
        let kp = k16.as_ptr() as *const __m128i;
        let kk = [
            _mm_loadu_si128(kp),
            _mm_loadu_si128(kp.add(1)),
            _mm_loadu_si128(kp.add(2)),
            _mm_loadu_si128(kp.add(3)),
        ];
        let mut r = [_mm_setzero_si128(); 4];
        for &km in &k16[..n.min(RANK_ROW)] {
            let km = _mm_set1_epi32(km);
            for v in 0..4 {
                r[v] = _mm_sub_epi32(r[v], _mm_cmpgt_epi32(km, kk[v]));
            }
        }
        let rp = above.as_mut_ptr() as *mut __m128i;
        for (v, rv) in r.iter().enumerate() {
            _mm_storeu_si128(rp.add(v), *rv);
        }
    }
}

/// `counts_above` of lanes 0–7 and 8–15, in two registers. Lanes past `n` hold -1 (the
/// caller's padding), which is above no key, so all 16 are compared whatever `n` is.
///
/// Instead of broadcasting each key (a shuffle and a broadcast per key, as the compiler
/// lowers it), each half is compared with its 8 lane permutations `j -> j ^ i`: for lane `j`,
/// `i = 0..8` visits every lane of a half once, so lane `j` of `Σ_i [P_i(h) > k]` counts the
/// keys of half `h` above `k[j]`. That is 14 shuffles (`i = 0` is the half itself) for the
/// 31 compares and subtracts instead of 32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn counts_above_lanes(
    k16: &[i32; RANK_ROW],
) -> (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i) {
    use std::arch::x86_64::*;
    // `P_i` for i = 1..8: within 128-bit lanes for i < 4 (`pshufd`), across them for i >= 4
    // (the halves swapped first).
    #[inline(always)]
    fn xor_perms(h: __m256i) -> [__m256i; 8] {
        // SAFETY: register shuffles only; AVX2 by the caller's target feature.
        unsafe {
            let sw = _mm256_permute2x128_si256::<0x01>(h, h);
            [
                h,
                _mm256_shuffle_epi32::<0b10_11_00_01>(h),
                _mm256_shuffle_epi32::<0b01_00_11_10>(h),
                _mm256_shuffle_epi32::<0b00_01_10_11>(h),
                sw,
                _mm256_shuffle_epi32::<0b10_11_00_01>(sw),
                _mm256_shuffle_epi32::<0b01_00_11_10>(sw),
                _mm256_shuffle_epi32::<0b00_01_10_11>(sw),
            ]
        }
    }
    // SAFETY: 8-lane loads at lanes 0 and 8 of a 16-lane array (AVX2 by this function's
    // target feature).
    unsafe {
        let kp = k16.as_ptr() as *const __m256i;
        let (k0, k1) = (_mm256_loadu_si256(kp), _mm256_loadu_si256(kp.add(1)));
        let (p0, p1) = (xor_perms(k0), xor_perms(k1));
        let (mut r0, mut r1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for i in 0..8 {
            if i > 0 {
                r0 = _mm256_sub_epi32(r0, _mm256_cmpgt_epi32(p0[i], k0));
            }
            r0 = _mm256_sub_epi32(r0, _mm256_cmpgt_epi32(p1[i], k0));
            r1 = _mm256_sub_epi32(r1, _mm256_cmpgt_epi32(p0[i], k1));
            if i > 0 {
                r1 = _mm256_sub_epi32(r1, _mm256_cmpgt_epi32(p1[i], k1));
            }
        }
        (r0, r1)
    }
}

/// Same for longer rows, by `select_nth` on packed (key, complement of slot) words in `wide`.
#[inline(never)]
fn cut_by_select(key: &[i32], quota: usize, wide: &mut [u64]) -> Cut {
    let mut m = 0;
    for (k, &kk) in key.iter().enumerate() {
        wide[m] = ((kk as u32 as u64) << 32) | (u32::MAX - k as u32) as u64;
        m += (kk >= 0) as usize;
    }
    let wide = &mut wide[..m];
    let (_, &mut nth, _) = wide.select_nth_unstable_by(quota - 1, |a, b| b.cmp(a));
    Cut {
        thr: (nth >> 32) as u32 as i32,
        tie_end: (u32::MAX - (nth & 0xffff_ffff) as u32) as usize + 1,
    }
}

/// `if m { a } else { b }` on bit patterns, so the loop stays branch-free and vectorises.
#[inline(always)]
fn blend(m: bool, a: f32, b: f32) -> f32 {
    let mask = (m as u32).wrapping_neg();
    f32::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// Apply one step to one involved row with local error `e`; returns how many synapses were
/// updated. `bias` is the row's bias, `trace` its error trace `h_j` (read only here).
///
/// On x86-64 machines with AVX2 the same code runs compiled for AVX2 (chosen at run time; the
/// wheel targets baseline x86-64). Every operation is element-wise IEEE arithmetic or an
/// integer compare, and no sum changes order, so both builds give the same bits.
#[inline]
pub fn learn_row(
    row: &mut RowMut<'_>,
    x: &[f32],
    e: f32,
    bias: &mut f32,
    trace: f32,
    p: &RuleParams,
) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { learn_row_avx2(row, x, e, bias, trace, p) };
    }
    learn_row_base(row, x, e, bias, trace, p)
}

/// The per-row state a learn step keeps outside the arena: each row's bias and how many of
/// its synapses the step updated.
pub type StepSide<'a> = (&'a mut [f32], &'a mut [u32]);

/// What one learn step reads besides the rows: the input, each row's local error, whether it
/// is involved, its error trace; the rule's and (in cascade mode) the cascade's parameters.
#[derive(Clone, Copy)]
pub struct StepInputs<'a> {
    pub x: &'a [f32],
    pub e: &'a [f32],
    pub involved: &'a [bool],
    pub trace: &'a [f32],
    pub params: &'a RuleParams,
    pub cascade: Option<&'a CascadeParams>,
    /// Each row's `Σ_k x[pre[k]]²` of this input (`sum_of_squares`' bits), as the forward
    /// pass of the step computed it.
    pub nx2: &'a [f32],
    /// Every slot's input `x[pre[k]]` (clamped like the gather), where the forward pass of
    /// this input kept them (`Layer::seen`): rows of 16 then load their inputs instead of
    /// gathering them. None: gather.
    pub seen: Option<&'a [f32]>,
}

/// Apply one step to every row of a block (`SynapseArena::par_blocks`): involved rows learn
/// (`learn_row`, then the cascade step), the others count 0. The AVX2 choice is made once per
/// block, so the row loop and the kernel are compiled together: no call, no row view in
/// memory, no feature check per row.
pub fn learn_block(block: RowsMut<'_, StepSide<'_>>, s: &StepInputs<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { learn_block_avx2(block, s) };
    }
    learn_block_any::<false>(block, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn learn_block_avx2(block: RowsMut<'_, StepSide<'_>>, s: &StepInputs<'_>) {
    learn_block_any::<true>(block, s)
}

/// `AVX2`: only under `learn_block_avx2` (the CPU has AVX2).
#[inline(always)]
fn learn_block_any<const AVX2: bool>(block: RowsMut<'_, StepSide<'_>>, s: &StepInputs<'_>) {
    // The parameters copied onto this function's stack, and what they decide for every row
    // worked out once: no row re-reads or re-tests them.
    let params = *s.params;
    // The per-row inputs cut to this block's rows: indexed by the row's place in the block,
    // which the walk keeps below their length, so no row checks bounds.
    let (rows, starts) = (block.rows(), block.row_starts());
    let s = StepInputs {
        params: &params,
        e: &s.e[rows.clone()],
        involved: &s.involved[rows.clone()],
        trace: &s.trace[rows.clone()],
        nx2: &s.nx2[rows.clone()],
        ..*s
    };
    // Two row loops: in the cascade's, the row view goes by reference to an out-of-line
    // step, so it lives in memory; the usual loop never lets it escape, and the view stays
    // a handful of registers (in one shared loop it was stored and reloaded on every row).
    match s.cascade {
        Some(cascade) => block.walk(&CascadeLearner {
            s: &s,
            cascade,
            first: rows.start,
        }),
        // Whether the forward pass kept the inputs is decided here, once per block.
        None if AVX2 && s.seen.is_some() => block.walk(&RowLearner::<AVX2, true> {
            s: &s,
            plan: params.plan(),
            first: rows.start,
            starts,
        }),
        None => block.walk(&RowLearner::<AVX2, false> {
            s: &s,
            plan: params.plan(),
            first: rows.start,
            starts,
        }),
    }
}

/// One involved row learns (the kernel inline); the others count 0. `AVX2` as in
/// `learn_block_any`; `SEEN`: `StepInputs::seen` is given (and the kernel runs with AVX2).
struct RowLearner<'a, const AVX2: bool, const SEEN: bool> {
    /// The block's inputs, from its first row on.
    s: &'a StepInputs<'a>,
    plan: RowPlan<'a>,
    /// The block's first row (a layer row index).
    first: usize,
    /// Where every row of the layer starts (to find a row's `seen` inputs).
    starts: &'a [usize],
}

impl<'b, const AVX2: bool, const SEEN: bool> RowStep<(&'b mut f32, &'b mut u32)>
    for RowLearner<'_, AVX2, SEEN>
{
    #[inline(always)]
    fn row(&self, j: usize, mut row: RowMut<'_>, (bias, count): (&'b mut f32, &'b mut u32)) {
        let (s, k) = (self.s, j - self.first);
        *count = if !s.involved[k] {
            0
        } else {
            // A row of 16 under AVX2 reads its inputs from the forward pass where it kept them.
            let seen = match s.seen {
                Some(all) if SEEN && row.live() == RANK_ROW => {
                    all.get(self.starts[j]..self.starts[j] + RANK_ROW)
                }
                _ => None,
            };
            let (e, trace, nx2) = (s.e[k], s.trace[k], s.nx2[k]);
            learn_row_any::<AVX2>(&mut row, s.x, e, bias, trace, nx2, seen, self.plan)
        };
    }
}

/// In cascade mode: one involved row learns (`learn_row`), then takes the cascade step. The
/// inputs as in `RowLearner`.
struct CascadeLearner<'a> {
    s: &'a StepInputs<'a>,
    cascade: &'a CascadeParams,
    first: usize,
}

impl<'b> RowStep<(&'b mut f32, &'b mut u32)> for CascadeLearner<'_> {
    #[inline(always)]
    fn row(&self, j: usize, mut row: RowMut<'_>, (bias, count): (&'b mut f32, &'b mut u32)) {
        let (s, k) = (self.s, j - self.first);
        *count = if !s.involved[k] {
            0
        } else {
            let n = learn_row(&mut row, s.x, s.e[k], bias, s.trace[k], s.params);
            crate::cascade::step_row(&mut row, self.cascade);
            n
        };
    }
}

/// The kernel for the baseline target, out of line like the AVX2 one: the caller's row loop
/// stays small.
#[inline(never)]
fn learn_row_base(
    row: &mut RowMut<'_>,
    x: &[f32],
    e: f32,
    bias: &mut f32,
    trace: f32,
    p: &RuleParams,
) -> u32 {
    let nx2 = sum_of_squares(&row.pre[..row.live()], x);
    learn_row_any::<false>(row, x, e, bias, trace, nx2, None, p.plan())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn learn_row_avx2(
    row: &mut RowMut<'_>,
    x: &[f32],
    e: f32,
    bias: &mut f32,
    trace: f32,
    p: &RuleParams,
) -> u32 {
    let nx2 = sum_of_squares(&row.pre[..row.live()], x);
    learn_row_any::<true>(row, x, e, bias, trace, nx2, None, p.plan())
}

/// `AVX2`: called from `learn_row_avx2` (the CPU has AVX2), so the kernel may use it directly.
/// `nx2`: the row's Σx² (`sum_of_squares`); `seen`: its 16 inputs, if the forward pass kept
/// them (`StepInputs::seen`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn learn_row_any<const AVX2: bool>(
    row: &mut RowMut<'_>,
    x: &[f32],
    e: f32,
    bias: &mut f32,
    trace: f32,
    nx2: f32,
    seen: Option<&[f32]>,
    plan: RowPlan<'_>,
) -> u32 {
    let inp = RowIn {
        x,
        e,
        trace,
        nx2,
        seen,
        plan,
    };
    let n = row.live();
    if n == RANK_ROW {
        // The common row (fan_in 16): a length the compiler knows, so every pass is a few
        // whole vectors with no remainder loop.
        let (mut xs, mut key) = ([0.0f32; RANK_ROW], [0i32; RANK_ROW]);
        kernel::<AVX2>(row, bias, inp, &mut xs, &mut key, &mut [])
    } else if n < RANK_ROW {
        let (mut xs, mut key) = ([0.0f32; RANK_ROW], [0i32; RANK_ROW]);
        kernel::<AVX2>(row, bias, inp, &mut xs[..n], &mut key[..n], &mut [])
    } else if n <= STACK_ROW {
        let (mut xs, mut key, mut wide) =
            ([0.0f32; STACK_ROW], [0i32; STACK_ROW], [0u64; STACK_ROW]);
        kernel::<AVX2>(row, bias, inp, &mut xs[..n], &mut key[..n], &mut wide[..n])
    } else {
        // The closure goes to an out-of-line call: it gets a view of its own and copies of
        // the arguments (`move`), so neither `row` nor any argument has its address taken —
        // which would keep them in memory on every row, the usual paths included.
        let own = &mut row.reborrow();
        SCRATCH.with(move |cell| {
            let s = &mut *cell.borrow_mut();
            if s.xs.len() < n {
                s.xs.resize(n, 0.0);
                s.key.resize(n, 0);
                s.wide.resize(n, 0);
            }
            let (xs, key, wide) = (&mut s.xs[..n], &mut s.key[..n], &mut s.wide[..n]);
            kernel::<AVX2>(own, bias, inp, xs, key, wide)
        })
    }
}

/// What the kernel reads for one row besides its synapses: the input, the row's local error,
/// its error trace, its Σx² where the forward pass computed it, and the block's plan.
#[derive(Clone, Copy)]
struct RowIn<'a> {
    x: &'a [f32],
    e: f32,
    trace: f32,
    nx2: f32,
    seen: Option<&'a [f32]>,
    plan: RowPlan<'a>,
}

/// The pheromone factor `g = (1 + κ_s s + κ_l l) / (1 + κ_s + κ_l)`, the division replaced by
/// the per-step reciprocal `inv_norm` (the reference computes it the same way).
#[inline(always)]
fn pheromone(p: &RuleParams, inv_norm: f32, s: f32, l: f32) -> f32 {
    (1.0 + p.kappa_short * s + p.kappa_long * l) * inv_norm
}

/// The factor of the weight step: `g`, or 1 where trails only steer the selection. `g` is
/// formed either way and then chosen: a conditional `g` made the vectorised update load the
/// trails with masked loads (and build the mask) on every row.
#[inline(always)]
fn step_factor(p: &RuleParams, inv_norm: f32, s: f32, l: f32) -> f32 {
    let g = pheromone(p, inv_norm, s, l);
    blend(p.trail_scaled_step, g, 1.0)
}

// The passes take every column as its own slice argument: arguments are known not to alias,
// which lets the compiler vectorise each loop without run-time overlap checks per row.

/// A row's `Σ_k x[pre[k]]²`, summed first to last in f32 (the order the reference sums in):
/// the one definition every Σx² of the engine has the bits of.
pub fn sum_of_squares(pre: &[u32], x: &[f32]) -> f32 {
    let last = x.len().saturating_sub(1);
    let mut nx2 = 0.0f32;
    for &i in pre {
        // Indices are below n_in (an arena invariant); the `min` only drops the bounds check.
        let v = x[(i as usize).min(last)];
        nx2 += v * v;
    }
    nx2
}

/// Pass 1: gather the row's inputs once; candidates (`a = |e·x| > 0`) get key 0, the rest
/// -1. Returns |C|.
#[inline(always)]
fn gather(pre: &[u32], x: &[f32], e: f32, xs: &mut [f32], key: &mut [i32]) -> usize {
    let n = xs.len();
    let (pre, key) = (&pre[..n], &mut key[..n]);
    let last = x.len().saturating_sub(1);
    for k in 0..n {
        // Indices are below n_in (an arena invariant); the `min` only drops the bounds check.
        xs[k] = x[(pre[k] as usize).min(last)];
    }
    let mut nc = 0u32;
    for k in 0..n {
        let cand = (e * xs[k]).abs() > 0.0;
        key[k] = -(!cand as i32);
        nc += cand as u32;
    }
    nc as usize
}

/// Pass 1 for a row: `gather16_avx2` for rows of 16 when the kernel runs with AVX2, else
/// `gather` — the same values.
#[inline(always)]
fn gather_row<const AVX2: bool>(
    pre: &[u32],
    x: &[f32],
    seen: Option<&[f32]>,
    e: f32,
    xs: &mut [f32],
    key: &mut [i32],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if AVX2
        && xs.len() == RANK_ROW
        && pre.len() >= RANK_ROW
        && key.len() >= RANK_ROW
        && !x.is_empty()
        && x.len() <= i32::MAX as usize
    {
        // SAFETY: `AVX2` is true only under `learn_row_avx2` (the CPU has AVX2); the lengths
        // are checked just above, and `seen` holds at least 16 where given.
        return unsafe {
            match seen {
                Some(v) if v.len() >= RANK_ROW => gather16_avx2::<true>(pre, x, v, e, xs, key),
                _ => gather16_avx2::<false>(pre, x, x, e, xs, key),
            }
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = seen; // kept only by the AVX2 forward pass
    gather(pre, x, e, xs, key)
}

/// `BITS_SET[m]`: the number of set bits of the byte `m` (the AVX2 kernels' counts).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const BITS_SET: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut m = 0;
    while m < 256 {
        t[m] = (m as u32).count_ones() as u8;
        m += 1;
    }
    t
};

/// `gather` for a row of 16: two 8-lane gathers instead of 16 loads, the candidate marks in
/// vector lanes. `SEEN`: the 16 inputs are already gathered, in `seen` (the forward pass's
/// `x[pre[k]]`, the same values): two loads instead of the gathers.
/// Caller: AVX2 present; `pre`, `xs`, `key` hold at least 16, `x` 1 to 2^31 - 1 entries, and
/// with `SEEN` `seen` at least 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn gather16_avx2<const SEEN: bool>(
    pre: &[u32],
    x: &[f32],
    seen: &[f32],
    e: f32,
    xs: &mut [f32],
    key: &mut [i32],
) -> usize {
    use std::arch::x86_64::*;
    // SAFETY (caller): every load and store is of 8 lanes at 0 and 8 within 16 entries; `x` as
    // `gather8` needs it.
    unsafe {
        let ev = _mm256_set1_ps(e);
        let sign = _mm256_set1_ps(-0.0);
        let mut marks = 0u32;
        for h in 0..2 {
            let at = 8 * h;
            let v = if SEEN {
                _mm256_loadu_ps(seen.as_ptr().add(at))
            } else {
                crate::simd::gather8(x, pre, at)
            };
            _mm256_storeu_ps(xs.as_mut_ptr().add(at), v);
            // Candidate: |e·x| > 0 (false for NaN, as in `gather`); key 0, else -1.
            let a = _mm256_andnot_ps(sign, _mm256_mul_ps(ev, v));
            let cand = _mm256_cmp_ps::<_CMP_GT_OQ>(a, _mm256_setzero_ps());
            let not_cand = _mm256_xor_si256(_mm256_castps_si256(cand), _mm256_set1_epi32(-1));
            _mm256_storeu_si256(key.as_mut_ptr().add(at) as _, not_cand);
            marks |= (_mm256_movemask_ps(cand) as u32) << at;
        }
        // Two table lookups: without the POPCNT feature `count_ones` is a dozen instructions.
        (BITS_SET[(marks & 0xff) as usize] + BITS_SET[(marks >> 8) as usize]) as usize
    }
}

/// Pass 2, only when the quota leaves some candidates out: priority bits as the key of every
/// candidate (key 0), -1 stays for the rest.
///
/// The synapse priority is `a · g(s, l)` (times the routing factor, plus `β·s` while
/// expanding): one function, `priority`, so a change of the formula is made in one place. Its
/// two optional terms are compile-time choices (`ROUTE`, `EXPAND`), made once per row here, so
/// the usual loop computes only `a · g`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn keys(
    p: &RuleParams,
    routes: bool,
    e: f32,
    inv_norm: f32,
    xs: &[f32],
    short: &[f32],
    long: &[f32],
    cons: &[f32],
    key: &mut [i32],
) {
    match (routes, p.expanding) {
        (false, false) => keys_with::<false, false>(p, e, inv_norm, xs, short, long, cons, key),
        (false, true) => keys_with::<false, true>(p, e, inv_norm, xs, short, long, cons, key),
        (true, false) => keys_with::<true, false>(p, e, inv_norm, xs, short, long, cons, key),
        (true, true) => keys_with::<true, true>(p, e, inv_norm, xs, short, long, cons, key),
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn keys_with<const ROUTE: bool, const EXPAND: bool>(
    p: &RuleParams,
    e: f32,
    inv_norm: f32,
    xs: &[f32],
    short: &[f32],
    long: &[f32],
    cons: &[f32],
    key: &mut [i32],
) {
    let n = xs.len();
    let (short, long, cons, key) = (&short[..n], &long[..n], &cons[..n], &mut key[..n]);
    for k in 0..n {
        let a = (e * xs[k]).abs();
        let pr = priority::<ROUTE, EXPAND>(p, inv_norm, a, short[k], long[k], cons[k]);
        key[k] = if key[k] >= 0 { pr.to_bits() as i32 } else { -1 };
    }
}

/// The selection priority of a synapse with co-activity `a`, trails `s`, `l` and consolidation
/// `c` (§3 step 3): `a · g(s, l) · r(c, l)`, plus `β·s` while the layer is expanding (§3.1).
/// The routing factor `r = (1 − ω_c·c)·(1 − ω_l·l)` (docs/rule.md, "Routing") sends the budget
/// away from consolidated and long-used synapses; it is applied only when a weight is not 0
/// (`ROUTE` = `RowPlan::routes`), so the plain rule stays `a · g` even for a non-finite `c`
/// (the reference does the same). Non-negative, so its bit pattern orders like its value.
#[inline(always)]
fn priority<const ROUTE: bool, const EXPAND: bool>(
    p: &RuleParams,
    inv_norm: f32,
    a: f32,
    s: f32,
    l: f32,
    c: f32,
) -> f32 {
    let mut pr = a * pheromone(p, inv_norm, s, l);
    if ROUTE {
        pr *= (1.0 - p.route_consolidation * c) * (1.0 - p.route_long * l);
    }
    if EXPAND {
        pr + p.beta * s
    } else {
        pr
    }
}

/// Pass 4: the masked update (step, pull towards the anchor, clip) of slots with
/// `key >= thr`; returns the bits of the largest selected co-activity. `AVX2` (only under
/// `learn_row_avx2`): the masked pass is `update_avx2`, the same values.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn update<const AVX2: bool>(
    p: &RuleParams,
    e: f32,
    inv_norm: f32,
    step: f32,
    thr: i32,
    sparse: bool,
    xs: &[f32],
    key: &[i32],
    weight: &mut [f32],
    short: &[f32],
    long: &[f32],
    cons: &[f32],
    anchor: &[f32],
) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if AVX2 && !sparse {
        // SAFETY: `AVX2` is true only under `learn_row_avx2` (the CPU has AVX2). The
        // slot-skipping pass has no masked stores to avoid; only the masked one is written out.
        return unsafe {
            update_avx2(
                p, e, inv_norm, step, thr, xs, key, weight, short, long, cons, anchor,
            )
        };
    }
    let n = xs.len();
    let (key, weight) = (&key[..n], &mut weight[..n]);
    let (short, long, cons, anchor) = (&short[..n], &long[..n], &cons[..n], &anchor[..n]);
    let lr_pull = p.lr * p.pull;
    let mut max_bits = 0i32;
    if sparse {
        // Few candidates (sparse input): visit only the selected slots, same formulas.
        for k in 0..n {
            if key[k] >= thr {
                let xk = xs[k];
                let g = step_factor(p, inv_norm, short[k], long[k]);
                let c = cons[k];
                let w1 = weight[k] + step * g * (1.0 - c) * xk;
                let w2 = w1 - lr_pull * c * (w1 - anchor[k]);
                weight[k] = w2.clamp(-p.w_max, p.w_max);
                max_bits = max_bits.max((e * xk).abs().to_bits() as i32);
            }
        }
        return max_bits;
    }
    for k in 0..n {
        let m = key[k] >= thr;
        let xk = xs[k];
        let g = step_factor(p, inv_norm, short[k], long[k]);
        let c = cons[k];
        let w0 = weight[k];
        let w1 = w0 + step * g * (1.0 - c) * xk;
        let w2 = w1 - lr_pull * c * (w1 - anchor[k]);
        weight[k] = blend(m, w2.clamp(-p.w_max, p.w_max), w0);
        // Co-activities are >= 0, so their bit patterns order like the values.
        let a_bits = (e * xk).abs().to_bits() as i32;
        max_bits = max_bits.max(a_bits & (m as i32).wrapping_neg());
    }
    max_bits
}

/// `update`'s masked pass in AVX2 lanes, 8 slots at a time (the rest by `update`): the same
/// operations in the same order on each lane, so the same bits.
///
/// Written out because the compiler turns the vectorised `blend(m, new, w0)` of the old
/// weight into masked stores (`vmaskmovps`), which AMD Zen cores run as microcode: without
/// them a 1,024-synapse step took 8% less time. Here the old weights pass through an empty
/// `asm!`, which the compiler cannot see into, so the blend stays a blend and the store a
/// plain store.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn update_avx2(
    p: &RuleParams,
    e: f32,
    inv_norm: f32,
    step: f32,
    thr: i32,
    xs: &[f32],
    key: &[i32],
    weight: &mut [f32],
    short: &[f32],
    long: &[f32],
    cons: &[f32],
    anchor: &[f32],
) -> i32 {
    use std::arch::x86_64::*;
    let n = xs.len();
    let (key, weight) = (&key[..n], &mut weight[..n]);
    let (short, long, cons, anchor) = (&short[..n], &long[..n], &cons[..n], &anchor[..n]);
    let body = n - n % 8;
    // SAFETY: AVX2 present (caller); every load and store is of 8 lanes at `k < body <= n`
    // within slices of `n` entries.
    let max_body = unsafe {
        let f = _mm256_set1_ps;
        let one = f(1.0);
        let (kappa_s, kappa_l, inv) = (f(p.kappa_short), f(p.kappa_long), f(inv_norm));
        // `step_factor`: `g` where the trails scale the step, else 1.
        let scaled = _mm256_castsi256_ps(_mm256_set1_epi32(-(p.trail_scaled_step as i32)));
        let (stepv, lr_pull) = (f(step), f(p.lr * p.pull));
        let (lo, hi) = (f(-p.w_max), f(p.w_max));
        let (ev, sign) = (f(e), f(-0.0));
        let (thrv, all) = (_mm256_set1_epi32(thr), _mm256_set1_epi32(-1));
        let mut max_a = _mm256_setzero_si256();
        let mut k = 0;
        while k < body {
            let ld = |v: &[f32]| _mm256_loadu_ps(v.as_ptr().add(k));
            // key >= thr
            let kv = _mm256_loadu_si256(key.as_ptr().add(k) as *const __m256i);
            let m = _mm256_xor_si256(_mm256_cmpgt_epi32(thrv, kv), all);
            let xk = ld(xs);
            let pher = _mm256_add_ps(
                _mm256_add_ps(one, _mm256_mul_ps(kappa_s, ld(short))),
                _mm256_mul_ps(kappa_l, ld(long)),
            );
            let g = _mm256_blendv_ps(one, _mm256_mul_ps(pher, inv), scaled);
            let c = ld(cons);
            let mut w0 = _mm256_loadu_ps(weight.as_ptr().add(k));
            // SAFETY: an empty template: `w0` comes back unchanged.
            std::arch::asm!(
                "/* {0} */",
                inout(ymm_reg) w0,
                options(pure, nomem, nostack, preserves_flags)
            );
            let dw = _mm256_mul_ps(
                _mm256_mul_ps(_mm256_mul_ps(stepv, g), _mm256_sub_ps(one, c)),
                xk,
            );
            let w1 = _mm256_add_ps(w0, dw);
            let pull = _mm256_mul_ps(_mm256_mul_ps(lr_pull, c), _mm256_sub_ps(w1, ld(anchor)));
            let w2 = _mm256_sub_ps(w1, pull);
            // `clamp(-w_max, w_max)`: max(lo, w) and min(hi, ·) keep a NaN, as `clamp` does.
            let wc = _mm256_min_ps(hi, _mm256_max_ps(lo, w2));
            let w = _mm256_blendv_ps(w0, wc, _mm256_castsi256_ps(m));
            _mm256_storeu_ps(weight.as_mut_ptr().add(k), w);
            let a = _mm256_castps_si256(_mm256_andnot_ps(sign, _mm256_mul_ps(ev, xk)));
            max_a = _mm256_max_epi32(max_a, _mm256_and_si256(a, m));
            k += 8;
        }
        let m4 = _mm_max_epi32(
            _mm256_castsi256_si128(max_a),
            _mm256_extracti128_si256::<1>(max_a),
        );
        let m4 = _mm_max_epi32(m4, _mm_shuffle_epi32::<0b01_00_11_10>(m4));
        let m4 = _mm_max_epi32(m4, _mm_shuffle_epi32::<0b10_11_00_01>(m4));
        _mm_cvtsi128_si32(m4)
    };
    // The last `n % 8` slots by the slot-skipping pass (the same values): a vectorised
    // remainder would bring the masked stores back.
    let b = body;
    let max_tail = update::<false>(
        p,
        e,
        inv_norm,
        step,
        thr,
        true,
        &xs[b..],
        &key[b..],
        &mut weight[b..],
        &short[b..],
        &long[b..],
        &cons[b..],
        &anchor[b..],
    );
    max_body.max(max_tail)
}

/// Pass 5, fused: evaporate, deposit `a · dep` on the selected (`key >= thr`), long trail.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn trails(
    p: &RuleParams,
    e: f32,
    dep: f32,
    thr: i32,
    xs: &[f32],
    key: &[i32],
    short: &mut [f32],
    long: &mut [f32],
) {
    let n = xs.len();
    let (key, short, long) = (&key[..n], &mut short[..n], &mut long[..n]);
    let (rho_s, rho_l) = (p.rho_short, p.rho_long);
    for k in 0..n {
        let m = key[k] >= thr;
        let s0 = rho_s * short[k];
        let s1 = (s0 + (e * xs[k]).abs() * dep).min(1.0);
        let s = blend(m, s1, s0);
        short[k] = s;
        long[k] = rho_l * long[k] + (1.0 - rho_l) * s;
    }
}

/// Evaporation only (no synapse selected, or no error).
#[inline(always)]
fn evaporate(p: &RuleParams, short: &mut [f32], long: &mut [f32]) {
    let n = short.len();
    let long = &mut long[..n];
    let (rho_s, rho_l) = (p.rho_short, p.rho_long);
    for k in 0..n {
        let s = rho_s * short[k];
        short[k] = s;
        long[k] = rho_l * long[k] + (1.0 - rho_l) * s;
    }
}

#[inline(always)]
fn kernel<const AVX2: bool>(
    row: &mut RowMut<'_>,
    bias: &mut f32,
    inp: RowIn<'_>,
    xs: &mut [f32],
    key: &mut [i32],
    wide: &mut [u64],
) -> u32 {
    let RowIn {
        x,
        e,
        trace,
        nx2,
        seen,
        plan,
    } = inp;
    let n = xs.len();
    let (p, inv_norm) = (plan.p, plan.inv_norm);
    let RowMut {
        pre,
        weight,
        short_trail: short,
        long_trail: long,
        consolidation: cons,
        anchor,
        ..
    } = row;
    let (short, long) = (&mut short[..n], &mut long[..n]);
    let mut selected = 0;
    let mut max_bits = 0i32;
    // Slot k is selected iff key[k] >= thr; nothing is, by default.
    let mut thr = i32::MAX;
    let (nx2, nc) = if e != 0.0 {
        (nx2, gather_row::<AVX2>(&pre[..n], x, seen, e, xs, key))
    } else {
        (0.0, 0) // no candidates; Σx² cannot change the bias's ±0 step
    };
    // A row without candidates (sparse input) skips selection and update.
    if nc > 0 {
        // 3. Selection: none when the quota takes every candidate (keys stay 0 / -1).
        let q = plan.row_quota(nc, trace);
        thr = if q >= nc {
            0
        } else {
            keys(p, plan.routes, e, inv_norm, xs, short, long, cons, key);
            if n <= RANK_ROW {
                select_short::<AVX2>(key, q)
            } else {
                cut_by_select(key, q, wide).apply(key)
            }
        };
        selected = q as u32;
        let step = p.lr * e / (p.eps + nx2);
        // Below a quarter of the row, skipping slots beats the vectorised masked pass — except
        // on a row of 16 under AVX2, where the masked pass is two vectors and the skipping
        // loop's test per slot mispredicts.
        let sparse = 4 * nc <= n && !(AVX2 && n == RANK_ROW);
        max_bits = update::<AVX2>(
            p, e, inv_norm, step, thr, sparse, xs, key, weight, short, long, cons, anchor,
        );
    }
    if p.use_bias {
        *bias += p.bias_lr * e / (1.0 + nx2);
    }
    // 5. Trails (relative to the largest selected co-activity); 6. consolidation decay.
    let max_a = f32::from_bits(max_bits as u32);
    if max_a > 0.0 {
        let dep = (1.0 - p.rho_short) / max_a;
        trails(p, e, dep, thr, xs, key, short, long);
    } else {
        evaporate(p, short, long);
    }
    if p.rho_consolidation != 1.0 {
        for c in cons[..n].iter_mut() {
            *c *= p.rho_consolidation;
        }
    }
    selected
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator for test data (xorshift32); the layer's tests use it too.
    pub(crate) fn xorshift(mut s: u32) -> impl FnMut() -> u32 {
        move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        }
    }

    fn params() -> RuleParams {
        let cfg = LearnConfig {
            budget: 1.0,
            ..LearnConfig::default()
        };
        RuleParams::new(&cfg, &Budget::new(&cfg), true, 0.0)
    }

    struct Row {
        pre: Vec<u32>,
        w: Vec<f32>,
        s: Vec<f32>,
        l: Vec<f32>,
        c: Vec<f32>,
        a: Vec<f32>,
        len: u32,
    }

    impl Row {
        fn new(pre: Vec<u32>, w: Vec<f32>) -> Self {
            let n = pre.len();
            Row {
                len: n as u32,
                pre,
                a: w.clone(),
                w,
                s: vec![0.0; n],
                l: vec![0.0; n],
                c: vec![0.0; n],
            }
        }
        fn view(&mut self) -> RowMut<'_> {
            RowMut {
                pre: &mut self.pre,
                weight: &mut self.w,
                short_trail: &mut self.s,
                long_trail: &mut self.l,
                consolidation: &mut self.c,
                anchor: &mut self.a,
                cascade_1: &mut [],
                cascade_2: &mut [],
                cascade_3: &mut [],
                cascade_4: &mut [],
                len: &mut self.len,
            }
        }
    }

    #[test]
    fn quota_rounds_up_and_skews_when_expanding() {
        assert_eq!(quota(0, 0.3, false, 0.0, 0.0), 0);
        assert_eq!(quota(10, 0.25, false, 0.0, 0.0), 3);
        assert_eq!(quota(10, 0.02, false, 0.0, 0.0), 1);
        // twice the mean trace: twice the quota
        assert_eq!(quota(10, 0.25, true, 2.0, 1.0), 5);
        // far below the mean: never less than the plain quota (DESIGN §3.1)
        assert_eq!(quota(10, 0.25, true, 0.0001, 1.0), 3);
        assert_eq!(quota(10, 0.02, true, 0.0, 1.0), 1);
        // capped at the candidates; NaN and infinite products stay in range
        assert_eq!(quota(10, 0.5, true, 100.0, 1.0), 10);
        assert_eq!(quota(10, 0.5, true, f32::INFINITY, 1.0), 10);
        assert_eq!(quota(10, f64::NAN, false, 0.0, 0.0), 1);
        assert_eq!(ceil_count(2.0), 2);
        assert_eq!(ceil_count(2.000001), 3);
        assert_eq!(ceil_count(0.0), 0);
        // mean 0: plain quota
        assert_eq!(quota(10, 0.25, true, 1.0, 0.0), 3);
        // The fast conversion agrees with the definition, `ceil_count(f·|C|·skew)` clamped.
        let mut s = 0x9e37_79b9u32;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let nc = 1 + (s % 300) as usize;
            let f = match s % 7 {
                0 => 1.0,
                1 => (s % 11) as f64 / 10.0,
                _ => (s >> 9) as f64 / (1u64 << 23) as f64,
            };
            let trace = (s >> 20) as f32 / 64.0;
            let want = ceil_count(f * nc as f64 * (trace as f64 / 1.5).max(1.0)).clamp(1, nc);
            assert_eq!(
                quota(nc, f, true, trace, 1.5),
                want,
                "nc {nc} f {f} trace {trace}"
            );
            let want = ceil_count(f * nc as f64).clamp(1, nc);
            assert_eq!(quota(nc, f, false, trace, 1.5), want, "nc {nc} f {f}");
        }
        assert_eq!(quota(7, -0.5, false, 0.0, 0.0), 1);
        assert_eq!(quota(7, f64::INFINITY, false, 0.0, 0.0), 7);
    }

    #[test]
    fn row_quota_is_the_quota_table_or_not() {
        // The per-step table answers exactly what `quota` would, for every row the kernel can
        // ask about: skewed or not, traces at, below and above the mean, odd values, and a
        // budget changed after the table was made (the table must not answer for it).
        let traces = [
            0.0f32,
            0.3,
            0.5,
            0.5000001,
            0.7,
            2.0,
            f32::NAN,
            f32::INFINITY,
        ];
        let mut s = 0x51ed_270bu32;
        for round in 0..400 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let f = match round % 5 {
                0 => 1.0,
                1 => 0.3,
                2 => 0.02,
                _ => (s >> 8) as f64 / (1u64 << 24) as f64,
            };
            let cfg = LearnConfig::default();
            let mut p = RuleParams::new(&cfg, &Budget::new(&cfg), true, 0.0);
            p.budget = f;
            p.plain_quotas = PlainQuotas::new(f);
            if round % 7 == 3 {
                p.budget = f * 0.5; // changed afterwards: a stale table
            }
            for (expanding, mean_trace) in
                [(false, 0.0), (true, 0.5), (true, 0.0), (true, f64::NAN)]
            {
                p.expanding = expanding;
                p.mean_trace = mean_trace;
                for nc in 0..=40 {
                    for &trace in &traces {
                        let want = quota(nc, p.budget, expanding, trace, mean_trace);
                        assert_eq!(
                            p.plan().row_quota(nc, trace),
                            want,
                            "f {f} nc {nc} trace {trace}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn full_budget_step_by_hand() {
        // x = (1, 2), e = 0.5, w = 0: nx2 = 5, s = l = c = 0 so g = 1/2.
        let x = [1.0f32, 2.0];
        let mut r = Row::new(vec![0, 1], vec![0.0, 0.0]);
        let mut bias = 0.0;
        let n = learn_row(&mut r.view(), &x, 0.5, &mut bias, 0.0, &params());
        assert_eq!(n, 2);
        let denom = 1e-6f32 + 5.0;
        assert!((r.w[0] - 0.5 * 0.5 * 0.5 * 1.0 / denom).abs() < 1e-7);
        assert!((r.w[1] - 0.5 * 0.5 * 0.5 * 2.0 / denom).abs() < 1e-7);
        assert!((bias - 0.5 * 0.5 / 6.0).abs() < 1e-7);
        // deposit a / max a: 0.1 * (0.5/1.0) and 0.1 * 1.0
        assert!((r.s[0] - 0.05).abs() < 1e-7 && (r.s[1] - 0.1).abs() < 1e-7);
        assert!((r.l[1] - 0.005 * 0.1).abs() < 1e-8);
    }

    #[test]
    fn budget_picks_highest_priority_ties_by_lower_index() {
        // Equal activity everywhere: the quota of 2 must take inputs 3 and 5 (lowest indices).
        let x = [0.0f32, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let mut r = Row::new(vec![3, 5, 6], vec![0.0; 3]);
        let mut p = params();
        p.budget = 0.5;
        let mut bias = 0.0;
        let n = learn_row(&mut r.view(), &x, 1.0, &mut bias, 0.0, &p);
        assert_eq!(n, 2);
        assert!(r.w[0] > 0.0 && r.w[1] > 0.0 && r.w[2] == 0.0);
        // Now a strong short trail on input 6 wins the pheromone factor.
        let mut r = Row::new(vec![3, 5, 6], vec![0.0; 3]);
        r.s[2] = 1.0;
        let n = learn_row(&mut r.view(), &x, 1.0, &mut bias, 0.0, &p);
        assert_eq!(n, 2);
        assert!(r.w[0] > 0.0 && r.w[1] == 0.0 && r.w[2] > 0.0);
    }

    #[test]
    fn zero_error_evaporates_only() {
        let x = [1.0f32, 1.0];
        let mut r = Row::new(vec![0, 1], vec![0.3, -0.2]);
        r.s = vec![0.5, 1.0];
        r.l = vec![0.2, 0.4];
        let mut bias = 0.1;
        let n = learn_row(&mut r.view(), &x, 0.0, &mut bias, 0.0, &params());
        assert_eq!(n, 0);
        assert_eq!(r.w, vec![0.3, -0.2]);
        assert_eq!(bias, 0.1);
        assert!((r.s[0] - 0.45).abs() < 1e-7 && (r.s[1] - 0.9).abs() < 1e-7);
        assert!((r.l[0] - (0.995 * 0.2 + 0.005 * 0.45)).abs() < 1e-7);
    }

    #[test]
    fn consolidation_freezes_and_pulls_to_anchor() {
        let x = [1.0f32];
        let mut r = Row::new(vec![0], vec![1.0]);
        r.c = vec![1.0];
        r.a = vec![0.0];
        let mut bias = 0.0;
        learn_row(&mut r.view(), &x, 1.0, &mut bias, 0.0, &params());
        // (1 - c) = 0 blocks the error step; the pull moves w toward w* = 0 by η·λ = 5%.
        assert!((r.w[0] - 0.95).abs() < 1e-7);
    }

    #[test]
    fn weights_are_clipped() {
        let x = [1.0f32];
        let mut r = Row::new(vec![0], vec![9.9]);
        let mut p = params();
        p.lr = 1.9;
        p.w_max = 10.0;
        let mut bias = 0.0;
        learn_row(&mut r.view(), &x, 100.0, &mut bias, 0.0, &p);
        assert_eq!(r.w[0], 10.0);
    }

    /// Naive selection: sort candidates by (key desc, slot asc), take `quota`.
    fn naive(key: &[i32], quota: usize) -> Vec<bool> {
        let mut idx: Vec<usize> = (0..key.len()).filter(|&k| key[k] >= 0).collect();
        idx.sort_by(|&a, &b| key[b].cmp(&key[a]).then(a.cmp(&b)));
        let mut sel = vec![false; key.len()];
        for &k in idx.iter().take(quota) {
            sel[k] = true;
        }
        sel
    }

    #[test]
    fn rank_and_select_cuts_match_a_sort() {
        let mut s = 0x9e37_79b9u32;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        for n in 1..=100usize {
            for _ in 0..20 {
                // Few distinct values so ties are common; about a quarter non-candidates.
                let key: Vec<i32> = (0..n)
                    .map(|_| match next() % 8 {
                        0 | 1 => -1,
                        v => (v as i32) << 20,
                    })
                    .collect();
                let nc = key.iter().filter(|&&k| k >= 0).count();
                for q in 1..=nc {
                    let want = naive(&key, q);
                    let mut wide = vec![0u64; n];
                    let cut = cut_by_select(&key, q, &mut wide);
                    let mut kk = key.clone();
                    let thr = cut.apply(&mut kk);
                    let got: Vec<bool> = kk.iter().map(|&v| v >= thr).collect();
                    assert_eq!(got, want, "n {n} quota {q} keys {key:?} cut {cut:?}");
                    if q == 1 {
                        // The one-candidate selection: the same pick, the others dropped.
                        let mut kk = key.clone();
                        let thr = select_one::<false>(&mut kk);
                        let got: Vec<bool> = kk.iter().map(|&v| v >= thr).collect();
                        assert_eq!(got, want, "one: n {n} keys {key:?}");
                        #[cfg(target_arch = "x86_64")]
                        if std::arch::is_x86_feature_detected!("avx2") {
                            let mut k2 = key.clone();
                            let thr = select_one::<true>(&mut k2);
                            assert_eq!((k2, thr), (kk, 0), "one avx2: n {n} keys {key:?}");
                        }
                    }
                    if n <= RANK_ROW {
                        let mut kk = key.clone();
                        let thr = select_short::<false>(&mut kk, q);
                        let got: Vec<bool> = kk.iter().map(|&v| v >= thr).collect();
                        assert_eq!(got, want, "short: n {n} quota {q} keys {key:?}");
                        #[cfg(target_arch = "x86_64")]
                        if std::arch::is_x86_feature_detected!("avx2") {
                            let mut kk = key.clone();
                            let thr = select_short::<true>(&mut kk, q);
                            let got: Vec<bool> = kk.iter().map(|&v| v >= thr).collect();
                            assert_eq!(got, want, "short avx2: n {n} quota {q} keys {key:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn count_kernels_agree() {
        // Plain Rust, SSE2 and AVX2 counts on random keys with ties, every row length.
        let mut s = 0x2545_f491u32;
        for n in 0..=RANK_ROW {
            for _ in 0..50 {
                let mut k16 = [-1i32; RANK_ROW];
                for kk in k16[..n].iter_mut() {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    *kk = if s.is_multiple_of(4) {
                        -1
                    } else {
                        (s % 5) as i32 * 0x0100_0000
                    };
                }
                let mut want = [0i32; RANK_ROW];
                counts_above_portable(&k16, n, &mut want);
                #[cfg(target_arch = "x86_64")]
                {
                    let mut got = [0i32; RANK_ROW];
                    counts_above_sse2(&k16, n, &mut got);
                    assert_eq!(got, want, "sse2 n {n} {k16:?}");
                    if std::arch::is_x86_feature_detected!("avx2") {
                        use std::arch::x86_64::*;
                        let mut got = [0i32; RANK_ROW];
                        // SAFETY: AVX2 is present (checked above); 8-lane stores at lanes 0
                        // and 8 of a 16-lane array.
                        unsafe {
                            let (r0, r1) = counts_above_lanes(&k16);
                            let gp = got.as_mut_ptr() as *mut __m256i;
                            _mm256_storeu_si256(gp, r0);
                            _mm256_storeu_si256(gp.add(1), r1);
                        }
                        assert_eq!(got, want, "avx2 n {n} {k16:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn avx2_and_baseline_kernels_agree_bit_for_bit() {
        // Rows of every length around the special cases (16: fixed length; 64: stack limit),
        // random state and a real budget, expanding or not: both builds, same bits.
        let mut bits = xorshift(0x1234_5678);
        let mut next = move || (bits() >> 8) as f32 / (1u32 << 24) as f32;
        let x: Vec<f32> = (0..200)
            .map(|i| if i % 7 == 0 { 0.0 } else { next() * 4.0 - 2.0 })
            .collect();
        // Mostly zero inputs too: few candidates, so the sparse update pass, and -0.0.
        let sparse: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| match i % 5 {
                0 => v,
                1 => -0.0,
                _ => 0.0,
            })
            .collect();
        for (n, x, dense) in [1usize, 5, 15, 16, 17, 40, 64, 65, 130]
            .into_iter()
            .flat_map(|n| [(n, &x, true), (n, &sparse, false)])
        {
            // Variants: expanding or not; the step scaled by the trails or not; weights
            // that clip (small w_max), with a NaN and infinities among them (the vector
            // clamp must keep a NaN as `clamp` does).
            // And a budget at its floor: a quota of 1 (`select_one`) on every row.
            for (expanding, scaled, odd, budget) in [
                (false, true, false, 0.3),
                (true, true, false, 0.3),
                (false, false, true, 0.3),
                (true, false, true, 0.3),
                (false, true, false, 0.02),
                (true, false, true, 0.02),
            ] {
                let pre: Vec<u32> = (0..n as u32).map(|k| k + (k * 7) % 3).collect();
                let mut a = Row::new(pre, (0..n).map(|_| next() - 0.5).collect());
                a.s = (0..n).map(|_| next()).collect();
                a.l = (0..n).map(|_| next()).collect();
                a.c = (0..n).map(|_| next() * 0.5).collect();
                a.a = (0..n).map(|_| next() - 0.5).collect();
                if odd {
                    for (k, w) in a.w.iter_mut().enumerate() {
                        match k % 11 {
                            3 => *w = f32::NAN,
                            6 => *w = f32::INFINITY,
                            9 => *w = f32::NEG_INFINITY,
                            _ => {}
                        }
                    }
                }
                let mut b = Row::new(a.pre.clone(), a.w.clone());
                (b.s, b.l, b.c, b.a) = (a.s.clone(), a.l.clone(), a.c.clone(), a.a.clone());
                let p = RuleParams {
                    budget,
                    expanding,
                    mean_trace: 0.5,
                    kappa_long: 0.5,
                    rho_consolidation: 0.99,
                    trail_scaled_step: scaled,
                    w_max: if odd { 0.3 } else { 10.0 },
                    pull: 0.4,
                    ..params()
                };
                let (mut ba, mut bb) = (0.1f32, 0.1f32);
                let na = learn_row_base(&mut a.view(), x, -0.7, &mut ba, 0.9, &p);
                #[cfg(target_arch = "x86_64")]
                let nb = if std::arch::is_x86_feature_detected!("avx2") {
                    unsafe { learn_row_avx2(&mut b.view(), x, -0.7, &mut bb, 0.9, &p) }
                } else {
                    learn_row_base(&mut b.view(), x, -0.7, &mut bb, 0.9, &p)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let nb = learn_row_base(&mut b.view(), x, -0.7, &mut bb, 0.9, &p);
                assert_eq!(na, nb, "n {n}");
                if n >= 5 && dense {
                    assert!(na > 0 && (na as usize) < n, "n {n}: a real selection");
                }
                if dense && budget < 0.05 && !expanding && (5..=40).contains(&n) {
                    assert_eq!(na, 1, "n {n}: one synapse");
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                for (u, v) in [(&a.w, &b.w), (&a.s, &b.s), (&a.l, &b.l), (&a.c, &b.c)] {
                    assert_eq!(
                        bits(u),
                        bits(v),
                        "n {n} {expanding} {scaled} {odd} {budget}"
                    );
                }
                assert_eq!(ba.to_bits(), bb.to_bits());
            }
        }
    }

    #[test]
    fn long_rows_select_like_short_rows() {
        // Rows of 10, 40 and 100 synapses (stack, wide-stack and thread-local paths) with
        // the same pattern repeated: each takes its ceil(f·|C|) best, ties by lower index.
        for n in [10usize, 40, 100] {
            let x: Vec<f32> = (0..n).map(|i| ((i % 5) as f32) * 0.5).collect();
            let mut r = Row::new((0..n as u32).collect(), vec![0.0; n]);
            let mut p = params();
            p.budget = 0.3;
            let mut bias = 0.0;
            let got = learn_row(&mut r.view(), &x, 1.0, &mut bias, 0.0, &p) as usize;
            let nc = x.iter().filter(|&&v| v > 0.0).count();
            let q = (0.3 * nc as f64).ceil() as usize;
            assert_eq!(got, q);
            let mut order: Vec<usize> = (0..n).filter(|&k| x[k] > 0.0).collect();
            order.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
            for (rank, &k) in order.iter().enumerate() {
                assert_eq!(r.w[k] != 0.0, rank < q, "n {n} slot {k}");
            }
            assert!(r.w.iter().zip(&x).all(|(&w, &v)| v > 0.0 || w == 0.0));
        }
    }

    #[test]
    fn block_walk_learns_like_row_by_row() {
        // Rows of many lengths (16, shorter, longer than the stack limit, empty) over several
        // blocks, some rows not involved, zeros in the input and the errors: both block builds
        // give the bits of the row-by-row kernel, for the plain rule and with routing and
        // expansion.
        use crate::arena::SynapseArena;
        use crate::topology::Neighbourhood;
        let mut next = xorshift(0x9e37_79b9);
        let n_in = 128u32;
        let lens = [16usize, 16, 3, 0, 16, 40, 16, 70, 15, 17, 16, 1];
        let (mut start, mut pre) = (vec![0usize], Vec::new());
        for j in 0..600 {
            let len = lens[j % lens.len()];
            let first = next() % (n_in - len as u32 + 1).max(1);
            pre.extend((0..len as u32).map(|k| first + k));
            start.push(pre.len());
        }
        let nb = Neighbourhood { start, pre };
        let n_rows = nb.start.len() - 1;
        let mut unit = || (next() >> 8) as f32 / (1u32 << 24) as f32;
        let mut base = SynapseArena::from_neighbourhood(&nb, &mut unit);
        let fill: Vec<f32> = (0..3 * base.n_slots()).map(|_| unit()).collect();
        base.par_rows((), |_, row, ()| {
            for k in 0..row.live() {
                let v = fill[(row.pre[k] as usize * 7 + k) % fill.len()];
                row.short_trail[k] = v;
                row.long_trail[k] = 1.0 - v;
                row.consolidation[k] = 0.5 * v;
            }
        });
        let x: Vec<f32> = (0..n_in)
            .map(|i| if i % 5 == 0 { 0.0 } else { unit() - 0.5 })
            .collect();
        let e: Vec<f32> = (0..n_rows)
            .map(|j| if j % 7 == 0 { 0.0 } else { unit() - 0.5 })
            .collect();
        let involved: Vec<bool> = (0..n_rows).map(|j| j % 9 != 4).collect();
        let trace: Vec<f32> = (0..n_rows).map(|_| unit()).collect();
        for (expanding, route) in [(false, 0.0f32), (true, 0.5)] {
            let p = RuleParams {
                expanding,
                mean_trace: 0.5,
                kappa_long: 0.5,
                rho_consolidation: 0.99,
                route_long: route,
                ..RuleParams::new(
                    &LearnConfig {
                        budget: 0.3,
                        ..LearnConfig::default()
                    },
                    &Budget::new(&LearnConfig {
                        budget: 0.3,
                        ..LearnConfig::default()
                    }),
                    true,
                    0.0,
                )
            };
            // Σx² as the forward pass hands it over; `learn_row_base` sums its own.
            let norms: Vec<f32> = (0..n_rows)
                .map(|j| sum_of_squares(&base.pre()[base.live(j)], &x))
                .collect();
            let inputs = StepInputs {
                x: &x,
                e: &e,
                involved: &involved,
                trace: &trace,
                params: &p,
                cascade: None,
                nx2: &norms,
                seen: None,
            };
            // The inputs as the forward pass keeps them (`Layer::seen`): every slot's
            // x[pre[k]]; the spare slots hold garbage nothing may read.
            let seen: Vec<f32> = base
                .pre()
                .iter()
                .enumerate()
                .map(|(k, &i)| x.get(i as usize).copied().unwrap_or(k as f32 * 1e9))
                .collect();
            let with_seen = StepInputs {
                seen: Some(&seen),
                ..inputs
            };
            let run = |how: u8| {
                let mut a = base.clone();
                let mut bias = vec![0.25f32; n_rows];
                let mut count = vec![7u32; n_rows];
                let side = (&mut bias[..], &mut count[..]);
                match how {
                    0 => a.par_rows(side, |j, mut row, (b, c)| {
                        *c = if involved[j] {
                            learn_row_base(&mut row, &x, e[j], b, trace[j], &p)
                        } else {
                            0
                        };
                    }),
                    1 => a.par_blocks(side, |blk| learn_block_any::<false>(blk, &inputs)),
                    2 => a.par_blocks(side, |blk| learn_block(blk, &inputs)),
                    _ => a.par_blocks(side, |blk| learn_block(blk, &with_seen)),
                }
                (a, bias, count)
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let (want, wb, wc) = run(0);
            assert!(wc.iter().any(|&c| c > 0) && wc.contains(&0));
            for how in [1u8, 2, 3] {
                let (got, gb, gc) = run(how);
                let (w, g) = (want.columns(), got.columns());
                for (u, v) in [
                    (w.weight, g.weight),
                    (w.short_trail, g.short_trail),
                    (w.long_trail, g.long_trail),
                    (w.consolidation, g.consolidation),
                    (w.anchor, g.anchor),
                ] {
                    assert_eq!(bits(u), bits(v), "build {how} expanding {expanding}");
                }
                assert_eq!(bits(&gb), bits(&wb));
                assert_eq!(gc, wc);
            }
        }
    }

    #[test]
    fn routing_factor_only_with_a_routing_weight() {
        // Weights 0: the plan leaves the factor out, which is the same bits as multiplying by
        // (1 - 0·c)(1 - 0·l) = 1 for finite states, and stays a·g where c is not finite.
        let mut p = params();
        p.kappa_long = 0.5;
        assert!(!p.plan().routes);
        let mut s = 0x0bad_5eedu32;
        for _ in 0..2000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let v = |k: u32| ((s >> k) & 0xffff) as f32 / 65536.0;
            let (a, sh, l, c) = (v(0) * 4.0, v(4), v(8), v(12));
            let plain = priority::<false, false>(&p, 0.4, a, sh, l, c);
            let with = priority::<true, false>(&p, 0.4, a, sh, l, c);
            assert_eq!(plain.to_bits(), with.to_bits());
        }
        let plain = priority::<false, false>(&p, 0.4, 0.5, 0.2, 0.1, f32::NAN);
        assert_eq!(plain, 0.5 * pheromone(&p, 0.4, 0.2, 0.1));
        assert!(priority::<true, false>(&p, 0.4, 0.5, 0.2, 0.1, f32::NAN).is_nan());
        p.route_long = 0.25;
        assert!(p.plan().routes);
    }

    #[test]
    fn routing_sends_the_budget_to_free_synapses() {
        // Four equal candidates, quota 2 (budget 0.5): the plain rule takes the lower indices;
        // with routing, the consolidated (slot 0) and long-used (slot 1) ones lose their place.
        let pick = |route_consolidation: f32, route_long: f32| {
            let p = RuleParams {
                budget: 0.5,
                route_consolidation,
                route_long,
                ..params()
            };
            let mut r = Row::new(vec![0, 1, 2, 3], vec![0.0; 4]);
            r.c[0] = 0.5;
            r.l[1] = 0.5;
            let mut b = 0.0;
            learn_row_base(&mut r.view(), &[1.0; 4], 1.0, &mut b, 0.0, &p);
            (0..4).map(|k| r.w[k] != 0.0).collect::<Vec<_>>()
        };
        assert_eq!(pick(0.0, 0.0), [true, true, false, false]);
        assert_eq!(pick(1.0, 0.0), [false, true, true, false]);
        assert_eq!(pick(1.0, 1.0), [false, false, true, true]);
    }

    #[test]
    fn sparse_and_masked_update_passes_agree_bit_for_bit() {
        let p = RuleParams {
            kappa_long: 0.5,
            pull: 0.3,
            ..params()
        };
        let n = 16;
        let xs: Vec<f32> = (0..n).map(|k| (k as f32 * 0.37).sin() * 3.0).collect();
        let key: Vec<i32> = (0..n).map(|k| if k % 5 == 1 { 7 } else { -1 }).collect();
        let short: Vec<f32> = (0..n).map(|k| (k as f32 * 0.11).cos().abs()).collect();
        let long: Vec<f32> = short.iter().map(|s| s * 0.5).collect();
        let cons: Vec<f32> = (0..n).map(|k| (k % 3) as f32 * 0.4).collect();
        let anchor: Vec<f32> = (0..n).map(|k| k as f32 * 0.1 - 0.5).collect();
        let w0: Vec<f32> = (0..n).map(|k| (k as f32 * 0.7).sin()).collect();
        let (mut wa, mut wb) = (w0.clone(), w0.clone());
        let run = |sparse: bool, w: &mut [f32]| {
            update::<false>(
                &p, -0.8, 0.4, 0.05, 0, sparse, &xs, &key, w, &short, &long, &cons, &anchor,
            )
        };
        let (ma, mb) = (run(true, &mut wa), run(false, &mut wb));
        assert_eq!(ma, mb);
        assert!(ma > 0);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&wa), bits(&wb));
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // The masked pass in AVX2 lanes, the same bits.
            let mut wc = w0.clone();
            // SAFETY: AVX2 is present (checked just above).
            let mc = unsafe {
                update_avx2(
                    &p, -0.8, 0.4, 0.05, 0, &xs, &key, &mut wc, &short, &long, &cons, &anchor,
                )
            };
            assert_eq!(mc, ma);
            assert_eq!(bits(&wc), bits(&wa));
        }
        for k in 0..n {
            assert_eq!(wa[k] != w0[k], key[k] >= 0, "slot {k}");
        }
    }
}

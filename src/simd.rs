//! x86-64 vector pieces shared by the forward pass (`layer.rs`) and the row kernel (`rule.rs`).

/// The inputs `x[pre[at + i]]` of 8 consecutive slots, in one AVX2 gather. Indices are below
/// n_in (an arena invariant); each is still clamped to `x.len() - 1` (unsigned), which is below
/// 2^31, so read as signed by the gather it indexes inside `x` whatever `pre` holds.
///
/// Caller: AVX2 present; `at + 8 <= pre.len()`; `x` non-empty with fewer than 2^31 entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn gather8(x: &[f32], pre: &[u32], at: usize) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    // SAFETY (caller): the load of 8 at `at` stays inside `pre`; clamped indices stay in `x`.
    unsafe {
        let last = _mm256_set1_epi32((x.len() - 1) as i32);
        let idx = _mm256_min_epu32(_mm256_loadu_si256(pre.as_ptr().add(at) as _), last);
        _mm256_i32gather_ps::<4>(x.as_ptr(), idx)
    }
}

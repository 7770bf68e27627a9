//! The per-row learning rule (docs/rule.md, steps 1–6): candidates, pheromone factor, budgeted
//! selection, normalised update with consolidation pull, clipping, trails.
use crate::arena::RowMut;
use crate::budget::Budget;
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
    pub w_max: f32,
    pub eps: f32,
    pub use_bias: bool,
    /// Budget fraction `f` of the layer.
    pub budget: f64,
    /// Whether the layer is expanding this step (§3.1).
    pub expanding: bool,
    /// Mean error trace over involved rows (expansion quota); 0 disables the skew.
    pub mean_trace: f64,
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
            w_max: cfg.w_max,
            eps: cfg.eps,
            use_bias,
            budget: budget.fraction,
            expanding: budget.expanding,
            mean_trace,
        }
    }
}

thread_local! {
    // Reused across steps so the hot loop does not allocate once warm.
    static SCRATCH: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Selection key: larger is better. Priorities are non-negative floats, whose bit patterns
/// order like the values; the low half holds the complement of the slot, and rows are sorted by
/// input index, so equal priorities prefer the lower input index (docs/rule.md, step 3).
#[inline]
fn key(priority: f32, slot: usize) -> u64 {
    ((priority.to_bits() as u64) << 32) | (u32::MAX - slot as u32) as u64
}

#[inline]
fn slot_of(key: u64) -> usize {
    (u32::MAX - (key & 0xffff_ffff) as u32) as usize
}

/// Row quota `k_j` (§3 step 3 and §3.1).
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
        (budget * nc * trace as f64 / mean_trace).ceil()
    } else {
        (budget * nc).ceil()
    };
    if k.is_nan() {
        1
    } else {
        (k as usize).clamp(1, n_candidates)
    }
}

/// Σ x_i² over the row's live synapses, in storage order.
#[inline]
pub fn input_energy(pre: &[u32], x: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for &i in pre {
        let v = x[i as usize];
        acc += v * v;
    }
    acc
}

/// Apply one step to one involved row with local error `e`; returns how many synapses were
/// updated. `bias` is the row's bias, `trace` its error trace `h_j` (read only here).
pub fn learn_row(
    row: &mut RowMut<'_>,
    x: &[f32],
    e: f32,
    bias: &mut f32,
    trace: f32,
    p: &RuleParams,
) -> u32 {
    let n = row.live();
    let nx2 = input_energy(&row.pre[..n], x);
    let norm = 1.0 + p.kappa_short + p.kappa_long;
    let pheromone = |s: f32, l: f32| (1.0 + p.kappa_short * s + p.kappa_long * l) / norm;
    let selected = SCRATCH.with(|cell| {
        let mut keys = cell.borrow_mut();
        keys.clear();
        if e != 0.0 {
            for k in 0..n {
                let a = (e * x[row.pre[k] as usize]).abs();
                if a > 0.0 {
                    let mut priority = a * pheromone(row.short_trail[k], row.long_trail[k]);
                    if p.expanding {
                        priority += p.beta * row.short_trail[k];
                    }
                    keys.push(key(priority, k));
                }
            }
        }
        let quota = quota(keys.len(), p.budget, p.expanding, trace, p.mean_trace);
        if quota < keys.len() {
            keys.select_nth_unstable_by(quota - 1, |a, b| b.cmp(a));
            keys.truncate(quota);
        }
        let denom = p.eps + nx2;
        let mut max_a = 0.0f32;
        for &kk in keys.iter() {
            let k = slot_of(kk);
            let xi = x[row.pre[k] as usize];
            let a = (e * xi).abs();
            let g = pheromone(row.short_trail[k], row.long_trail[k]);
            let cons = row.consolidation[k];
            let mut w = row.weight[k] + p.lr * g * (1.0 - cons) * e * xi / denom;
            w -= p.lr * p.pull * cons * (w - row.anchor[k]);
            row.weight[k] = w.clamp(-p.w_max, p.w_max);
            max_a = max_a.max(a);
        }
        if p.use_bias {
            *bias += p.bias_lr * e / (1.0 + nx2);
        }
        for s in row.short_trail[..n].iter_mut() {
            *s *= p.rho_short;
        }
        if max_a > 0.0 {
            for &kk in keys.iter() {
                let k = slot_of(kk);
                let a = (e * x[row.pre[k] as usize]).abs();
                let s = &mut row.short_trail[k];
                *s = (*s + (1.0 - p.rho_short) * a / max_a).min(1.0);
            }
        }
        keys.len() as u32
    });
    for k in 0..n {
        row.long_trail[k] =
            p.rho_long * row.long_trail[k] + (1.0 - p.rho_long) * row.short_trail[k];
    }
    if p.rho_consolidation != 1.0 {
        for c in row.consolidation[..n].iter_mut() {
            *c *= p.rho_consolidation;
        }
    }
    selected
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // far below the mean: still at least one
        assert_eq!(quota(10, 0.25, true, 0.0001, 1.0), 1);
        // mean 0: plain quota
        assert_eq!(quota(10, 0.25, true, 1.0, 0.0), 3);
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
}

//! One sparse local layer: forward pass, a learning step on a given local error, consolidation.
use crate::arena::SynapseArena;
use crate::budget::Budget;
use crate::config::{LayerSpec, LearnConfig};
use crate::error::Result;
use crate::rule::{learn_row, RuleParams};
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

/// Counters reported by `stats()`.
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

#[derive(Debug, Clone)]
pub struct Layer {
    pub spec: LayerSpec,
    pub geo: Geometry,
    pub signal: Signal,
    pub arena: SynapseArena,
    pub bias: Vec<f32>,
    /// `h_j`: running mean of |e_j| over the steps the row was involved in.
    pub error_trace: Vec<f32>,
    /// `u_i`: running mean of |x_i| (structural growth prefers active inputs).
    pub activity_trace: Vec<f32>,
    pub max_fan_in: Vec<u32>,
    pub budget: Budget,
    pub steps: u64,
    /// `F_h`, row-major `n_out × n_final_out`, for hidden layers with the feedback signal.
    pub feedback: Option<Vec<f32>>,
    pub stats: LayerStats,
    /// Growth neighbourhood, built on the first structural pass.
    pub(crate) growth: Option<Neighbourhood>,
    pub(crate) z: Vec<f32>,
    pub(crate) y: Vec<f32>,
    pub(crate) e: Vec<f32>,
    pub(crate) involved: Vec<bool>,
    pub(crate) row_count: Vec<u32>,
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
        let arena = SynapseArena::from_neighbourhood(&nb, draw_weight);
        let max_fan_in = (0..spec.n_out)
            .map(|j| spec.max_fan_in.unwrap_or(2 * arena.row_len[j] as usize) as u32)
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

    /// A layer around existing state (construction and checkpoint loading).
    pub fn assemble(
        spec: LayerSpec,
        geo: Geometry,
        signal: Signal,
        arena: SynapseArena,
        max_fan_in: Vec<u32>,
        budget: Budget,
    ) -> Self {
        let (n_in, n_out) = (spec.n_in, spec.n_out);
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

    pub fn learns_online(&self) -> bool {
        matches!(self.signal, Signal::Output | Signal::Feedback)
    }

    /// `z = b + W x`, `y = φ(z)`, written into the given buffers.
    pub fn forward_into(&self, x: &[f32], z: &mut [f32], y: &mut [f32]) {
        let act = self.spec.activation;
        let arena = &self.arena;
        let bias = &self.bias;
        let one = |j: usize, zj: &mut f32, yj: &mut f32| {
            let live = arena.live(j);
            let mut acc = 0.0f32;
            for (w, &i) in arena.weight[live.clone()].iter().zip(&arena.pre[live]) {
                acc += w * x[i as usize];
            }
            *zj = bias[j] + acc;
            *yj = act.apply(*zj);
        };
        if arena.pre.len() <= crate::pool::INLINE_SLOTS {
            for (j, (zj, yj)) in z.iter_mut().zip(y.iter_mut()).enumerate() {
                one(j, zj, yj);
            }
        } else {
            let rows = arena.n_rows().max(1);
            let grain = (FORWARD_GRAIN * rows / arena.pre.len().max(1)).max(16);
            z.par_iter_mut()
                .zip(y.par_iter_mut())
                .enumerate()
                .with_min_len(grain)
                .for_each(|(j, (zj, yj))| one(j, zj, yj));
        }
    }

    /// Forward into the layer's own scratch buffers (used by learning steps).
    pub(crate) fn forward_scratch(&mut self, x: &[f32]) {
        let mut z = std::mem::take(&mut self.z);
        let mut y = std::mem::take(&mut self.y);
        self.forward_into(x, &mut z, &mut y);
        self.z = z;
        self.y = y;
    }

    /// One application of the rule with input `x` and the local error already in `self.e`; the
    /// rows to involve are in `self.involved`. `loss` is the step loss fed to the budget.
    pub(crate) fn apply_step(&mut self, x: &[f32], loss: f64, cfg: &LearnConfig) {
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
        let params = RuleParams {
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
            use_bias: self.spec.bias,
            budget: self.budget.fraction,
            expanding,
            mean_trace,
        };
        {
            let e = &self.e;
            let involved = &self.involved;
            let trace = &self.error_trace;
            self.arena.par_rows(
                &mut self.bias,
                &mut self.row_count,
                |j, mut row, b, count| {
                    *count = if involved[j] {
                        learn_row(&mut row, x, e[j], b, trace[j], &params)
                    } else {
                        0
                    };
                },
            );
        }
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
        for j in 0..n_out {
            if self.involved[j] {
                self.error_trace[j] = rho_h * self.error_trace[j] + (1.0 - rho_h) * self.e[j].abs();
            }
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
        for j in 0..self.n_out() {
            for &l in &self.arena.long_trail[self.arena.live(j)] {
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
        let mut bias = std::mem::take(&mut self.bias);
        let mut count = std::mem::take(&mut self.row_count);
        self.arena.par_rows(&mut bias, &mut count, |_, row, _, _| {
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
        self.bias = bias;
        self.row_count = count;
    }

    /// §3.2 task-free variant: synapses with a strong long trail consolidate a little.
    fn auto_consolidate(&mut self, threshold: f32, increment: f32) {
        let mut bias = std::mem::take(&mut self.bias);
        let mut count = std::mem::take(&mut self.row_count);
        self.arena.par_rows(&mut bias, &mut count, |_, row, _, _| {
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
        self.bias = bias;
        self.row_count = count;
    }
}

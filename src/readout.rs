//! The output layer's local error: the squared error of the rule, or the softmax
//! classification error with its readout window (docs/rule.md, "Classification readout";
//! float order in docs/rule-notes.md, "Readout").
use crate::layer::Layer;

/// Readout state and scratch of a network.
#[derive(Debug, Clone, Default)]
pub struct Readout {
    /// With `readout_window > 0` (empty otherwise): per output, the 1-based index of the last
    /// new sample whose target on it was positive (0: never). Saved in checkpoints.
    pub last_positive: Vec<u64>,
    /// Scratch: the involved outputs of a new sample under the window.
    mask: Vec<bool>,
    /// Scratch: `exp(z_j − max z)` per output.
    ex: Vec<f64>,
}

impl Readout {
    pub fn new(n_out: usize, window: u64) -> Self {
        Readout {
            last_positive: if window > 0 {
                vec![0; n_out]
            } else {
                Vec::new()
            },
            mask: vec![false; n_out],
            ex: vec![0.0; n_out],
        }
    }

    /// Around saved window state (checked by the caller).
    pub fn restore(n_out: usize, last_positive: Vec<u64>) -> Self {
        Readout {
            last_positive,
            ..Readout::new(n_out, 0)
        }
    }

    /// Record new sample number `n` (1-based) with target `t`, then the outputs it involves:
    /// the caller's mask AND the outputs with a positive target among the last `window` new
    /// samples, this one included (`n − last < window`). The mask lives in `self` until the
    /// next call; it is taken out and handed back so the step can borrow the network.
    pub fn window_mask(
        &mut self,
        t: &[f32],
        caller: Option<&[bool]>,
        n: u64,
        window: u64,
    ) -> Vec<bool> {
        let mut m = std::mem::take(&mut self.mask);
        for (j, (last, on)) in self.last_positive.iter_mut().zip(m.iter_mut()).enumerate() {
            if t[j] > 0.0 {
                *last = n;
            }
            *on = *last > 0 && n.saturating_sub(*last) < window && caller.is_none_or(|c| c[j]);
        }
        m
    }

    /// Hand the mask from `window_mask` back (keeps its allocation).
    pub fn give_back(&mut self, m: Vec<bool>) {
        self.mask = m;
    }

    /// Softmax error of the (linear) output layer after its forward pass: over the involved
    /// outputs `M`, `p = softmax(z)` and `e_j = t_j − p_j`; other rows get `e = 0` and are not
    /// involved. Returns the cross-entropy `−Σ_{j∈M} t_j log p_j`, 0 when `M` is empty.
    pub fn softmax_error(&mut self, out: &mut Layer, t: &[f32], mask: Option<&[bool]>) -> f64 {
        let n = out.n_out();
        let mut zmax = f32::NEG_INFINITY;
        let mut any = false;
        for j in 0..n {
            let inv = mask.is_none_or(|m| m[j]);
            out.involved[j] = inv;
            if inv && (!any || out.z[j] > zmax) {
                zmax = out.z[j];
                any = true;
            }
        }
        if !any {
            out.e.fill(0.0);
            return 0.0;
        }
        // Subtracting the max keeps every exp in (0, 1]; the sum has at least one 1.
        let mut sum = 0.0f64;
        for j in 0..n {
            if out.involved[j] {
                let v = (out.z[j] as f64 - zmax as f64).exp();
                self.ex[j] = v;
                sum += v;
            }
        }
        let ln_sum = sum.ln();
        let mut loss = 0.0f64;
        for (j, &tj) in t.iter().enumerate().take(n) {
            if out.involved[j] {
                let p = (self.ex[j] / sum) as f32;
                out.e[j] = tj - p;
                // −t log p with log p = (z − max z) − ln Σ, formed in f64 (no log of a rounded p).
                loss += tj as f64 * (ln_sum - (out.z[j] as f64 - zmax as f64));
            } else {
                out.e[j] = 0.0;
            }
        }
        loss
    }
}

/// Squared error of the output layer (the rule's default): `e_j = mask_j (t_j − y_j) φ'(z_j)`;
/// returns `Σ mask (t − y)² / max(1, Σ mask)`.
pub fn squared_error(out: &mut Layer, t: &[f32], mask: Option<&[bool]>) -> f64 {
    let Some(mask) = mask else {
        // Every output involved (the usual step): the loss sum stays one chain in output
        // order, and the errors are a separate loop per activation, which vectorises.
        let n = out.n_out();
        out.involved.fill(true);
        let (y, z, e) = (&out.y[..n], &out.z[..n], &mut out.e[..n]);
        let t = &t[..n];
        let mut sum = 0.0f64;
        for j in 0..n {
            let d = t[j] - y[j];
            sum += (d as f64) * (d as f64);
        }
        // e_j = (t_j − y_j) φ'(z_j, y_j): φ' first (one loop per activation), then the
        // product in the same operand order as the masked path below.
        out.spec.activation.derivative_all(z, y, e);
        for j in 0..n {
            let dphi = e[j];
            e[j] = (t[j] - y[j]) * dphi;
        }
        return sum / n.max(1) as f64;
    };
    let act = out.spec.activation;
    let (mut sum, mut on) = (0.0f64, 0usize);
    for j in 0..out.n_out() {
        let inv = mask[j];
        out.involved[j] = inv;
        if inv {
            let d = t[j] - out.y[j];
            sum += (d as f64) * (d as f64);
            on += 1;
            out.e[j] = d * act.derivative(out.z[j], out.y[j]);
        } else {
            out.e[j] = 0.0;
        }
    }
    sum / on.max(1) as f64
}

//! Layer specifications and learning hyper-parameters, with validation.
//!
//! Both travel as JSON between Python and Rust and into checkpoints, so unknown fields are
//! rejected rather than silently ignored.
use crate::activation::Activation;
use crate::error::{value_err, LpnError, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Read a config or spec from JSON text. A value the type refuses is reported without its
/// position in the text, so the message is the same whichever JSON carried it (Python's
/// dataclasses and a network's JSON reach the engine as different texts).
pub fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    let err = |e: serde_json::Error| LpnError::Value(format!("invalid {what}: {e}"));
    let v: serde_json::Value = serde_json::from_str(s).map_err(err)?;
    T::deserialize(v).map_err(err)
}

/// Layer specs from a JSON list; a refused spec is reported with its position in the list.
pub fn specs_from_json(s: &str) -> Result<Vec<LayerSpec>> {
    let list: Vec<serde_json::Value> = from_json("layer specs", s)?;
    list.into_iter()
        .enumerate()
        .map(|(k, v)| {
            LayerSpec::deserialize(v).map_err(|e| {
                LpnError::Value(format!("invalid layer spec: {e}")).at(format!("layer {k}"))
            })
        })
        .collect()
}

/// One layer's shape, geometry and wiring. Defaults live in `LayerSpec::new` only; serde fills
/// missing fields from it and Python reads them through `_lpn.spec_defaults()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default = "LayerSpec::no_units")]
pub struct LayerSpec {
    pub n_in: usize,
    pub n_out: usize,
    pub dims: usize,
    pub radius: f64,
    pub fan_in: Option<usize>,
    pub in_tags: Option<Vec<u32>>,
    pub out_tags: Option<Vec<u32>>,
    /// Row-major `T × T` affinity; `None` means the identity.
    pub tag_affinity: Option<Vec<Vec<f64>>>,
    pub activation: Activation,
    pub bias: bool,
    pub in_shape: Option<(usize, usize)>,
    pub out_shape: Option<(usize, usize)>,
    pub periodic: bool,
    pub tag_threshold: f64,
    pub growth_radius: Option<f64>,
    pub max_fan_in: Option<usize>,
}

impl LayerSpec {
    pub fn new(n_in: usize, n_out: usize) -> Self {
        LayerSpec {
            n_in,
            n_out,
            dims: 1,
            radius: 0.1,
            fan_in: None,
            in_tags: None,
            out_tags: None,
            tag_affinity: None,
            activation: Activation::Linear,
            bias: true,
            in_shape: None,
            out_shape: None,
            periodic: true,
            tag_threshold: 0.5,
            growth_radius: None,
            max_fan_in: None,
        }
    }

    /// The defaults with no units (serde's starting point; `validate` refuses the zero sizes).
    fn no_units() -> Self {
        Self::new(0, 0)
    }

    pub fn growth_radius(&self) -> f64 {
        self.growth_radius
            .unwrap_or((1.5 * self.radius).min(crate::limits::MAX_RADIUS))
    }

    /// Number of distinct tags the affinity matrix covers.
    pub fn n_tags(&self) -> usize {
        let from_tags = |t: &Option<Vec<u32>>| {
            t.as_ref()
                .map(|v| v.iter().map(|&x| x as usize + 1).max().unwrap_or(0))
                .unwrap_or(1)
        };
        match &self.tag_affinity {
            Some(a) => a.len(),
            None => from_tags(&self.in_tags)
                .max(from_tags(&self.out_tags))
                .max(1),
        }
    }

    pub fn in_tag(&self, i: usize) -> u32 {
        self.in_tags.as_ref().map_or(0, |t| t[i])
    }

    pub fn out_tag(&self, j: usize) -> u32 {
        self.out_tags.as_ref().map_or(0, |t| t[j])
    }

    pub fn compatible(&self, tag_in: u32, tag_out: u32) -> bool {
        match &self.tag_affinity {
            None => tag_in == tag_out,
            Some(a) => a[tag_in as usize][tag_out as usize] >= self.tag_threshold,
        }
    }

    /// Grid shape used for `n` units of this layer in 2-D.
    pub fn shape_for(
        &self,
        n: usize,
        given: Option<(usize, usize)>,
        side: &str,
    ) -> Result<(usize, usize)> {
        if self.dims == 1 {
            return Ok((1, n));
        }
        match given {
            Some((h, w)) if h * w == n => Ok((h, w)),
            Some((h, w)) => value_err(format!(
                "{side}_shape ({h}, {w}) has {} units, expected n_{side} = {n}",
                h * w
            )),
            None => {
                let r = (n as f64).sqrt().round() as usize;
                if r * r == n {
                    Ok((r, r))
                } else {
                    value_err(format!(
                        "dims=2 needs n_{side} to be a perfect square or {side}_shape=(h, w); got n_{side} = {n}"
                    ))
                }
            }
        }
    }

    /// Every rule a spec must satisfy on its own (the one place for them: Python's `LayerSpec`
    /// calls this at construction). Messages name the field; callers that know the layer's
    /// position add it with `LpnError::at`.
    pub fn validate(&self) -> Result<()> {
        if self.n_in == 0 || self.n_out == 0 {
            return value_err(format!(
                "n_in and n_out must be positive, got n_in={}, n_out={}",
                self.n_in, self.n_out
            ));
        }
        if self.n_in > u32::MAX as usize || self.n_out > u32::MAX as usize {
            return value_err(format!("at most {} units per side", u32::MAX));
        }
        if self.dims != 1 && self.dims != 2 {
            return value_err(format!("dims must be 1 or 2, got {}", self.dims));
        }
        if !(self.radius.is_finite() && self.radius >= 0.0) {
            return value_err(format!(
                "radius must be a finite number >= 0, got {}",
                self.radius
            ));
        }
        let max_r = crate::limits::MAX_RADIUS;
        if self.radius > max_r {
            return value_err(format!(
                "radius must be <= {max_r} (that already reaches every unit), got {}",
                self.radius
            ));
        }
        if let Some(g) = self.growth_radius {
            if !(g.is_finite() && g >= self.radius && g <= max_r) {
                return value_err(format!(
                    "growth_radius must lie in [radius, {max_r}] = [{}, {max_r}], got {g}",
                    self.radius
                ));
            }
        }
        if self.fan_in == Some(0) {
            return value_err("fan_in must be positive or None, got 0");
        }
        if !self.tag_threshold.is_finite() {
            return value_err("tag_threshold must be finite");
        }
        for (side, s) in [("in_shape", self.in_shape), ("out_shape", self.out_shape)] {
            if let Some((h, w)) = s {
                if h.checked_mul(w).is_none() {
                    return value_err(format!("{side} ({h}, {w}) overflows"));
                }
            }
        }
        self.shape_for(self.n_in, self.in_shape, "in")?;
        self.shape_for(self.n_out, self.out_shape, "out")?;
        let n_tags = self.n_tags();
        if let Some(a) = &self.tag_affinity {
            if a.is_empty() || a.iter().any(|r| r.len() != a.len()) {
                return value_err("tag_affinity must be a square T x T matrix");
            }
            if a.iter().flatten().any(|v| !v.is_finite()) {
                return value_err("tag_affinity contains NaN or inf");
            }
        }
        for (name, tags, n) in [
            ("in_tags", &self.in_tags, self.n_in),
            ("out_tags", &self.out_tags, self.n_out),
        ] {
            if let Some(t) = tags {
                if t.len() != n {
                    return value_err(format!("{name} has length {}, expected {n}", t.len()));
                }
                if let Some(&bad) = t.iter().find(|&&x| x as usize >= n_tags) {
                    return value_err(format!(
                        "{name} contains tag {bad}, but tag_affinity covers only {n_tags} tags"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How a hidden layer learns (docs/rule.md, "Networks of layers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum HiddenSignal {
    Feedback,
    Contrastive,
    Frozen,
}

impl TryFrom<String> for HiddenSignal {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "feedback" => Ok(Self::Feedback),
            "contrastive" => Ok(Self::Contrastive),
            "frozen" => Ok(Self::Frozen),
            other => Err(format!(
                "unknown hidden_signal {other:?}: expected \"feedback\", \"contrastive\" or \"frozen\""
            )),
        }
    }
}

/// Either one signal for every hidden layer or one per hidden layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, try_from = "OneOrMany")]
pub enum HiddenSignals {
    All(HiddenSignal),
    PerLayer(Vec<HiddenSignal>),
}

/// `hidden_signal` as written, so that an unknown name is reported as such (an untagged enum
/// would only say that nothing matched).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl TryFrom<OneOrMany> for HiddenSignals {
    type Error = String;
    fn try_from(v: OneOrMany) -> std::result::Result<Self, String> {
        Ok(match v {
            OneOrMany::One(s) => Self::All(s.try_into()?),
            OneOrMany::Many(v) => Self::PerLayer(
                v.into_iter()
                    .map(HiddenSignal::try_from)
                    .collect::<std::result::Result<_, _>>()?,
            ),
        })
    }
}

/// Where consolidation `c` and the anchor `w*` come from (docs/rule.md, "Consolidation").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum ConsolidationMode {
    /// §3.2 only: `consolidate()` at task boundaries and the optional auto / decay rules.
    None,
    /// §8: per-synapse hidden levels fed by use set `c` and `w*` on every step (src/cascade.rs).
    Cascade,
}

impl TryFrom<String> for ConsolidationMode {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "none" => Ok(Self::None),
            "cascade" => Ok(Self::Cascade),
            other => Err(format!(
                "unknown consolidation_mode {other:?}: expected \"none\" or \"cascade\""
            )),
        }
    }
}

/// The output layer's local error (docs/rule.md, "Classification readout").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum OutputError {
    /// `e = mask·(t − y)·φ'(z)`, loss the masked mean squared error (today's rule bit for bit).
    Mse,
    /// `e = mask·(t − softmax_mask(z))` on a linear output, loss the cross-entropy.
    Softmax,
}

impl TryFrom<String> for OutputError {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "mse" => Ok(Self::Mse),
            "softmax" => Ok(Self::Softmax),
            other => Err(format!(
                "unknown output_error {other:?}: expected \"mse\" or \"softmax\""
            )),
        }
    }
}

/// Which samples the replay buffer keeps (docs/rule.md, "Local replay").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum ReplayPolicy {
    /// Algorithm R: every sample of the stream equally likely (today's buffer bit for bit).
    Reservoir,
    /// Class-balanced reservoir: a sample of an under-represented class evicts one of the
    /// most frequent class (class = argmax of the target).
    Balanced,
}

impl TryFrom<String> for ReplayPolicy {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "reservoir" => Ok(Self::Reservoir),
            "balanced" => Ok(Self::Balanced),
            other => Err(format!(
                "unknown replay_policy {other:?}: expected \"reservoir\" or \"balanced\""
            )),
        }
    }
}

/// Most hidden levels a cascade synapse may carry (one optional arena column each).
pub const MAX_CASCADE_LEVELS: usize = 4;

/// Every learning hyper-parameter. Defaults live in `Default` only (Python reads them through
/// `_lpn.config_defaults()`); rules live in `validate` only (Python calls it at construction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnConfig {
    pub lr: f32,
    pub bias_lr: Option<f32>,
    pub budget: f64,
    pub budget_min: f64,
    pub budget_max: f64,
    pub shrink: f64,
    pub grow: f64,
    pub kappa_short: f32,
    pub kappa_long: f32,
    pub beta: f32,
    pub rho_short: f32,
    pub rho_long: f32,
    pub rho_trace: f32,
    pub rho_consolidation: f32,
    pub pull: f32,
    pub w_max: f32,
    pub init_std: f32,
    pub eps: f32,
    pub hidden_signal: HiddenSignals,
    pub auto_consolidate_every: u64,
    pub auto_threshold: f32,
    pub auto_increment: f32,
    pub restructure_every: u64,
    pub prune_weight: f32,
    pub prune_long: f32,
    pub grow_per_row: usize,
    pub replay_capacity: usize,
    pub replay_on_conflict: bool,
    pub conflict_ratio: f64,
    pub contrastive_threshold: f32,
    /// "none" (§3.2, today's rule bit for bit) or "cascade" (§8, src/cascade.rs).
    pub consolidation_mode: ConsolidationMode,
    /// Hidden levels per synapse in cascade mode (1..=MAX_CASCADE_LEVELS).
    pub cascade_levels: usize,
    /// Timescale of the first level, in steps of the synapse's row (>= 1).
    pub cascade_tau: f64,
    /// Each level is this many times slower than the one before (>= 1).
    pub cascade_ratio: f64,
    /// Largest consolidation the cascade sets (< 1: a synapse never freezes).
    pub cascade_max: f32,
    /// Deepest level at which consolidation is half of `cascade_max` (> 0).
    pub cascade_half: f32,
    /// The level whose timescale the anchor follows (1 = fastest, `cascade_levels` = slowest).
    pub cascade_anchor_level: usize,
    /// Routing (docs/rule.md, "Routing"): how much a synapse's consolidation lowers its
    /// selection priority, `π · (1 − route_consolidation · c)`; 0 = the plain rule.
    pub route_consolidation: f32,
    /// How much its long trail lowers it, `π · (1 − route_long · l)`; 0 = the plain rule.
    pub route_long: f32,
    /// Whether the weight step carries the pheromone factor `g` (docs/rule.md step 4; true) or
    /// trails only steer the selection (false: `Δw` without `g`).
    pub trail_scaled_step: bool,
    /// "mse" (today's rule bit for bit) or "softmax" (a classification error, linear output).
    pub output_error: OutputError,
    /// With "softmax": a new sample involves only the classes with a positive target among
    /// the last `readout_window` new samples (0 = off: every masked-in output).
    pub readout_window: u64,
    /// "reservoir" (Algorithm R, today's buffer) or "balanced" (class-balanced reservoir).
    pub replay_policy: ReplayPolicy,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            lr: 0.5,
            bias_lr: None,
            budget: 0.3,
            budget_min: 0.02,
            budget_max: 1.0,
            shrink: 0.98,
            grow: 1.05,
            kappa_short: 1.0,
            kappa_long: 0.0,
            beta: 0.5,
            rho_short: 0.9,
            rho_long: 0.995,
            rho_trace: 0.9,
            rho_consolidation: 1.0,
            pull: 0.1,
            w_max: 10.0,
            init_std: 0.01,
            eps: 1e-6,
            hidden_signal: HiddenSignals::All(HiddenSignal::Feedback),
            auto_consolidate_every: 0,
            auto_threshold: 0.5,
            auto_increment: 0.1,
            restructure_every: 0,
            prune_weight: 1e-3,
            prune_long: 0.01,
            grow_per_row: 2,
            replay_capacity: 0,
            replay_on_conflict: false,
            conflict_ratio: 1.5,
            contrastive_threshold: 1.0,
            consolidation_mode: ConsolidationMode::None,
            cascade_levels: 3,
            cascade_tau: 100.0,
            cascade_ratio: 4.0,
            cascade_max: 0.5,
            cascade_half: 0.05,
            cascade_anchor_level: 1,
            route_consolidation: 0.0,
            route_long: 0.0,
            trail_scaled_step: true,
            output_error: OutputError::Mse,
            readout_window: 0,
            replay_policy: ReplayPolicy::Reservoir,
        }
    }
}

impl LearnConfig {
    pub fn bias_lr(&self) -> f32 {
        self.bias_lr.unwrap_or(self.lr)
    }

    pub fn validate(&self) -> Result<()> {
        let unit = |name: &str, v: f64| -> Result<()> {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                value_err(format!("{name} must lie in [0, 1], got {v}"))
            }
        };
        let nonneg = |name: &str, v: f64| -> Result<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                value_err(format!("{name} must be a finite number >= 0, got {v}"))
            }
        };
        // docs/rule.md, update step 4: normalised updates are stable for 0 < η < 2; at 2 and above
        // they overshoot and grow without bound (NaN within tens of steps).
        let stable = |name: &str, v: f32| -> Result<()> {
            if (0.0..2.0).contains(&v) {
                Ok(())
            } else {
                value_err(format!(
                    "{name} must lie in [0, 2), where the normalised rule is stable, got {v}"
                ))
            }
        };
        stable("lr", self.lr)?;
        if let Some(b) = self.bias_lr {
            stable("bias_lr", b)?;
        }
        // A row's weights and bias both move to cancel the same error e: the error after the
        // step is e·(1 − η·A − η_b·B) with A = Σ_sel x²/(ε + Σx²) < 1 and B = 1/(1 + Σx²) ≤ 1,
        // so η + η_b ≤ 2 keeps |1 − η·A − η_b·B| < 1 for every input.
        if self.lr + self.bias_lr() > 2.0 {
            return value_err(format!(
                "lr + bias_lr must be <= 2 (bias_lr defaults to lr): weights and bias correct \
                 the same error, and together they overshoot beyond 2; got lr={}, bias_lr={}",
                self.lr,
                self.bias_lr()
            ));
        }
        if !(self.budget_min > 0.0 && self.budget_min <= self.budget_max && self.budget_max <= 1.0)
        {
            return value_err(format!(
                "need 0 < budget_min <= budget_max <= 1, got budget_min={}, budget_max={}",
                self.budget_min, self.budget_max
            ));
        }
        if !(self.budget >= self.budget_min && self.budget <= self.budget_max) {
            return value_err(format!(
                "budget must lie in [budget_min, budget_max] = [{}, {}], got {}",
                self.budget_min, self.budget_max, self.budget
            ));
        }
        // Outside these ranges the controller would push the budget the wrong way, past its
        // bounds.
        if !(self.shrink > 0.0 && self.shrink <= 1.0) {
            return value_err(format!("shrink must lie in (0, 1], got {}", self.shrink));
        }
        if !(self.grow.is_finite() && self.grow >= 1.0) {
            return value_err(format!(
                "grow must be a finite number >= 1, got {}",
                self.grow
            ));
        }
        nonneg("kappa_short", self.kappa_short as f64)?;
        nonneg("kappa_long", self.kappa_long as f64)?;
        nonneg("beta", self.beta as f64)?;
        unit("rho_short", self.rho_short as f64)?;
        unit("rho_long", self.rho_long as f64)?;
        unit("rho_trace", self.rho_trace as f64)?;
        unit("rho_consolidation", self.rho_consolidation as f64)?;
        unit("route_consolidation", self.route_consolidation as f64)?;
        unit("route_long", self.route_long as f64)?;
        nonneg("pull", self.pull as f64)?;
        if !(self.w_max.is_finite() && self.w_max > 0.0) {
            return value_err(format!(
                "w_max must be a finite number > 0, got {}",
                self.w_max
            ));
        }
        nonneg("init_std", self.init_std as f64)?;
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return value_err(format!("eps must be a finite number > 0, got {}", self.eps));
        }
        nonneg("auto_threshold", self.auto_threshold as f64)?;
        nonneg("auto_increment", self.auto_increment as f64)?;
        nonneg("prune_weight", self.prune_weight as f64)?;
        nonneg("prune_long", self.prune_long as f64)?;
        nonneg("conflict_ratio", self.conflict_ratio)?;
        if !self.contrastive_threshold.is_finite() {
            return value_err("contrastive_threshold must be finite");
        }
        if self.readout_window > 0 && self.output_error != OutputError::Softmax {
            return value_err(format!(
                "readout_window={} restricts the softmax readout: it needs \
                 output_error=\"softmax\", got output_error=\"mse\"",
                self.readout_window
            ));
        }
        self.validate_cascade()
    }

    /// Whether the output layer's error is the softmax classification error.
    pub fn softmax(&self) -> bool {
        self.output_error == OutputError::Softmax
    }

    /// Whether the replay buffer is class-balanced.
    pub fn balanced(&self) -> bool {
        self.replay_policy == ReplayPolicy::Balanced
    }

    /// Whether the cascade (§8) sets consolidation.
    pub fn cascade(&self) -> bool {
        self.consolidation_mode == ConsolidationMode::Cascade
    }

    /// The cascade's own fields are checked in every mode (a config is valid or not whatever
    /// mode it is later switched to); the combinations only in cascade mode.
    fn validate_cascade(&self) -> Result<()> {
        let k = self.cascade_levels;
        if !(1..=MAX_CASCADE_LEVELS).contains(&k) {
            return value_err(format!(
                "cascade_levels must lie in [1, {MAX_CASCADE_LEVELS}], got {k}"
            ));
        }
        if !(self.cascade_tau.is_finite() && self.cascade_tau >= 1.0) {
            return value_err(format!(
                "cascade_tau must be a finite number >= 1 (steps), got {}",
                self.cascade_tau
            ));
        }
        if !(self.cascade_ratio.is_finite() && self.cascade_ratio >= 1.0) {
            return value_err(format!(
                "cascade_ratio must be a finite number >= 1, got {}",
                self.cascade_ratio
            ));
        }
        // The slowest level's timescale must stay finite (and its rate a normal f32).
        let slowest = self.cascade_tau * self.cascade_ratio.powi(k as i32 - 1);
        if slowest > 1e30 {
            return value_err(format!(
                "cascade_tau * cascade_ratio^(cascade_levels - 1) must be <= 1e30, got {slowest}"
            ));
        }
        if !(0.0..1.0).contains(&self.cascade_max) {
            return value_err(format!(
                "cascade_max must lie in [0, 1) (at 1 a synapse could freeze), got {}",
                self.cascade_max
            ));
        }
        if !(self.cascade_half.is_finite() && self.cascade_half > 0.0) {
            return value_err(format!(
                "cascade_half must be a finite number > 0, got {}",
                self.cascade_half
            ));
        }
        let a = self.cascade_anchor_level;
        if !(1..=k).contains(&a) {
            return value_err(format!(
                "cascade_anchor_level must lie in [1, cascade_levels] = [1, {k}], got {a}"
            ));
        }
        if self.cascade() {
            if self.auto_consolidate_every > 0 {
                return value_err(format!(
                    "consolidation_mode=\"cascade\" sets consolidation itself: \
                     auto_consolidate_every must be 0, got {}",
                    self.auto_consolidate_every
                ));
            }
            if self.rho_consolidation != 1.0 {
                return value_err(format!(
                    "consolidation_mode=\"cascade\" sets consolidation itself: \
                     rho_consolidation must be 1, got {}",
                    self.rho_consolidation
                ));
            }
        }
        Ok(())
    }

    /// Signal of hidden layer `h` (0-based among hidden layers).
    pub fn signal_of(&self, h: usize, n_hidden: usize) -> Result<HiddenSignal> {
        match &self.hidden_signal {
            HiddenSignals::All(s) => Ok(*s),
            HiddenSignals::PerLayer(v) if v.len() == n_hidden => Ok(v[h]),
            HiddenSignals::PerLayer(v) => value_err(format!(
                "hidden_signal lists {} signals, expected one per hidden layer ({n_hidden})",
                v.len()
            )),
        }
    }
}

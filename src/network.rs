//! A stack of layers: hidden-layer signals, masks, replay, structural passes, contrastive steps.
use crate::config::{LayerSpec, LearnConfig};
use crate::error::{value_err, Result};
use crate::layer::{Layer, Norms, Signal};
use crate::readout::{squared_error, Readout};
use crate::replay::Reservoir;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

#[derive(Debug, Clone)]
pub struct Network {
    layers: Vec<Layer>,
    config: LearnConfig,
    seed: u64,
    rng: ChaCha8Rng,
    counters: Counters,
    last_goodness: (f64, f64),
    reservoir: Reservoir,
    /// The softmax readout's window state and scratch (src/readout.rs).
    readout: Readout,
    /// Buffer slots replayed during the last `learn` call, in order (for inspection and tests).
    last_replayed: Vec<u32>,
    scratch_x: Vec<f32>,
    scratch_t: Vec<f32>,
    scratch_mask: Vec<bool>,
    eligible: Vec<u32>,
}

/// Network-wide counters (a checkpoint stores them as `[seed, steps, samples, replays,
/// contrastive_steps]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Rule applications, new and replayed.
    pub steps: u64,
    /// New samples learned.
    pub samples: u64,
    pub replays: u64,
    pub contrastive_steps: u64,
}

/// One value of a `stats()` report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Int(u64),
    Float(f64),
    Bool(bool),
    Text(&'static str),
}

/// Everything a checkpoint restores besides the layers; `Network::restore` checks it.
pub struct Saved {
    pub config: LearnConfig,
    pub seed: u64,
    pub rng: ChaCha8Rng,
    pub counters: Counters,
    pub last_goodness: (f64, f64),
    pub reservoir: Reservoir,
    pub last_replayed: Vec<u32>,
    /// The readout window's `last_positive` (empty unless `readout_window > 0`).
    pub readout_last: Vec<u64>,
}

/// A normal draw by Box–Muller from two uniforms (keeps the dependency list short and the
/// stream layout obvious: exactly two u64 draws per weight).
pub(crate) fn normal(rng: &mut ChaCha8Rng, std: f32) -> f32 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (std as f64 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Where the first NaN or infinity of `v` is. Checked a chunk at a time with a branch-free
/// fold the compiler vectorises (every sample of every call goes through here); the position
/// is searched for only in a chunk that failed.
pub(crate) fn first_non_finite(v: &[f32]) -> Option<usize> {
    const CHUNK: usize = 64;
    for (c, chunk) in v.chunks(CHUNK).enumerate() {
        // A float is finite iff its exponent bits are not all ones.
        let bad = chunk.iter().fold(0u32, |m, x| {
            m | ((x.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32
        });
        if bad != 0 {
            return chunk
                .iter()
                .position(|x| !x.is_finite())
                .map(|k| c * CHUNK + k);
        }
    }
    None
}

pub(crate) fn check_finite(name: &str, v: &[f32]) -> Result<()> {
    if let Some(k) = first_non_finite(v) {
        return value_err(format!(
            "{name} must be finite, but element {k} is {}",
            v[k]
        ));
    }
    Ok(())
}

/// For every unit at the output of layer `h`, which tags of the final layer's outputs it can
/// reach through tag-compatible units (docs/rule.md, networks of layers). Returned as `reach[k][tag]`.
fn tag_reach(specs: &[LayerSpec], h: usize) -> Vec<Vec<bool>> {
    let last = specs.len() - 1;
    let n_final_tags = specs[last].n_tags();
    // reach_out[j][tag] for outputs of layer m, starting at the last layer.
    let mut reach_out: Vec<Vec<bool>> = (0..specs[last].n_out)
        .map(|j| {
            let mut r = vec![false; n_final_tags];
            r[specs[last].out_tag(j) as usize] = true;
            r
        })
        .collect();
    for m in (h + 1..=last).rev() {
        let spec = &specs[m];
        let t = spec.n_tags();
        // Union of what outputs of each tag reach.
        let mut by_out_tag = vec![vec![false; n_final_tags]; t];
        for (j, r) in reach_out.iter().enumerate() {
            let dst = &mut by_out_tag[spec.out_tag(j) as usize];
            dst.iter_mut().zip(r).for_each(|(d, &s)| *d |= s);
        }
        let by_in_tag: Vec<Vec<bool>> = (0..t as u32)
            .map(|a| {
                let mut acc = vec![false; n_final_tags];
                for b in 0..t as u32 {
                    if spec.compatible(a, b) {
                        acc.iter_mut()
                            .zip(&by_out_tag[b as usize])
                            .for_each(|(d, &s)| *d |= s);
                    }
                }
                acc
            })
            .collect();
        reach_out = (0..spec.n_in)
            .map(|k| by_in_tag[spec.in_tag(k) as usize].clone())
            .collect();
    }
    reach_out
}

impl Network {
    pub fn new(specs: Vec<LayerSpec>, config: LearnConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        check_chain(&specs)?;
        check_readout(&specs, &config)?;
        crate::limits::check_fits(&specs, &config)?;
        let n_hidden = specs.len() - 1;
        let signals = signals(&config, specs.len())?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layers = Vec::with_capacity(specs.len());
        for (spec, &signal) in specs.iter().zip(&signals) {
            let std = config.init_std;
            layers.push(Layer::new(spec.clone(), signal, &config, || {
                normal(&mut rng, std)
            })?);
        }
        let n_final = specs[n_hidden].n_out;
        let final_tags: Vec<u32> = (0..n_final).map(|j| specs[n_hidden].out_tag(j)).collect();
        let f_std = (1.0 / n_final as f64).sqrt() as f32;
        for h in 0..n_hidden {
            if signals[h] != Signal::Feedback {
                continue;
            }
            let reach = tag_reach(&specs, h);
            let n_h = specs[h].n_out;
            let mut f = Vec::with_capacity(n_h * n_final);
            for reach_k in reach.iter().take(n_h) {
                for &tag in &final_tags {
                    let v = normal(&mut rng, f_std);
                    f.push(if reach_k[tag as usize] { v } else { 0.0 });
                }
            }
            layers[h].feedback = Some(f);
        }
        let (n_in, n_out) = (specs[0].n_in, specs[n_hidden].n_out);
        Ok(Network {
            reservoir: Reservoir::new(config.replay_capacity, n_in, n_out, config.balanced()),
            readout: Readout::new(n_out, config.readout_window),
            layers,
            config,
            seed,
            rng,
            counters: Counters::default(),
            last_goodness: (f64::NAN, f64::NAN),
            last_replayed: Vec::new(),
            scratch_x: vec![0.0; n_in],
            scratch_t: vec![0.0; n_out],
            scratch_mask: vec![true; n_out],
            eligible: Vec::new(),
        })
    }

    /// A network around checkpointed state, checked: the layers must chain, carry the signals
    /// the config gives them, and the replay state must fit the config and the layers.
    pub fn restore(layers: Vec<Layer>, saved: Saved) -> Result<Self> {
        let Saved {
            config,
            seed,
            rng,
            counters,
            last_goodness,
            mut reservoir,
            last_replayed,
            readout_last,
        } = saved;
        config.validate()?;
        let specs: Vec<LayerSpec> = layers.iter().map(|l| l.spec().clone()).collect();
        check_chain(&specs)?;
        check_readout(&specs, &config)?;
        let expect = signals(&config, layers.len())?;
        for (k, (l, s)) in layers.iter().zip(&expect).enumerate() {
            if l.signal() != *s {
                return value_err(format!(
                    "layer {k} has signal {}, but the config gives it {}",
                    l.signal().name(),
                    s.name()
                ));
            }
        }
        let (n_in, n_out) = (specs[0].n_in, specs[specs.len() - 1].n_out);
        let r = &reservoir;
        if (r.capacity, r.n_in, r.n_out) != (config.replay_capacity, n_in, n_out)
            || r.len() > r.capacity
            || r.x.len() != r.len() * n_in
            || r.t.len() != r.len() * n_out
            || r.mask.len() != r.len() * n_out
            || r.balanced() != config.balanced()
            || (r.balanced() && r.class_seen.len() != n_out)
        {
            return value_err("the replay buffer does not match the config and the layers");
        }
        if r.balanced()
            && r.class_seen.iter().try_fold(0u64, |a, &c| a.checked_add(c)) != Some(r.seen)
        {
            return value_err(format!(
                "the replay buffer's per-class counts do not add up to the {} samples it saw",
                r.seen
            ));
        }
        reservoir.recount();
        let want = if config.readout_window > 0 { n_out } else { 0 };
        if readout_last.len() != want {
            return value_err(format!(
                "the readout window state has {} entries, expected {want}",
                readout_last.len()
            ));
        }
        if let Some(&v) = readout_last.iter().find(|&&v| v > counters.samples) {
            return value_err(format!(
                "the readout window state names new sample {v}, but only {} were learned",
                counters.samples
            ));
        }
        if let Some(&s) = last_replayed
            .iter()
            .find(|&&s| s as usize >= reservoir.len())
        {
            return value_err(format!(
                "last_replayed holds slot {s}, but the replay buffer has {} samples",
                reservoir.len()
            ));
        }
        Ok(Network {
            layers,
            config,
            seed,
            rng,
            counters,
            last_goodness,
            reservoir,
            readout: Readout::restore(n_out, readout_last),
            last_replayed,
            scratch_x: vec![0.0; n_in],
            scratch_t: vec![0.0; n_out],
            scratch_mask: vec![true; n_out],
            eligible: Vec::new(),
        })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    pub fn config(&self) -> &LearnConfig {
        &self.config
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn rng(&self) -> &ChaCha8Rng {
        &self.rng
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// (G⁺, G⁻) of the last contrastive step (NaN before the first).
    pub fn last_goodness(&self) -> (f64, f64) {
        self.last_goodness
    }

    pub fn reservoir(&self) -> &Reservoir {
        &self.reservoir
    }

    /// The readout window's per-output index of the last new sample with a positive target
    /// (empty unless `readout_window > 0`).
    pub fn readout_last(&self) -> &[u64] {
        &self.readout.last_positive
    }

    /// Buffer slots replayed during the last `learn` call, in order.
    pub fn last_replayed(&self) -> &[u32] {
        &self.last_replayed
    }

    /// Mutable access to the readout and the buffer, for tests that corrupt state on purpose.
    #[cfg(test)]
    pub(crate) fn readout_and_buffer_mut(&mut self) -> (&mut Readout, &mut Reservoir) {
        (&mut self.readout, &mut self.reservoir)
    }

    /// Mutable access to a layer, for tests that corrupt state on purpose.
    #[cfg(test)]
    pub(crate) fn layer_mut(&mut self, k: usize) -> &mut Layer {
        &mut self.layers[k]
    }

    pub fn n_in(&self) -> usize {
        self.layers[0].n_in()
    }

    /// Synapse slots plus feedback entries: the work of one step, for choosing inline vs pool.
    pub fn slots(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.arena().n_slots() + l.feedback().map_or(0, <[f32]>::len))
            .sum()
    }

    pub fn n_out(&self) -> usize {
        self.layers.last().unwrap().n_out()
    }

    fn check_mask(&self, mask: Option<&[bool]>, n_samples: usize) -> Result<()> {
        if let Some(m) = mask {
            let n = self.n_out();
            if m.len() != n && m.len() != n * n_samples {
                return value_err(format!(
                    "mask has {} entries, expected n_out = {n} (or {n} per sample)",
                    m.len()
                ));
            }
        }
        Ok(())
    }

    fn mask_of<'a>(&self, mask: Option<&'a [bool]>, s: usize) -> Option<&'a [bool]> {
        let n = self.n_out();
        mask.map(|m| {
            if m.len() == n {
                m
            } else {
                &m[s * n..(s + 1) * n]
            }
        })
    }

    /// Outputs for `n` samples laid out row-major; masked-out outputs are 0.
    pub fn predict(&self, x: &[f32], n: usize, mask: Option<&[bool]>) -> Result<Vec<f32>> {
        if x.len() != n * self.n_in() {
            return value_err(format!(
                "x has {} values, expected {n} samples x n_in = {}",
                x.len(),
                self.n_in()
            ));
        }
        check_finite("x", x)?;
        self.check_mask(mask, n)?;
        let n_out = self.n_out();
        let last = self.layers.len() - 1;
        let mut out = vec![0.0f32; n * n_out];
        // Scratch for every layer's z, and for the y of all but the last, which goes straight
        // into `out`: at 10M synapses each buffer is megabytes, and a fresh one costs its page
        // faults and writes on every call.
        let mut z: Vec<Vec<f32>> = self.layers.iter().map(|l| vec![0.0; l.n_out()]).collect();
        let mut y: Vec<Vec<f32>> = self.layers[..last]
            .iter()
            .map(|l| vec![0.0; l.n_out()])
            .collect();
        for s in 0..n {
            let xs = &x[s * self.n_in()..(s + 1) * self.n_in()];
            let dst = &mut out[s * n_out..(s + 1) * n_out];
            for l in 0..=last {
                let (done, rest) = y.split_at_mut(l);
                let input: &[f32] = if l == 0 { xs } else { &done[l - 1] };
                let to: &mut [f32] = if l == last { &mut *dst } else { &mut rest[0] };
                self.layers[l].forward_into(input, &mut z[l], to);
            }
            if let Some(m) = self.mask_of(mask, s) {
                dst.iter_mut()
                    .zip(m)
                    .filter(|(_, &on)| !on)
                    .for_each(|(v, _)| *v = 0.0);
            }
        }
        Ok(out)
    }

    /// Learn `n` samples in order (plus replays); returns the mean step loss of the new samples.
    pub fn learn(
        &mut self,
        x: &[f32],
        t: &[f32],
        n: usize,
        mask: Option<&[bool]>,
        replay: usize,
    ) -> Result<f64> {
        self.check_learn(x, t, n, mask, replay)?;
        let (_, total) = self.learn_samples(x, t, mask, replay, 0, n, None);
        Ok(if n > 0 { total / n as f64 } else { 0.0 })
    }

    /// Everything `learn` validates, without changing anything.
    pub fn check_learn(
        &self,
        x: &[f32],
        t: &[f32],
        n: usize,
        mask: Option<&[bool]>,
        replay: usize,
    ) -> Result<()> {
        let (n_in, n_out) = (self.n_in(), self.n_out());
        if x.len() != n * n_in {
            return value_err(format!(
                "x has {} values, expected {n} samples x n_in = {n_in}",
                x.len()
            ));
        }
        if t.len() != n * n_out {
            return value_err(format!(
                "t has {} values, expected {n} samples x n_out = {n_out}",
                t.len()
            ));
        }
        check_finite("x", x)?;
        check_finite("t", t)?;
        self.check_mask(mask, n)?;
        if replay > crate::limits::MAX_REPLAY {
            return value_err(format!(
                "replay must lie in [0, {}], got {replay}",
                crate::limits::MAX_REPLAY
            ));
        }
        if replay > 0 && self.config.replay_capacity == 0 {
            return value_err(format!(
                "replay={replay} needs a replay buffer, but the config has replay_capacity=0"
            ));
        }
        Ok(())
    }

    /// Learn samples `from..n` of an input `check_learn` accepted, stopping after the first
    /// whole sample that ends past `deadline` (so a long batch can be interrupted between
    /// samples). Returns the next sample to learn and the sum of the step losses. A call with
    /// `from == 0` starts a new `learn` call: `last_replayed` is cleared.
    #[allow(clippy::too_many_arguments)]
    pub fn learn_samples(
        &mut self,
        x: &[f32],
        t: &[f32],
        mask: Option<&[bool]>,
        replay: usize,
        from: usize,
        n: usize,
        deadline: Option<std::time::Instant>,
    ) -> (usize, f64) {
        let (n_in, n_out) = (self.n_in(), self.n_out());
        if from == 0 {
            self.last_replayed.clear();
        }
        let mut total = 0.0f64;
        for s in from..n {
            let xs = &x[s * n_in..(s + 1) * n_in];
            let ts = &t[s * n_out..(s + 1) * n_out];
            let ms = self.mask_of(mask, s);
            let out = self.layers.last().unwrap();
            let (had_avg, avg_before) = (out.budget.has_loss_avg, out.budget.loss_avg);
            let loss = self.learn_one(xs, ts, ms, true);
            total += loss;
            self.counters.samples += 1;
            if replay > 0 && !self.reservoir.is_empty() {
                let conflict = !self.config.replay_on_conflict
                    || (had_avg && loss > self.config.conflict_ratio * avg_before);
                if conflict {
                    self.replay(replay, ms);
                }
            }
            self.reservoir.offer(xs, ts, ms, &mut self.rng);
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return (s + 1, total);
            }
        }
        (n, total)
    }

    fn replay(&mut self, k: usize, mask: Option<&[bool]>) {
        let mut eligible = std::mem::take(&mut self.eligible);
        eligible.clear();
        for s in 0..self.reservoir.len() {
            if !self.config.replay_on_conflict || self.reservoir.overlaps(s, mask) {
                eligible.push(s as u32);
            }
        }
        if !eligible.is_empty() {
            let mut x = std::mem::take(&mut self.scratch_x);
            let mut t = std::mem::take(&mut self.scratch_t);
            let mut m = std::mem::take(&mut self.scratch_mask);
            for _ in 0..k {
                let s = eligible[self.rng.random_range(0..eligible.len())] as usize;
                self.last_replayed.push(s as u32);
                x.copy_from_slice(self.reservoir.sample_x(s));
                t.copy_from_slice(self.reservoir.sample_t(s));
                m.iter_mut()
                    .zip(self.reservoir.sample_mask(s))
                    .for_each(|(d, &b)| *d = b != 0);
                self.learn_one(&x, &t, Some(&m), false);
                self.counters.replays += 1;
            }
            self.scratch_x = x;
            self.scratch_t = t;
            self.scratch_mask = m;
        }
        self.eligible = eligible;
    }

    /// One step of the rule on one (validated) sample; `new` for a new sample (the readout
    /// window counts and restricts new samples only; a replayed one uses its stored mask).
    fn learn_one(&mut self, x: &[f32], t: &[f32], mask: Option<&[bool]>, new: bool) -> f64 {
        let window = self.config.readout_window;
        let win = (new && window > 0).then(|| {
            let n = self.counters.samples.saturating_add(1);
            self.readout.window_mask(t, mask, n, window)
        });
        let mask = win.as_deref().or(mask);
        let n_layers = self.layers.len();
        for l in 0..n_layers {
            let (done, rest) = self.layers.split_at_mut(l);
            let input: &[f32] = if l == 0 { x } else { &done[l - 1].y };
            rest[0].forward_scratch(input);
        }
        let (hidden, last) = self.layers.split_at_mut(n_layers - 1);
        let out = &mut last[0];
        let loss = if self.config.softmax() {
            self.readout.softmax_error(out, t, mask)
        } else {
            squared_error(out, t, mask)
        };
        if let Some(m) = win {
            self.readout.give_back(m);
        }
        for layer in hidden.iter_mut() {
            if layer.signal == Signal::Feedback {
                feedback_error(layer, &out.e, &out.involved);
            }
        }
        for l in 0..n_layers {
            let (done, rest) = self.layers.split_at_mut(l);
            let layer = &mut rest[0];
            if !layer.learns_online() {
                continue;
            }
            let input: &[f32] = if l == 0 { x } else { &done[l - 1].y };
            let layer_loss = if layer.signal == Signal::Output {
                loss
            } else {
                layer.error_energy()
            };
            // The forward pass above ran on this input and no row changed since.
            layer.apply_step(input, layer_loss, &self.config, Norms::FromForward);
        }
        self.counters.steps += 1;
        if self.config.restructure_every > 0
            && self
                .counters
                .steps
                .is_multiple_of(self.config.restructure_every)
        {
            self.restructure();
        }
        loss
    }

    /// §3.2: consolidate every layer that learns.
    pub fn consolidate(&mut self, strength: f32) -> Result<()> {
        if !(strength.is_finite() && strength >= 0.0) {
            return value_err(format!(
                "strength must be a finite number >= 0, got {strength}"
            ));
        }
        if self.config.cascade() {
            return value_err(
                "consolidate() is the task-boundary rule (consolidation_mode=\"none\"); with \
                 consolidation_mode=\"cascade\" the cascade sets consolidation on every step",
            );
        }
        for layer in self
            .layers
            .iter_mut()
            .filter(|l| l.signal != Signal::Frozen)
        {
            layer.consolidate(strength);
        }
        Ok(())
    }

    /// §5.2: one prune-and-grow pass over every layer that is not frozen.
    pub fn restructure(&mut self) -> (u64, u64) {
        let cfg = self.config.clone();
        let (mut p, mut g) = (0, 0);
        for layer in self
            .layers
            .iter_mut()
            .filter(|l| l.signal != Signal::Frozen)
        {
            let (a, b) = layer.restructure(&cfg);
            p += a;
            g += b;
        }
        (p, g)
    }

    /// The input that layer `index` sees for network input `x` (forward through earlier layers).
    fn input_of(&self, x: &[f32], index: usize) -> Vec<f32> {
        let mut cur = x.to_vec();
        for layer in &self.layers[..index] {
            let mut z = vec![0.0; layer.n_out()];
            let mut y = vec![0.0; layer.n_out()];
            layer.forward_into(&cur, &mut z, &mut y);
            cur = y;
        }
        cur
    }

    /// §5.4 target-free step on layer `index`; returns the goodness (G⁺, G⁻) before the update.
    pub fn contrastive_step(
        &mut self,
        x_pos: &[f32],
        x_neg: &[f32],
        index: usize,
    ) -> Result<(f64, f64)> {
        if index >= self.layers.len() {
            return value_err(format!(
                "layer index {index} is out of range for a network of {} layers",
                self.layers.len()
            ));
        }
        let n_in = self.n_in();
        for (name, v) in [("x_pos", x_pos), ("x_neg", x_neg)] {
            if v.len() != n_in {
                return value_err(format!(
                    "{name} has {} values, expected n_in = {n_in}",
                    v.len()
                ));
            }
            check_finite(name, v)?;
        }
        if self.layers[index].signal == Signal::Frozen {
            return value_err(format!(
                "layer {index} is frozen (hidden_signal=\"frozen\"); it never learns"
            ));
        }
        let xp = self.input_of(x_pos, index);
        let xn = self.input_of(x_neg, index);
        let theta = self.config.contrastive_threshold as f64;
        let cfg = &self.config;
        let layer = &mut self.layers[index];
        let n = layer.n_out();
        let act = layer.spec.activation;
        let (mut zp, mut yp, mut zn, mut yn) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        layer.forward_into(&xp, &mut zp, &mut yp);
        layer.forward_into(&xn, &mut zn, &mut yn);
        let goodness =
            |y: &[f32]| y.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / n as f64;
        let (gp, gn) = (goodness(&yp), goodness(&yn));
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        let pp = sigmoid(theta - gp) as f32;
        let pn = sigmoid(gn - theta) as f32;
        layer.involved.fill(true);
        for (sign, p, x, z, y) in [(1.0f32, pp, &xp, &zp, &yp), (-1.0, pn, &xn, &zn, &yn)] {
            for j in 0..n {
                layer.e[j] = sign * p * y[j] * act.derivative(z[j], y[j]);
            }
            let loss = layer.error_energy();
            layer.apply_step(x, loss, cfg, Norms::Sum);
        }
        self.counters.contrastive_steps += 1;
        self.last_goodness = (gp, gn);
        Ok((gp, gn))
    }

    /// Network counters as `stats()` reports them (the one list of their names).
    pub fn report(&self) -> Vec<(&'static str, Stat)> {
        let c = &self.counters;
        vec![
            ("steps", Stat::Int(c.steps)),
            ("samples", Stat::Int(c.samples)),
            ("replays", Stat::Int(c.replays)),
            ("replay_buffer", Stat::Int(self.reservoir.len() as u64)),
            ("contrastive_steps", Stat::Int(c.contrastive_steps)),
            ("goodness_pos", Stat::Float(self.last_goodness.0)),
            ("goodness_neg", Stat::Float(self.last_goodness.1)),
        ]
    }

    /// Per-layer counters as `stats()` reports them (the one list of their names).
    pub fn layer_report(&self, index: usize) -> Vec<(&'static str, Stat)> {
        let l = &self.layers[index];
        let (s, b) = (l.stats(), l.budget());
        let steps = l.steps();
        let fraction = if steps > 0 {
            s.touched_fraction_sum / steps as f64
        } else {
            0.0
        };
        vec![
            ("synapses", Stat::Int(l.arena().n_live() as u64)),
            ("capacity", Stat::Int(l.arena().n_slots() as u64)),
            ("budget", Stat::Float(b.fraction())),
            ("loss_avg", Stat::Float(b.loss_avg())),
            ("expanding", Stat::Bool(b.expanding())),
            ("steps", Stat::Int(steps)),
            ("touched", Stat::Int(s.touched_last)),
            ("touched_total", Stat::Int(s.touched_total)),
            ("touched_fraction", Stat::Float(fraction)),
            ("pruned", Stat::Int(s.pruned_last)),
            ("grown", Stat::Int(s.grown_last)),
            ("pruned_total", Stat::Int(s.pruned_total)),
            ("grown_total", Stat::Int(s.grown_total)),
            ("signal", Stat::Text(l.signal().name())),
        ]
    }
}

/// The signal of every layer: the config's for hidden layers, `Output` for the last.
fn signals(config: &LearnConfig, n_layers: usize) -> Result<Vec<Signal>> {
    let n_hidden = n_layers - 1;
    let mut out = Vec::with_capacity(n_layers);
    for h in 0..n_hidden {
        out.push(config.signal_of(h, n_hidden)?.into());
    }
    out.push(Signal::Output);
    Ok(out)
}

/// The softmax readout reads logits: the output layer must be linear.
fn check_readout(specs: &[LayerSpec], config: &LearnConfig) -> Result<()> {
    let act = specs[specs.len() - 1].activation;
    if config.softmax() && act != crate::activation::Activation::Linear {
        return value_err(format!(
            "output_error=\"softmax\" reads the output layer's z as logits: its activation \
             must be \"linear\", got \"{}\"",
            format!("{act:?}").to_lowercase()
        ));
    }
    Ok(())
}

/// Every spec valid and each layer reading what the previous one writes.
fn check_chain(specs: &[LayerSpec]) -> Result<()> {
    if specs.is_empty() {
        return value_err("a network needs at least one layer, got an empty list");
    }
    for (k, s) in specs.iter().enumerate() {
        s.validate().map_err(|e| e.at(format!("layer {k}")))?;
    }
    for k in 1..specs.len() {
        if specs[k].n_in != specs[k - 1].n_out {
            return value_err(format!(
                "layer {k} has n_in = {}, expected n_out of layer {} = {}",
                specs[k].n_in,
                k - 1,
                specs[k - 1].n_out
            ));
        }
    }
    Ok(())
}

/// `e_h = (F_h · e_out) ⊙ φ'(z_h)`; a hidden row is involved iff F reaches an involved output.
fn feedback_error(layer: &mut Layer, e_out: &[f32], involved_out: &[bool]) {
    let n_final = e_out.len();
    let act = layer.spec.activation;
    let f = layer.feedback.as_ref().expect("feedback layer has F");
    let (z, y) = (&layer.z, &layer.y);
    let one = |k: usize, e: &mut f32, inv: &mut bool| {
        let row = &f[k * n_final..(k + 1) * n_final];
        let mut acc = 0.0f32;
        let mut reach = false;
        for j in 0..n_final {
            if row[j] != 0.0 && involved_out[j] {
                reach = true;
            }
            acc += row[j] * e_out[j];
        }
        *inv = reach;
        *e = acc * act.derivative(z[k], y[k]);
    };
    if f.len() <= crate::pool::INLINE_SLOTS {
        for (k, (e, inv)) in layer
            .e
            .iter_mut()
            .zip(layer.involved.iter_mut())
            .enumerate()
        {
            one(k, e, inv);
        }
    } else {
        let grain = (crate::pool::INLINE_SLOTS / n_final.max(1)).max(1);
        layer
            .e
            .par_iter_mut()
            .zip(layer.involved.par_iter_mut())
            .enumerate()
            .with_min_len(grain)
            .for_each(|(k, (e, inv))| one(k, e, inv));
    }
}

impl Network {
    /// Equality of all learning state, bit for bit.
    pub fn same_state(&self, o: &Network) -> bool {
        self.layers.len() == o.layers.len()
            && self
                .layers
                .iter()
                .zip(&o.layers)
                .all(|(a, b)| a.same_state(b))
            && self.config == o.config
            && self.seed == o.seed
            && self.rng == o.rng
            && self.counters == o.counters
            && self.reservoir == o.reservoir
            && self.readout.last_positive == o.readout.last_positive
    }
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;

    #[test]
    fn first_non_finite_finds_the_first_bad_value_in_any_chunk() {
        // Finite extremes are accepted: the largest float, the smallest subnormal, -0.
        let mut v: Vec<f32> = (0..300)
            .map(|k| match k % 4 {
                0 => f32::MAX,
                1 => -f32::from_bits(1),
                2 => -0.0,
                _ => k as f32,
            })
            .collect();
        assert_eq!(first_non_finite(&v), None);
        assert_eq!(first_non_finite(&[]), None);
        for at in [0, 1, 63, 64, 65, 200, 299] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let keep = v[at];
                v[at] = bad;
                assert_eq!(first_non_finite(&v), Some(at), "{bad} at {at}");
                // A second bad value later in the same or a later chunk does not win.
                let later = (at + 7).min(299);
                let keep_later = v[later];
                v[later] = f32::NAN;
                assert_eq!(first_non_finite(&v), Some(at));
                v[later] = keep_later;
                v[at] = keep;
            }
        }
    }
}

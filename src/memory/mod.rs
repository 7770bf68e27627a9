//! A recall memory on the LPN engine: observe vectors, recall the best stored items for a cue,
//! strengthen items used together, forget by tiers, and forget on request (docs/memory.md).
//!
//! Codes. A fixed random projection `P` (seeded) maps a `dim`-vector to `code_dim`; the stored
//! code of an item is `c = P x / |P x|`. One local LPN layer (`code_dim → code_dim`) learns every
//! observed code by self-association (`c → c`) with the engine's rule, budget and trails, so it
//! becomes a completion map toward the stored patterns. A query's code is the layer's output on
//! its projected cue, normalised; items rank by the cosine of the two codes, plus a small bonus
//! for strength (tiered forgetting) and for co-access links to the best matches.
//!
//! Forgetting exactly. The layer is a deterministic function of its seed and the sequence of
//! codes it learned, which the memory keeps as a log of item ids. `forget` drops the items'
//! rows, links and log entries and rebuilds the layer from the remaining log, so the result is
//! bit for bit the memory that never saw them.
pub mod links;
pub mod save;
pub mod scan;
pub mod tiers;

use crate::config::{LayerSpec, LearnConfig};
use crate::error::{value_err, LpnError, Result};
use crate::network::Network;
use links::Links;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use scan::{dot, top_k_batch, Cand};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
pub use tiers::{Tier, TierConfig};

/// Most ids one `reinforce` call may link pairwise (the pair count grows as the square).
pub const MAX_CO_ACCESS: usize = 1024;

/// Queries scanned together in one pass over the stored codes.
const QUERY_BLOCK: usize = 64;

/// Log entry kinds: a code learned once, or a rehearsal at promotion followed by consolidation.
pub(crate) const LOG_LEARN: u8 = 0;
pub(crate) const LOG_REHEARSE: u8 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    pub dim: usize,
    pub code_dim: usize,
    pub seed: u64,
    /// Wiring radius of the layer (neighbourhood in the 1-D unit layout; 0.5 reaches all).
    pub radius: f64,
    pub lr: f32,
    pub budget: f64,
    /// Times each observed batch is learned.
    pub repeats: u32,
    /// Share of the layer's completed code in the query code (0: the projected cue alone).
    pub completion: f32,
    /// Rank bonus per unit of strength.
    pub strength_weight: f32,
    /// Rank bonus per unit of link weight times the seed's similarity.
    pub link_weight: f32,
    /// Fraction of the way to 1 a link moves per co-access.
    pub link_rate: f32,
    /// Best matches whose links spread a bonus.
    pub spread_seeds: usize,
    /// Consolidation strength applied after rehearsing an item promoted to semantic.
    pub consolidation: f32,
    /// Per-step decay of synapse consolidation (so anchoring never freezes the layer for good).
    pub rho_consolidation: f32,
    pub tiers: TierConfig,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            dim: 0,
            code_dim: 128,
            seed: 0,
            radius: 0.5,
            lr: 0.5,
            budget: 0.3,
            repeats: 5,
            completion: 0.5,
            strength_weight: 0.05,
            link_weight: 0.5,
            link_rate: 0.5,
            spread_seeds: 4,
            consolidation: 0.1,
            rho_consolidation: 0.999,
            tiers: TierConfig::default(),
        }
    }
}

impl MemoryConfig {
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 || self.code_dim == 0 {
            return value_err(format!(
                "dim and code_dim must be positive, got dim={}, code_dim={}",
                self.dim, self.code_dim
            ));
        }
        if self.dim.saturating_mul(self.code_dim) > (1 << 28) {
            return value_err(format!(
                "dim * code_dim = {} is too large (at most 2^28)",
                self.dim.saturating_mul(self.code_dim)
            ));
        }
        let max_repeats = crate::limits::MAX_MEMORY_REPEATS;
        if !(1..=max_repeats).contains(&self.repeats) {
            return value_err(format!(
                "repeats must lie in [1, {max_repeats}], got {}",
                self.repeats
            ));
        }
        let max_seeds = crate::limits::MAX_SPREAD_SEEDS;
        if self.spread_seeds > max_seeds {
            return value_err(format!(
                "spread_seeds must lie in [0, {max_seeds}], got {}",
                self.spread_seeds
            ));
        }
        for (name, v) in [
            ("completion", self.completion),
            ("link_rate", self.link_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return value_err(format!("{name} must lie in [0, 1], got {v}"));
            }
        }
        for (name, v) in [
            ("strength_weight", self.strength_weight),
            ("link_weight", self.link_weight),
            ("consolidation", self.consolidation),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return value_err(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        self.tiers.validate().map_err(LpnError::Value)?;
        self.network().map(|_| ())
    }

    fn network(&self) -> Result<Network> {
        // Built through the public JSON form so the memory depends only on the documented
        // spec and config fields.
        let spec: LayerSpec = serde_json::from_value(serde_json::json!({
            "n_in": self.code_dim, "n_out": self.code_dim, "radius": self.radius, "bias": false,
        }))
        .map_err(|e| LpnError::Value(format!("invalid layer: {e}")))?;
        let config: LearnConfig = serde_json::from_value(serde_json::json!({
            "lr": self.lr, "budget": self.budget, "rho_consolidation": self.rho_consolidation,
        }))
        .map_err(|e| LpnError::Value(format!("invalid learning config: {e}")))?;
        Network::new(vec![spec], config, self.seed)
    }
}

/// One recall answer: ids and scores, best first.
pub type Hits = Vec<Cand>;

#[derive(Debug, Clone)]
pub struct RecallMemory {
    cfg: MemoryConfig,
    net: Network,
    /// `code_dim × dim`, row-major, fixed by the seed.
    proj: Vec<f32>,
    // Items, structure of arrays; row `i` of each belongs to `ids[i]`.
    ids: Vec<u64>,
    vectors: Vec<f32>,
    codes: Vec<f32>,
    uses: Vec<u32>,
    last_access: Vec<f64>,
    tier: Vec<u8>,
    index: HashMap<u64, usize>,
    links: Links,
    /// What the layer learned, in order: `(id, LOG_LEARN | LOG_REHEARSE)`.
    log: Vec<(u64, u8)>,
    next_id: u64,
}

/// Per-item state as `info` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemInfo {
    pub uses: u32,
    pub tier: Tier,
    pub last_access: f64,
    pub strength: f64,
}

fn projection(dim: usize, code_dim: usize, seed: u64) -> Vec<f32> {
    // Its own stream (the seed mixed with a constant), so it never shares draws with the layer.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d65_6d6f_7279_5f70);
    let mut g: Vec<f64> = (0..dim * code_dim)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>();
            let u2: f64 = rng.random::<f64>();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    // Orthonormalise the shorter side (Gram-Schmidt, twice for stability): with code_dim >= dim
    // the columns are orthonormal, so `P` keeps every cosine exactly; with code_dim < dim the
    // rows are, a random subspace. A plain Gaussian matrix would distort cosines by its
    // spread of singular values.
    let (m, n) = (code_dim, dim);
    let cols = m >= n;
    let (count, len) = if cols { (n, m) } else { (m, n) };
    let at = |v: usize, e: usize| if cols { e * n + v } else { v * n + e };
    for v in 0..count {
        for _ in 0..2 {
            for u in 0..v {
                let d: f64 = (0..len).map(|e| g[at(v, e)] * g[at(u, e)]).sum();
                for e in 0..len {
                    g[at(v, e)] -= d * g[at(u, e)];
                }
            }
        }
        let norm = (0..len).map(|e| g[at(v, e)].powi(2)).sum::<f64>().sqrt();
        for e in 0..len {
            g[at(v, e)] /= norm;
        }
    }
    g.into_iter().map(|x| x as f32).collect()
}

/// Scale `v` to unit length in place; a zero vector stays zero.
fn normalise(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

pub(crate) fn check_finite(what: &str, v: &[f32], dim: usize) -> Result<()> {
    if let Some(k) = crate::network::first_non_finite(v) {
        return value_err(format!(
            "{what} must be finite, but row {} column {} is {}",
            k / dim,
            k % dim,
            v[k]
        ));
    }
    Ok(())
}

pub(crate) fn check_now(now: f64) -> Result<()> {
    if now.is_finite() {
        Ok(())
    } else {
        value_err(format!("now must be a finite time, got {now}"))
    }
}

impl RecallMemory {
    pub fn new(cfg: MemoryConfig) -> Result<Self> {
        cfg.validate()?;
        let net = cfg.network()?;
        let proj = projection(cfg.dim, cfg.code_dim, cfg.seed);
        Ok(RecallMemory {
            net,
            proj,
            cfg,
            ids: Vec::new(),
            vectors: Vec::new(),
            codes: Vec::new(),
            uses: Vec::new(),
            last_access: Vec::new(),
            tier: Vec::new(),
            index: HashMap::new(),
            links: Links::default(),
            log: Vec::new(),
            next_id: 0,
        })
    }

    pub fn config(&self) -> &MemoryConfig {
        &self.cfg
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Stored ids in storage order.
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    pub fn contains(&self, id: u64) -> bool {
        self.index.contains_key(&id)
    }

    /// Work of one scan, for choosing inline vs pool.
    pub fn slots(&self) -> usize {
        self.ids.len() * self.cfg.code_dim + self.net.slots()
    }

    fn check_rows(&self, what: &str, v: &[f32], n: usize) -> Result<()> {
        let dim = self.cfg.dim;
        if v.len() != n * dim {
            return value_err(format!(
                "{what} has {} values, expected {n} rows x dim = {dim}",
                v.len()
            ));
        }
        check_finite(what, v, dim)
    }

    /// `P x / |P x|` for each of `n` rows.
    fn project(&self, x: &[f32], n: usize) -> Vec<f32> {
        let (dim, cd) = (self.cfg.dim, self.cfg.code_dim);
        let mut out = vec![0.0f32; n * cd];
        out.par_chunks_mut(cd)
            .zip(x.par_chunks(dim))
            .for_each(|(o, xs)| {
                for (oj, pj) in o.iter_mut().zip(self.proj.chunks_exact(dim)) {
                    *oj = dot(pj, xs);
                }
                normalise(o);
            });
        out
    }

    /// Query codes: the layer's completion of each projected cue, blended and normalised.
    fn query_codes(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let mut c = self.project(x, n);
        let a = self.cfg.completion;
        if a > 0.0 {
            let mut y = self.net.predict(&c, n, None)?;
            for row in y.chunks_exact_mut(self.cfg.code_dim) {
                normalise(row);
            }
            c.iter_mut()
                .zip(&y)
                .for_each(|(ci, yi)| *ci = (1.0 - a) * *ci + a * yi);
            for row in c.chunks_exact_mut(self.cfg.code_dim) {
                normalise(row);
            }
        }
        Ok(c)
    }

    /// Learn and store `n` vectors. `ids` (or the next free ids) name them; returns the ids.
    /// Everything is checked before anything changes.
    pub fn observe(
        &mut self,
        vectors: &[f32],
        n: usize,
        ids: Option<&[u64]>,
        now: f64,
    ) -> Result<Vec<u64>> {
        self.check_rows("vectors", vectors, n)?;
        check_now(now)?;
        let dim = self.cfg.dim;
        for (r, row) in vectors.chunks_exact(dim).enumerate() {
            if row.iter().all(|&v| v == 0.0) {
                return value_err(format!(
                    "vectors row {r} is all zeros: it has no direction to store"
                ));
            }
        }
        let new_ids: Vec<u64> = match ids {
            Some(given) => {
                if given.len() != n {
                    return value_err(format!(
                        "got {} ids for {n} vectors; expected one id per vector",
                        given.len()
                    ));
                }
                let mut seen = HashSet::with_capacity(n);
                for &id in given {
                    if self.index.contains_key(&id) {
                        return value_err(format!(
                            "id {id} is already stored; forget it first to replace it"
                        ));
                    }
                    if !seen.insert(id) {
                        return value_err(format!("id {id} appears twice in this batch"));
                    }
                    if id == u64::MAX {
                        return value_err("id 2^64 - 1 is reserved");
                    }
                }
                given.to_vec()
            }
            None => {
                if self.next_id.checked_add(n as u64).is_none() {
                    return value_err("no free ids left");
                }
                (self.next_id..self.next_id + n as u64).collect()
            }
        };
        let codes = self.project(vectors, n);
        // Learn first: it validates before changing anything, so a failure leaves no trace.
        for _ in 0..self.cfg.repeats {
            let net_slots = self.net.slots();
            let net = &mut self.net;
            crate::pool::install(net_slots, || net.learn(&codes, &codes, n, None, 0))?;
            self.log.extend(new_ids.iter().map(|&id| (id, LOG_LEARN)));
        }
        for &id in &new_ids {
            self.index.insert(id, self.ids.len());
            self.ids.push(id);
            self.uses.push(0);
            self.last_access.push(now);
            self.tier.push(Tier::Working as u8);
            self.next_id = self.next_id.max(id + 1);
        }
        self.vectors.extend_from_slice(vectors);
        self.codes.extend_from_slice(&codes);
        Ok(new_ids)
    }

    fn strength_at(&self, i: usize, now: f64) -> f64 {
        let tier = Tier::from_u8(self.tier[i]).expect("tiers are validated");
        self.cfg.tiers.strength(tier, now - self.last_access[i])
    }

    /// The best `k` stored items for each of `n` queries at time `now`.
    pub fn recall(&self, queries: &[f32], n: usize, k: usize, now: f64) -> Result<Vec<Hits>> {
        if k == 0 {
            return value_err("k must be a positive number of results, got 0");
        }
        self.check_rows("query", queries, n)?;
        check_now(now)?;
        let qc = self.query_codes(queries, n)?;
        let cd = self.cfg.code_dim;
        let sw = self.cfg.strength_weight;
        let strengths: Vec<f32> = if sw > 0.0 {
            (0..self.len())
                .into_par_iter()
                .map(|i| sw * self.strength_at(i, now) as f32)
                .collect()
        } else {
            Vec::new()
        };
        let bonus = |i: usize| strengths.get(i).copied().unwrap_or(0.0);
        let spread = self.cfg.link_weight > 0.0 && !self.links.is_empty();
        let first_k = if spread {
            k.max(self.cfg.spread_seeds)
        } else {
            k
        };
        // Blocks of queries share each pass over the codes; the block bounds the partial
        // results held per chunk.
        let base: Vec<Hits> = qc
            .chunks(QUERY_BLOCK * cd)
            .flat_map(|block| top_k_batch(&self.codes, cd, &self.ids, block, first_k, &bonus))
            .collect();
        if !spread {
            return Ok(base);
        }
        Ok(base
            .into_par_iter()
            .zip(qc.par_chunks(cd))
            .map(|(b, q)| self.spread(b, q, k, &bonus))
            .collect())
    }

    /// Add the co-access bonus: each of the best `spread_seeds` matches lends its linked items
    /// `link_weight × link × similarity`; the final top-k comes from the first-pass top-k and
    /// the linked items (nothing else can gain).
    fn spread(&self, base: Hits, q: &[f32], k: usize, bonus: &dyn Fn(usize) -> f32) -> Hits {
        let cd = self.cfg.code_dim;
        let mut extra: BTreeMap<u64, f32> = BTreeMap::new();
        for seed in base.iter().take(self.cfg.spread_seeds) {
            let i = self.index[&seed.id];
            let sim = dot(&self.codes[i * cd..(i + 1) * cd], q);
            if sim <= 0.0 {
                continue;
            }
            for (b, w) in self.links.neighbours(seed.id) {
                *extra.entry(b).or_insert(0.0) += self.cfg.link_weight * w * sim;
            }
        }
        let mut all: BTreeMap<u64, f32> = base.iter().map(|c| (c.id, c.score)).collect();
        for (b, add) in extra {
            let s = match all.get(&b) {
                Some(&s) => s,
                None => {
                    let i = self.index[&b];
                    dot(&self.codes[i * cd..(i + 1) * cd], q) + bonus(i)
                }
            };
            all.insert(b, s + add);
        }
        let mut out: Vec<Cand> = all
            .into_iter()
            .map(|(id, score)| Cand { score, id })
            .collect();
        out.sort_by(|a, b| b.cmp(a));
        out.truncate(k);
        out
    }

    /// Cosine in code space between one query and `m` candidate vectors the caller keeps.
    pub fn score(&self, query: &[f32], candidates: &[f32], m: usize) -> Result<Vec<f32>> {
        self.check_rows("query", query, 1)?;
        self.check_rows("candidates", candidates, m)?;
        let q = self.query_codes(query, 1)?;
        let c = self.project(candidates, m);
        Ok(c.chunks_exact(self.cfg.code_dim)
            .map(|r| dot(r, &q))
            .collect())
    }

    fn slot(&self, id: u64) -> Result<usize> {
        match self.index.get(&id) {
            Some(&i) => Ok(i),
            None => value_err(format!("unknown id {id}: no stored item has it")),
        }
    }

    fn check_known(&self, ids: &[u64]) -> Result<()> {
        ids.iter().try_for_each(|&id| self.slot(id).map(|_| ()))
    }

    /// Record that `ids` were used together at `now`: each gains a use (and may move tiers;
    /// promotion to semantic rehearses it on the layer and consolidates), and every pair's
    /// link strengthens.
    pub fn reinforce(&mut self, ids: &[u64], now: f64) -> Result<()> {
        check_now(now)?;
        self.check_known(ids)?;
        let mut set: Vec<u64> = Vec::with_capacity(ids.len());
        let mut seen = HashSet::new();
        for &id in ids {
            if seen.insert(id) {
                set.push(id);
            }
        }
        if set.len() > MAX_CO_ACCESS {
            return value_err(format!(
                "reinforce links every pair, so it takes at most {MAX_CO_ACCESS} distinct ids, got {}",
                set.len()
            ));
        }
        for &id in &set {
            let i = self.index[&id];
            self.uses[i] = self.uses[i].saturating_add(1);
            self.last_access[i] = now;
            let old = self.tier[i];
            let new = self.cfg.tiers.tier_of(self.uses[i]) as u8;
            self.tier[i] = new.max(old);
            if old < Tier::Semantic as u8 && new == Tier::Semantic as u8 {
                self.rehearse(i)?;
                self.log.push((id, LOG_REHEARSE));
            }
        }
        for (a_at, &a) in set.iter().enumerate() {
            for &b in &set[a_at + 1..] {
                self.links.strengthen(a, b, self.cfg.link_rate);
            }
        }
        Ok(())
    }

    /// One more pass of the item's code on the layer, then consolidation of what it uses.
    fn rehearse(&mut self, i: usize) -> Result<()> {
        let cd = self.cfg.code_dim;
        let code = self.codes[i * cd..(i + 1) * cd].to_vec();
        self.net.learn(&code, &code, 1, None, 0)?;
        if self.cfg.consolidation > 0.0 {
            self.net.consolidate(self.cfg.consolidation)?;
        }
        Ok(())
    }

    /// Remove items and everything they left behind: rows, links, and their part in the
    /// layer (rebuilt from the remaining log). Unknown ids are an error and change nothing.
    pub fn forget(&mut self, ids: &[u64]) -> Result<()> {
        self.check_known(ids)?;
        let gone: HashSet<u64> = ids.iter().copied().collect();
        if gone.is_empty() {
            return Ok(());
        }
        for &id in &gone {
            self.remove_row(id);
            self.links.remove(id);
        }
        self.log.retain(|(id, _)| !gone.contains(id));
        self.rebuild()
    }

    fn remove_row(&mut self, id: u64) {
        let i = self.index.remove(&id).expect("checked");
        let last = self.ids.len() - 1;
        let (dim, cd) = (self.cfg.dim, self.cfg.code_dim);
        if i != last {
            self.vectors
                .copy_within(last * dim..(last + 1) * dim, i * dim);
            self.codes.copy_within(last * cd..(last + 1) * cd, i * cd);
            self.index.insert(self.ids[last], i);
        }
        self.ids.swap_remove(i);
        self.uses.swap_remove(i);
        self.last_access.swap_remove(i);
        self.tier.swap_remove(i);
        self.vectors.truncate(last * dim);
        self.codes.truncate(last * cd);
    }

    /// The layer from its seed and the log: consecutive plain entries in one `learn` call.
    fn rebuild(&mut self) -> Result<()> {
        let mut net = self.cfg.network()?;
        let cd = self.cfg.code_dim;
        let mut batch: Vec<f32> = Vec::new();
        let flush = |net: &mut Network, batch: &mut Vec<f32>| -> Result<()> {
            if !batch.is_empty() {
                let n = batch.len() / cd;
                let slots = net.slots();
                crate::pool::install(slots, || net.learn(batch, batch, n, None, 0))?;
                batch.clear();
            }
            Ok(())
        };
        for &(id, kind) in &self.log {
            let i = self.index[&id];
            let code = &self.codes[i * cd..(i + 1) * cd];
            batch.extend_from_slice(code);
            if kind == LOG_REHEARSE {
                flush(&mut net, &mut batch)?;
                if self.cfg.consolidation > 0.0 {
                    net.consolidate(self.cfg.consolidation)?;
                }
            }
        }
        flush(&mut net, &mut batch)?;
        self.net = net;
        Ok(())
    }

    /// Forget every item whose strength at `now` is below `threshold`; returns their ids in
    /// ascending order.
    pub fn decay(&mut self, now: f64, threshold: f64) -> Result<Vec<u64>> {
        check_now(now)?;
        if !(threshold.is_finite() && (0.0..=1.0).contains(&threshold)) {
            return value_err(format!("threshold must lie in [0, 1], got {threshold}"));
        }
        let mut weak: Vec<u64> = (0..self.len())
            .filter(|&i| self.strength_at(i, now) < threshold)
            .map(|i| self.ids[i])
            .collect();
        weak.sort_unstable();
        self.forget(&weak)?;
        Ok(weak)
    }

    pub fn info(&self, ids: &[u64], now: f64) -> Result<Vec<ItemInfo>> {
        check_now(now)?;
        self.check_known(ids)?;
        Ok(ids
            .iter()
            .map(|id| {
                let i = self.index[id];
                ItemInfo {
                    uses: self.uses[i],
                    tier: Tier::from_u8(self.tier[i]).expect("valid"),
                    last_access: self.last_access[i],
                    strength: self.strength_at(i, now),
                }
            })
            .collect())
    }

    pub fn link(&self, a: u64, b: u64) -> Result<f32> {
        self.check_known(&[a, b])?;
        Ok(self.links.get(a, b))
    }

    /// Stored vector of `id` (as observed).
    pub fn vector(&self, id: u64) -> Result<&[f32]> {
        let i = self.slot(id)?;
        Ok(&self.vectors[i * self.cfg.dim..(i + 1) * self.cfg.dim])
    }

    pub fn log_len(&self) -> usize {
        self.log.len()
    }
}

#[cfg(test)]
mod tests;

//! Metaplastic consolidation without task boundaries (DESIGN §8, `consolidation_mode =
//! "cascade"`; the equations and why are in docs/rule-notes.md, "Cascade consolidation").
//!
//! Each synapse carries `K` hidden levels `v_1..v_K` in [0, 1] (arena columns `cascade_1..`,
//! allocated only in this mode). After the rule's step, every synapse of an involved row:
//!
//! * `v_1 ← v_1 + α_1 (l − v_1)`: the first level follows the synapse's own long trail (use);
//! * `v_k ← v_k + α_k (v_{k−1} − v_k)`: each deeper level follows the one above, `α_k =
//!   1 / (τ r^{k−1})` (geometrically slower), so only sustained use reaches the bottom and the
//!   bottom forgets slowly — but always forgets: nothing is ever frozen;
//! * `c ← c_max · v_K / (v_K + θ)`: graded consolidation from the deepest level, `< c_max < 1`;
//! * `w* ← w* + α_a (w − w*)` with `a = cascade_anchor_level` (default 1): the anchor is the
//!   weight seen through that level's timescale, so the pull `λ c (w − w*)` makes a long-used
//!   synapse resist changes faster than `τ_a` while a sustained change still passes (an anchor
//!   at the slowest level held every used weight for `τ r^(K−1)` steps: measured, it stopped
//!   new learning; docs/rule-notes.md).
//!
//! Every operation is one f32 operation in this order; `lpn.reference` computes the same.
use crate::arena::{RowMut, SynapseArena};
use crate::config::{LearnConfig, MAX_CASCADE_LEVELS};

/// The arena columns of the levels, shallowest first; a cascade of `K` levels allocates the
/// first `K`.
pub const LEVEL_COLUMNS: [&str; MAX_CASCADE_LEVELS] =
    ["cascade_1", "cascade_2", "cascade_3", "cascade_4"];

/// The cascade's per-step constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeParams {
    pub levels: usize,
    /// `α_k = 1 / τ_k`, `τ_k = τ · r^(k−1)` by repeated multiplication in f64, then rounded
    /// once to f32 (the reference does the same, so the rates are bit-equal).
    pub rate: [f32; MAX_CASCADE_LEVELS],
    pub c_max: f32,
    pub half: f32,
    /// Index (0-based) of the level whose rate the anchor follows.
    pub anchor: usize,
}

impl CascadeParams {
    /// The constants of a cascade config; `None` when the mode is off.
    pub fn new(cfg: &LearnConfig) -> Option<Self> {
        if !cfg.cascade() {
            return None;
        }
        let mut rate = [0.0f32; MAX_CASCADE_LEVELS];
        let mut tau = cfg.cascade_tau;
        for r in rate.iter_mut().take(cfg.cascade_levels) {
            *r = (1.0 / tau) as f32;
            tau *= cfg.cascade_ratio;
        }
        Some(CascadeParams {
            levels: cfg.cascade_levels,
            rate,
            c_max: cfg.cascade_max,
            half: cfg.cascade_half,
            anchor: cfg.cascade_anchor_level - 1,
        })
    }
}

/// Allocate the level columns a config needs (fresh levels are 0: no use yet) and drop the
/// others, so the arena holds cascade state exactly when the mode is on.
pub fn allocate(arena: &mut SynapseArena, cfg: &LearnConfig) {
    let k = if cfg.cascade() { cfg.cascade_levels } else { 0 };
    for (i, name) in LEVEL_COLUMNS.iter().enumerate() {
        arena
            .set_present(name, i < k)
            .expect("cascade columns are declared optional");
    }
}

/// Checkpoint loading: the level columns present must be exactly those the config allocates.
pub fn check_columns(arena: &SynapseArena, cfg: &LearnConfig) -> Result<(), String> {
    if arena.n_slots() == 0 {
        return Ok(()); // absent and empty cannot be told apart, and need not be
    }
    let k = if cfg.cascade() { cfg.cascade_levels } else { 0 };
    let cols = arena.columns();
    let present = [
        cols.cascade_1,
        cols.cascade_2,
        cols.cascade_3,
        cols.cascade_4,
    ]
    .map(|c| !c.is_empty());
    for (i, name) in LEVEL_COLUMNS.iter().enumerate() {
        if present[i] != (i < k) {
            return Err(format!(
                "synapse column {name} is {} but the config has consolidation_mode={:?} with \
                 {k} cascade level(s)",
                if present[i] { "present" } else { "missing" },
                cfg.consolidation_mode,
            ));
        }
    }
    Ok(())
}

/// One cascade step of one involved row, after the rule's step (weights and trails updated).
pub fn step_row(row: &mut RowMut<'_>, p: &CascadeParams) {
    let n = row.live();
    let long = &row.long_trail[..n];
    let mut levels: [&mut [f32]; MAX_CASCADE_LEVELS] = [
        &mut *row.cascade_1,
        &mut *row.cascade_2,
        &mut *row.cascade_3,
        &mut *row.cascade_4,
    ];
    // Level by level, each a straight pass (element-wise, so the order across synapses does
    // not change any number).
    let (first, rest) = levels.split_at_mut(1);
    let v1 = &mut first[0][..n];
    let a = p.rate[0];
    for k in 0..n {
        v1[k] += a * (long[k] - v1[k]);
    }
    let mut above: &[f32] = v1;
    for (lev, slot) in rest.iter_mut().enumerate().take(p.levels - 1) {
        let v = &mut slot[..n];
        let a = p.rate[lev + 1];
        for k in 0..n {
            v[k] += a * (above[k] - v[k]);
        }
        above = v;
    }
    let deep = above;
    let a = p.rate[p.anchor];
    let (cons, anchor, weight) = (
        &mut row.consolidation[..n],
        &mut row.anchor[..n],
        &row.weight[..n],
    );
    for k in 0..n {
        cons[k] = p.c_max * deep[k] / (deep[k] + p.half);
        anchor[k] += a * (weight[k] - anchor[k]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsolidationMode;

    fn cfg(levels: usize) -> LearnConfig {
        LearnConfig {
            consolidation_mode: ConsolidationMode::Cascade,
            cascade_levels: levels,
            cascade_tau: 10.0,
            cascade_ratio: 2.0,
            cascade_max: 0.9,
            cascade_half: 0.1,
            ..LearnConfig::default()
        }
    }

    /// One synapse with all its columns.
    struct One {
        pre: [u32; 1],
        w: [f32; 1],
        s: [f32; 1],
        l: [f32; 1],
        c: [f32; 1],
        a: [f32; 1],
        v: [[f32; 1]; MAX_CASCADE_LEVELS],
        len: u32,
        levels: usize,
    }

    impl One {
        fn new(levels: usize, w: f32, l: f32) -> Self {
            One {
                pre: [0],
                w: [w],
                s: [0.0],
                l: [l],
                c: [0.0],
                a: [0.0],
                v: [[0.0]; MAX_CASCADE_LEVELS],
                len: 1,
                levels,
            }
        }
        fn step(&mut self, p: &CascadeParams) {
            let k = self.levels;
            let [v1, v2, v3, v4] = &mut self.v;
            fn pick(v: &mut [f32; 1], present: bool) -> &mut [f32] {
                if present {
                    &mut v[..]
                } else {
                    &mut v[..0]
                }
            }
            let mut row = RowMut {
                pre: &mut self.pre,
                weight: &mut self.w,
                short_trail: &mut self.s,
                long_trail: &mut self.l,
                consolidation: &mut self.c,
                anchor: &mut self.a,
                cascade_1: pick(v1, 0 < k),
                cascade_2: pick(v2, 1 < k),
                cascade_3: pick(v3, 2 < k),
                cascade_4: pick(v4, 3 < k),
                len: &mut self.len,
            };
            step_row(&mut row, p);
        }
    }

    #[test]
    fn rates_are_geometric_and_off_means_none() {
        let p = CascadeParams::new(&cfg(3)).unwrap();
        assert_eq!(p.rate, [0.1, 0.05, 0.025, 0.0]);
        assert!(CascadeParams::new(&LearnConfig::default()).is_none());
    }

    #[test]
    fn one_step_by_hand() {
        let p = CascadeParams::new(&cfg(2)).unwrap();
        let mut s = One::new(2, 1.0, 0.5);
        s.step(&p);
        let v1 = 0.1f32 * 0.5;
        let v2 = 0.05f32 * v1;
        assert_eq!(s.v[0][0], v1);
        assert_eq!(s.v[1][0], v2);
        assert_eq!(s.v[2][0], 0.0); // absent levels untouched
        assert_eq!(s.c[0], 0.9 * v2 / (v2 + 0.1));
        assert_eq!(s.a[0], 0.1 * 1.0);
    }

    #[test]
    fn sustained_use_consolidates_and_disuse_releases() {
        let p = CascadeParams::new(&cfg(3)).unwrap();
        let mut s = One::new(3, 0.7, 0.8);
        let mut last = 0.0;
        for _ in 0..400 {
            s.step(&p);
            assert!(s.c[0] >= last, "c rises monotonically under constant use");
            last = s.c[0];
        }
        // deep level near 0.8 → c near 0.9 · 0.8 / 0.9 = 0.8, never above c_max
        assert!(s.c[0] > 0.75 && s.c[0] < 0.9, "c = {}", s.c[0]);
        assert!(
            (s.a[0] - 0.7).abs() < 0.01,
            "anchor follows the weight slowly"
        );
        let peak = s.c[0];
        s.l[0] = 0.0;
        for _ in 0..2000 {
            s.step(&p);
        }
        assert!(
            s.c[0] < 0.05 * peak,
            "c falls back once use stops: {}",
            s.c[0]
        );
        // The deepest level forgets last: the shallow one falls first.
        let mut t = One::new(3, 0.0, 0.8);
        for _ in 0..400 {
            t.step(&p);
        }
        t.l[0] = 0.0;
        for _ in 0..20 {
            t.step(&p);
        }
        assert!(t.v[0][0] < t.v[1][0] && t.v[1][0] < t.v[2][0]);
    }

    #[test]
    fn a_layer_grown_from_no_synapses_gets_its_levels() {
        use crate::config::LayerSpec;
        use crate::layer::{Layer, Signal};
        let cfg = cfg(2);
        let spec = LayerSpec {
            radius: 0.0,
            growth_radius: Some(1.0),
            max_fan_in: Some(3),
            ..LayerSpec::new(3, 4)
        };
        let mut layer = Layer::new(spec, Signal::Output, &cfg, || 0.0).unwrap();
        assert_eq!(layer.arena().n_slots(), 0);
        layer.error_trace = vec![1.0, 0.0, 0.0, 0.0];
        let (_, grown) = layer.restructure(&cfg);
        assert!(grown > 0);
        let cols = layer.arena().columns();
        let n = layer.arena().n_slots();
        assert_eq!((cols.cascade_1.len(), cols.cascade_2.len()), (n, n));
        assert!(cols.cascade_3.is_empty());
        check_columns(layer.arena(), &cfg).unwrap();
        layer.e = vec![1.0; 4];
        // Would index absent levels otherwise.
        layer.apply_step(&[1.0, 1.0, 1.0], 1.0, &cfg, crate::layer::Norms::Sum);
        // The grown synapses' scout trails fed the first level.
        assert!(layer.arena().columns().cascade_1.iter().any(|&v| v > 0.0));
    }

    #[test]
    fn levels_stay_in_unit_interval_and_c_below_max() {
        let p = CascadeParams::new(&LearnConfig {
            cascade_tau: 1.0,
            cascade_ratio: 1.0,
            ..cfg(4)
        })
        .unwrap();
        let mut s = One::new(4, 0.0, 1.0);
        for _ in 0..50 {
            s.step(&p);
            assert!(s.v.iter().all(|v| (0.0..=1.0).contains(&v[0])));
            assert!(s.c[0] < 0.9);
        }
        assert_eq!(s.v[3][0], 1.0); // rate 1: every level copies the one above
    }
}

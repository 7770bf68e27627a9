//! Structural plasticity (docs/rule.md, structural plasticity): prune weak, unconsolidated synapses; grow new ones
//! for rows with a high error trace, toward the most active inputs of the growth neighbourhood.
use crate::config::LearnConfig;
use crate::layer::Layer;
use crate::topology::build_neighbourhood;
use std::cell::RefCell;

thread_local! {
    static PICKS: RefCell<Vec<(f32, f64, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Inputs row `j` should grow toward, best first, at most `limit` of them, written to `out`.
fn growth_picks(
    layer: &Layer,
    j: usize,
    row_pre: &[u32],
    limit: usize,
    out: &mut Vec<(f32, f64, u32)>,
) {
    out.clear();
    if limit == 0 {
        return;
    }
    let growth = layer.growth.as_ref().expect("growth neighbourhood built");
    let mut k = 0;
    for &i in growth.row(j) {
        while k < row_pre.len() && row_pre[k] < i {
            k += 1;
        }
        if k < row_pre.len() && row_pre[k] == i {
            continue;
        }
        out.push((
            layer.activity_trace[i as usize],
            layer.geo.distance_io(i as usize, j),
            i,
        ));
    }
    // Most active first; ties nearer, then lower index.
    out.sort_unstable_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.total_cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    out.truncate(limit);
}

impl Layer {
    /// One prune-and-grow pass; returns (pruned, grown).
    pub fn restructure(&mut self, cfg: &LearnConfig) -> (u64, u64) {
        if self.growth.is_none() {
            let r = self.spec.growth_radius();
            self.growth = Some(build_neighbourhood(&self.spec, &self.geo, r, None));
        }
        let n_out = self.n_out();
        let (tw, tl) = (cfg.prune_weight, cfg.prune_long);
        let mut count = std::mem::take(&mut self.row_count);
        self.arena.par_rows(&mut count[..], |_, mut row, pruned| {
            let n = row.live();
            let mut keep = 0;
            for k in 0..n {
                let dead = row.weight[k].abs() < tw
                    && row.long_trail[k] < tl
                    && row.consolidation[k] == 0.0;
                if !dead {
                    if keep != k {
                        row.move_slot(k, keep);
                    }
                    keep += 1;
                }
            }
            *pruned = (n - keep) as u32;
            *row.len = keep as u32;
        });
        let pruned: u64 = count.iter().map(|&c| c as u64).sum();

        // Grow: rows whose error trace is above the layer mean.
        let mut sum = 0.0f64;
        for &h in &self.error_trace {
            sum += h as f64;
        }
        let mean = sum / n_out as f64;
        let wants = |layer: &Layer, j: usize| -> usize {
            let len = layer.arena.row_len(j);
            if (layer.error_trace[j] as f64) > mean {
                cfg.grow_per_row
                    .min((layer.max_fan_in[j] as usize).saturating_sub(len))
            } else {
                0
            }
        };
        // Growth may need more slots than a packed row has: re-lay the arena once, giving
        // every row its bound, after which growth only ever reuses slots. A row's growth limit
        // never takes it past that bound, so the limit alone decides.
        let limits: Vec<usize> = (0..n_out).map(|j| wants(self, j)).collect();
        let need_relayout = (0..n_out)
            .any(|j| limits[j] > 0 && self.arena.row_len(j) + limits[j] > self.arena.capacity(j));
        if need_relayout {
            let caps: Vec<usize> = self.max_fan_in.iter().map(|&m| m as usize).collect();
            self.arena.relayout(&caps);
        }
        let mut arena = std::mem::take(&mut self.arena);
        {
            let this = &*self;
            arena.par_rows(&mut count[..], |j, mut row, grown| {
                *grown = 0;
                if limits[j] == 0 {
                    return;
                }
                PICKS.with(|cell| {
                    let mut picks = cell.borrow_mut();
                    let n = row.live();
                    growth_picks(this, j, &row.pre[..n], limits[j], &mut picks);
                    for &(_, _, i) in picks.iter() {
                        if row.live() < row.pre.len() {
                            row.insert_fresh(i);
                            *grown += 1;
                        }
                    }
                });
            });
        }
        self.arena = arena;
        let grown: u64 = count.iter().map(|&c| c as u64).sum();
        self.row_count = count;
        self.stats.pruned_last = pruned;
        self.stats.grown_last = grown;
        self.stats.pruned_total += pruned;
        self.stats.grown_total += grown;
        (pruned, grown)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{LayerSpec, LearnConfig};
    use crate::layer::{Layer, Signal};

    fn layer_2d() -> Layer {
        let mut spec = LayerSpec::new(64, 16);
        spec.dims = 2;
        spec.radius = 0.13;
        spec.in_tags = Some((0..64).map(|i| (i % 2) as u32).collect());
        spec.out_tags = Some((0..16).map(|j| (j % 2) as u32).collect());
        let mut k = 0u32;
        Layer::new(spec, Signal::Output, &LearnConfig::default(), || {
            k += 1;
            if k.is_multiple_of(3) {
                0.0
            } else {
                0.5
            }
        })
        .unwrap()
    }

    fn check_invariants(layer: &Layer) {
        layer.arena.check(layer.n_in()).unwrap();
        let r = layer.spec.growth_radius();
        for j in 0..layer.n_out() {
            let live = layer.arena.live(j);
            assert!(live.len() <= layer.max_fan_in[j] as usize);
            for &i in &layer.arena.pre()[live] {
                assert!(layer.geo.distance_io(i as usize, j) <= r + 1e-12);
                assert!(layer
                    .spec
                    .compatible(layer.spec.in_tag(i as usize), layer.spec.out_tag(j)));
            }
        }
    }

    #[test]
    fn prunes_weak_and_grows_toward_active_inputs() {
        let mut layer = layer_2d();
        let before = layer.arena.n_live();
        // Rows 0..8 carry error; inputs with high index are the active ones.
        for j in 0..8 {
            layer.error_trace[j] = 1.0;
        }
        for (i, u) in layer.activity_trace.iter_mut().enumerate() {
            *u = i as f32;
        }
        let cfg = LearnConfig::default();
        let (pruned, grown) = layer.restructure(&cfg);
        // every third weight was drawn as exactly 0
        assert_eq!(pruned as usize, before / 3);
        assert!(grown > 0 && grown <= 8 * 2);
        check_invariants(&layer);
        // Repeated passes never exceed the bound and keep invariants.
        for _ in 0..20 {
            layer.restructure(&cfg);
            check_invariants(&layer);
        }
        let cap_total: usize = layer.max_fan_in.iter().map(|&m| m as usize).sum();
        assert!(layer.arena.n_slots() <= cap_total.max(before));
    }

    #[test]
    fn consolidated_or_trailed_synapses_survive() {
        let mut layer = layer_2d();
        let cols = layer.arena.columns_mut();
        cols.weight.fill(0.0);
        cols.consolidation[0] = 0.5;
        cols.long_trail[1] = 0.5;
        let cfg = LearnConfig::default();
        layer.restructure(&cfg);
        assert_eq!(layer.arena.n_live(), 2);
        check_invariants(&layer);
    }
}

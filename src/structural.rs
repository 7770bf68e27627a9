//! Structural plasticity (docs/rule.md, structural plasticity): prune weak, unconsolidated synapses; grow new ones
//! for rows with a high error trace, toward the most active inputs of the growth neighbourhood.
//!
//! Memory stays bounded after any number of passes: when growth needs slots a row lacks, the
//! arena is re-laid with every row at exactly what it holds plus what it may grow this pass (no
//! row kept at `max_fan_in` "just in case"), and the growth neighbourhood is built for a block
//! of growing rows at a time and dropped, never cached.
use crate::config::LearnConfig;
use crate::layer::Layer;
use crate::topology::{build_neighbourhood_rows, Neighbourhood};
use std::cell::RefCell;

/// Growing rows whose growth neighbourhood is built at once: bounds the transient memory to a
/// block's candidates (a few MB) whatever the layer size.
const GROWTH_BLOCK: usize = 8_192;

thread_local! {
    static PICKS: RefCell<Vec<(f32, f64, u32)>> = const { RefCell::new(Vec::new()) };
}

/// Inputs row `j` should grow toward, best first, at most `limit` of them, written to `out`;
/// `candidates` is row `j`'s growth neighbourhood (ascending).
fn growth_picks(
    layer: &Layer,
    j: usize,
    candidates: &[u32],
    row_pre: &[u32],
    limit: usize,
    out: &mut Vec<(f32, f64, u32)>,
) {
    out.clear();
    if limit == 0 {
        return;
    }
    let mut k = 0;
    for &i in candidates {
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
        // Nothing is cached between passes (older versions kept the whole neighbourhood).
        self.growth = None;
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
        let limits: Vec<usize> = (0..n_out)
            .map(|j| {
                let len = self.arena.row_len(j);
                if (self.error_trace[j] as f64) > mean {
                    cfg.grow_per_row
                        .min((self.max_fan_in[j] as usize).saturating_sub(len))
                } else {
                    0
                }
            })
            .collect();
        // A row's growth limit never takes it past its bound, so the limit alone decides
        // whether a row needs more slots; if one does, every row is re-laid tight: what it
        // holds now plus what it may grow (slots freed by pruning are returned).
        let need_relayout = (0..n_out)
            .any(|j| limits[j] > 0 && self.arena.row_len(j) + limits[j] > self.arena.capacity(j));
        if need_relayout {
            let caps: Vec<usize> = (0..n_out)
                .map(|j| self.arena.row_len(j) + limits[j])
                .collect();
            self.arena.relayout(&caps);
        }
        let growing: Vec<usize> = (0..n_out).filter(|&j| limits[j] > 0).collect();
        let radius = self.spec.growth_radius();
        let mut block_of = vec![u32::MAX; n_out];
        let mut arena = std::mem::take(&mut self.arena);
        count.fill(0);
        for block in growing.chunks(GROWTH_BLOCK) {
            let nb: Neighbourhood =
                build_neighbourhood_rows(&self.spec, &self.geo, radius, None, block);
            for (k, &j) in block.iter().enumerate() {
                block_of[j] = k as u32;
            }
            let this = &*self;
            let (nb, owner, limits) = (&nb, &block_of, &limits);
            arena.par_rows(&mut count[..], |j, mut row, grown| {
                if owner[j] == u32::MAX || limits[j] == 0 {
                    return;
                }
                PICKS.with(|cell| {
                    let mut picks = cell.borrow_mut();
                    let n = row.live();
                    let candidates = nb.row(owner[j] as usize);
                    growth_picks(this, j, candidates, &row.pre[..n], limits[j], &mut picks);
                    for &(_, _, i) in picks.iter() {
                        if row.live() < row.pre.len() {
                            row.insert_fresh(i);
                            // §5.2: a fresh scout trail, so the pheromone factor favours it.
                            let at = row.pre[..row.live()].partition_point(|&p| p < i);
                            row.short_trail[at] = 1.0;
                            *grown += 1;
                        }
                    }
                });
            });
            for &j in block {
                block_of[j] = u32::MAX;
            }
        }
        self.arena = arena;
        // An arena that had no slots has no cascade levels either (absent and empty are one).
        crate::cascade::allocate(&mut self.arena, cfg);
        let grown: u64 = growing.iter().map(|&j| count[j] as u64).sum();
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
        // Grown synapses start at w = l = c = 0 with a scout short trail s = 1 (§5.2); every
        // survivor has w = 0.5 and keeps s = 0.
        let a = layer.arena.columns();
        let mut scouts = 0;
        for k in layer.arena.live_indices() {
            let fresh = a.weight[k] == 0.0;
            assert_eq!(a.short_trail[k], if fresh { 1.0 } else { 0.0 });
            if fresh {
                scouts += 1;
                assert_eq!((a.long_trail[k], a.consolidation[k]), (0.0, 0.0));
            }
        }
        assert_eq!(scouts, grown);
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

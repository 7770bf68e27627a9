//! Unit positions, tags and neighbourhood construction.
//!
//! Neighbourhoods are found through a uniform spatial grid of cells about one radius wide, so a
//! layer is built in O((n_in + n_out) · k) rather than by scanning every (input, output) pair.
use crate::config::LayerSpec;
use crate::error::Result;
use rayon::prelude::*;

/// Position `[x, y]` of unit `k` on an `h × w` grid in the unit square: row `k / w`, column
/// `k % w`, each at the centre of its cell (a 1-D layer is the grid `1 × n`, so y = 0.5).
/// The one definition of where units sit; Python's tasks and reference use it through `_lpn`.
#[inline]
pub fn position(shape: (usize, usize), k: usize) -> [f64; 2] {
    let (h, w) = shape;
    let (r, c) = (k / w, k % w);
    [(c as f64 + 0.5) / w as f64, (r as f64 + 0.5) / h as f64]
}

#[inline]
fn axis_gap(periodic: bool, a: f64, b: f64) -> f64 {
    let d = (a - b).abs();
    if periodic {
        d.min(1.0 - d)
    } else {
        d
    }
}

/// Distance between two positions: the per-axis gap (wrapped around when `periodic`), then
/// Euclidean over `dims` axes. The one definition of distance.
#[inline]
pub fn distance(dims: usize, periodic: bool, a: [f64; 2], b: [f64; 2]) -> f64 {
    let dx = axis_gap(periodic, a[0], b[0]);
    if dims == 1 {
        dx
    } else {
        let dy = axis_gap(periodic, a[1], b[1]);
        (dx * dx + dy * dy).sqrt()
    }
}

/// The largest distance that counts as within `radius`: float noise must not drop a unit
/// sitting exactly at the radius.
#[inline]
pub fn reach(radius: f64) -> f64 {
    radius * (1.0 + 1e-12) + 1e-15
}

/// Geometry of one layer: where its input and output units sit and how far apart they are.
#[derive(Debug, Clone)]
pub struct Geometry {
    pub dims: usize,
    pub in_shape: (usize, usize),
    pub out_shape: (usize, usize),
    pub periodic: bool,
}

impl Geometry {
    pub fn new(spec: &LayerSpec) -> Result<Self> {
        Ok(Geometry {
            dims: spec.dims,
            in_shape: spec.shape_for(spec.n_in, spec.in_shape, "in")?,
            out_shape: spec.shape_for(spec.n_out, spec.out_shape, "out")?,
            periodic: spec.periodic,
        })
    }

    #[inline]
    pub fn pos_in(&self, i: usize) -> [f64; 2] {
        position(self.in_shape, i)
    }

    #[inline]
    pub fn pos_out(&self, j: usize) -> [f64; 2] {
        position(self.out_shape, j)
    }

    #[inline]
    pub fn distance(&self, a: [f64; 2], b: [f64; 2]) -> f64 {
        distance(self.dims, self.periodic, a, b)
    }

    /// The largest distance two units of this geometry can have (positions lie in [0, 1)^dims).
    pub fn diameter(&self) -> f64 {
        let side = if self.periodic { 0.5 } else { 1.0 };
        if self.dims == 1 {
            side
        } else {
            side * std::f64::consts::SQRT_2
        }
    }

    /// Distance between input unit `i` and output unit `j`.
    #[inline]
    pub fn distance_io(&self, i: usize, j: usize) -> f64 {
        self.distance(self.pos_in(i), self.pos_out(j))
    }
}

/// Compressed rows: row `j` holds the input indices `pre[start[j]..start[j + 1]]`, ascending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Neighbourhood {
    pub start: Vec<usize>,
    pub pre: Vec<u32>,
}

impl Neighbourhood {
    pub fn row(&self, j: usize) -> &[u32] {
        &self.pre[self.start[j]..self.start[j + 1]]
    }

    pub fn n_rows(&self) -> usize {
        self.start.len().saturating_sub(1)
    }
}

/// Input units bucketed by grid cell (counting sort: indices ascend within a cell).
struct CellIndex {
    cells: [usize; 2],
    start: Vec<usize>,
    items: Vec<u32>,
}

impl CellIndex {
    fn new(geo: &Geometry, radius: f64, n_in: usize) -> Self {
        let (h, w) = geo.in_shape;
        let per_axis = |units: usize| -> usize {
            let by_radius = if radius > 0.0 {
                (1.0 / radius).floor() as usize
            } else {
                units
            };
            by_radius.clamp(1, units.max(1))
        };
        let cells = if geo.dims == 1 {
            [per_axis(w), 1]
        } else {
            [per_axis(w), per_axis(h)]
        };
        let cell_of = |i: usize| -> usize {
            let p = geo.pos_in(i);
            let cx = ((p[0] * cells[0] as f64) as usize).min(cells[0] - 1);
            let cy = ((p[1] * cells[1] as f64) as usize).min(cells[1] - 1);
            cy * cells[0] + cx
        };
        let n_cells = cells[0] * cells[1];
        let mut start = vec![0usize; n_cells + 1];
        for i in 0..n_in {
            start[cell_of(i) + 1] += 1;
        }
        for c in 0..n_cells {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; n_in];
        for i in 0..n_in {
            let c = cell_of(i);
            items[fill[c]] = i as u32;
            fill[c] += 1;
        }
        CellIndex {
            cells,
            start,
            items,
        }
    }

    /// Cell indices along one axis that can hold a point within `radius` of `p`.
    fn axis_range(&self, axis: usize, p: f64, radius: f64, periodic: bool, out: &mut Vec<usize>) {
        out.clear();
        let n = self.cells[axis] as i64;
        let lo = ((p - radius) * n as f64).floor() as i64;
        let hi = ((p + radius) * n as f64).floor() as i64;
        if periodic {
            if hi - lo + 1 >= n {
                out.extend(0..n as usize);
            } else {
                out.extend((lo..=hi).map(|c| c.rem_euclid(n) as usize));
            }
        } else {
            out.extend((lo.max(0)..=hi.min(n - 1)).map(|c| c as usize));
        }
    }
}

/// Build N(j) for every output: inputs within `radius` and tag-compatible, optionally only the
/// `fan_in` nearest (ties: lower index). Rows come out sorted by input index.
pub fn build_neighbourhood(
    spec: &LayerSpec,
    geo: &Geometry,
    radius: f64,
    fan_in: Option<usize>,
) -> Neighbourhood {
    let rows: Vec<usize> = (0..spec.n_out).collect();
    build_neighbourhood_rows(spec, geo, radius, fan_in, &rows)
}

/// The same for the listed output rows only: row `k` of the result is output `rows[k]`
/// (structural growth asks for a block of rows at a time, so it never holds them all).
pub fn build_neighbourhood_rows(
    spec: &LayerSpec,
    geo: &Geometry,
    radius: f64,
    fan_in: Option<usize>,
    rows: &[usize],
) -> Neighbourhood {
    // No two units are further apart than the diameter: a larger radius means the same
    // neighbourhood, and clamping keeps the cell arithmetic below far from overflow.
    let radius = radius.min(geo.diameter());
    let index = CellIndex::new(geo, radius, spec.n_in);
    let reach = reach(radius);
    const CHUNK: usize = 1024;
    let work = |rows: &[usize]| {
        let mut lens = Vec::with_capacity(rows.len());
        let mut pres = Vec::new();
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut found: Vec<(f64, u32)> = Vec::new();
        for &j in rows {
            let p = geo.pos_out(j);
            let tag_out = spec.out_tag(j);
            index.axis_range(0, p[0], reach, geo.periodic, &mut xs);
            index.axis_range(1, p[1], reach, geo.periodic, &mut ys);
            if geo.dims == 1 {
                ys.clear();
                ys.push(0);
            }
            found.clear();
            for &cy in &ys {
                for &cx in &xs {
                    let c = cy * index.cells[0] + cx;
                    for &i in &index.items[index.start[c]..index.start[c + 1]] {
                        let d = geo.distance(geo.pos_in(i as usize), p);
                        if d <= reach && spec.compatible(spec.in_tag(i as usize), tag_out) {
                            found.push((d, i));
                        }
                    }
                }
            }
            if let Some(k) = fan_in {
                if found.len() > k {
                    found.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    found.truncate(k);
                }
            }
            found.sort_unstable_by_key(|e| e.1);
            lens.push(found.len());
            pres.extend(found.iter().map(|e| e.1));
        }
        (lens, pres)
    };
    // Only split inside the engine's pool (`pool::install`): from any other thread rayon would
    // use its global pool, which a forked child cannot rebuild (see `pool.rs`).
    let chunks: Vec<(Vec<usize>, Vec<u32>)> = if rayon::current_thread_index().is_some() {
        rows.par_chunks(CHUNK).map(work).collect()
    } else {
        rows.chunks(CHUNK).map(work).collect()
    };
    let mut start = Vec::with_capacity(rows.len() + 1);
    start.push(0usize);
    let total: usize = chunks.iter().map(|c| c.1.len()).sum();
    let mut pre = Vec::with_capacity(total);
    for (lens, pres) in chunks {
        for l in lens {
            start.push(start.last().unwrap() + l);
        }
        pre.extend(pres);
    }
    Neighbourhood { start, pre }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(
        spec: &LayerSpec,
        geo: &Geometry,
        radius: f64,
        fan_in: Option<usize>,
    ) -> Neighbourhood {
        let mut start = vec![0];
        let mut pre = vec![];
        for j in 0..spec.n_out {
            let mut found: Vec<(f64, u32)> = (0..spec.n_in)
                .filter(|&i| spec.compatible(spec.in_tag(i), spec.out_tag(j)))
                .map(|i| (geo.distance_io(i, j), i as u32))
                .filter(|e| e.0 <= radius * (1.0 + 1e-12) + 1e-15)
                .collect();
            found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if let Some(k) = fan_in {
                found.truncate(k);
            }
            let mut ids: Vec<u32> = found.iter().map(|e| e.1).collect();
            ids.sort();
            pre.extend(ids);
            start.push(pre.len());
        }
        Neighbourhood { start, pre }
    }

    fn specs() -> Vec<LayerSpec> {
        let mut out = vec![];
        for periodic in [true, false] {
            let mut a = LayerSpec::new(50, 30);
            a.radius = 0.07;
            a.periodic = periodic;
            out.push(a.clone());
            a.fan_in = Some(4);
            out.push(a.clone());
            let mut b = LayerSpec::new(64, 36);
            b.dims = 2;
            b.radius = 0.2;
            b.periodic = periodic;
            out.push(b.clone());
            b.fan_in = Some(5);
            b.in_tags = Some((0..64).map(|i| (i % 3) as u32).collect());
            b.out_tags = Some((0..36).map(|j| (j % 2) as u32).collect());
            b.tag_affinity = Some(vec![
                vec![1.0, 0.0, 0.0],
                vec![0.0, 1.0, 0.0],
                vec![0.6, 0.0, 0.2],
            ]);
            out.push(b.clone());
            let mut c = LayerSpec::new(12, 20);
            c.dims = 2;
            c.in_shape = Some((3, 4));
            c.out_shape = Some((4, 5));
            c.radius = 0.3;
            c.periodic = periodic;
            out.push(c);
        }
        out
    }

    #[test]
    fn grid_matches_brute_force() {
        for spec in specs() {
            spec.validate().unwrap();
            let geo = Geometry::new(&spec).unwrap();
            let fast = build_neighbourhood(&spec, &geo, spec.radius, spec.fan_in);
            let slow = brute(&spec, &geo, spec.radius, spec.fan_in);
            assert_eq!(fast, slow, "spec {spec:?}");
        }
    }

    #[test]
    fn invariants_inside_radius_compatible_unique_capped() {
        for spec in specs() {
            let geo = Geometry::new(&spec).unwrap();
            let nb = build_neighbourhood(&spec, &geo, spec.radius, spec.fan_in);
            for j in 0..spec.n_out {
                let row = nb.row(j);
                assert!(row.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
                if let Some(k) = spec.fan_in {
                    assert!(row.len() <= k);
                }
                for &i in row {
                    assert!(geo.distance_io(i as usize, j) <= spec.radius + 1e-12);
                    assert!(spec.compatible(spec.in_tag(i as usize), spec.out_tag(j)));
                }
            }
        }
    }

    #[test]
    fn ring_positions_and_periodic_distance() {
        let spec = LayerSpec::new(10, 10);
        let geo = Geometry::new(&spec).unwrap();
        assert!((geo.pos_in(0)[0] - 0.05).abs() < 1e-12);
        // units 0 and 9 are neighbours across the seam of the ring
        assert!((geo.distance_io(0, 9) - 0.1).abs() < 1e-12);
        let mut open = spec.clone();
        open.periodic = false;
        let geo = Geometry::new(&open).unwrap();
        assert!((geo.distance_io(0, 9) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn radius_zero_keeps_only_coincident_units() {
        let mut spec = LayerSpec::new(8, 8);
        spec.radius = 0.0;
        let geo = Geometry::new(&spec).unwrap();
        let nb = build_neighbourhood(&spec, &geo, 0.0, None);
        for j in 0..8 {
            assert_eq!(nb.row(j), &[j as u32]);
        }
    }
}

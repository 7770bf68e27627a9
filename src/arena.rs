//! Structure-of-arrays synapse storage, one contiguous block of slots per output row.
//!
//! Row `j` owns slots `row_start[j]..row_start[j + 1]`; the first `row_len[j]` are live and
//! sorted by input index. Pruning compacts a row in place and growth reuses the freed slots, so
//! after at most one re-layout (to each row's `max_fan_in`) memory never grows again.
use crate::topology::Neighbourhood;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SynapseArena {
    pub row_start: Vec<usize>,
    pub row_len: Vec<u32>,
    pub pre: Vec<u32>,
    pub weight: Vec<f32>,
    pub short_trail: Vec<f32>,
    pub long_trail: Vec<f32>,
    pub consolidation: Vec<f32>,
    pub anchor: Vec<f32>,
}

/// One row's slots, all of its capacity; `len` says how many are live.
pub struct RowMut<'a> {
    pub pre: &'a mut [u32],
    pub weight: &'a mut [f32],
    pub short_trail: &'a mut [f32],
    pub long_trail: &'a mut [f32],
    pub consolidation: &'a mut [f32],
    pub anchor: &'a mut [f32],
    pub len: &'a mut u32,
}

impl RowMut<'_> {
    #[inline]
    pub fn live(&self) -> usize {
        *self.len as usize
    }

    /// Move slot `from` to slot `to` (compaction).
    #[inline]
    pub fn move_slot(&mut self, from: usize, to: usize) {
        self.pre[to] = self.pre[from];
        self.weight[to] = self.weight[from];
        self.short_trail[to] = self.short_trail[from];
        self.long_trail[to] = self.long_trail[from];
        self.consolidation[to] = self.consolidation[from];
        self.anchor[to] = self.anchor[from];
    }

    /// Insert a fresh synapse from input `i` keeping the row sorted; the caller checked capacity.
    pub fn insert_fresh(&mut self, i: u32) {
        let n = self.live();
        let at = self.pre[..n].partition_point(|&p| p < i);
        let mut k = n;
        while k > at {
            self.move_slot(k - 1, k);
            k -= 1;
        }
        self.pre[at] = i;
        self.weight[at] = 0.0;
        self.short_trail[at] = 0.0;
        self.long_trail[at] = 0.0;
        self.consolidation[at] = 0.0;
        self.anchor[at] = 0.0;
        *self.len += 1;
    }
}

/// A contiguous block of rows, split recursively for rayon without allocating.
pub struct RowsMut<'a> {
    first: usize,
    starts: &'a [usize],
    pre: &'a mut [u32],
    weight: &'a mut [f32],
    short_trail: &'a mut [f32],
    long_trail: &'a mut [f32],
    consolidation: &'a mut [f32],
    anchor: &'a mut [f32],
    len: &'a mut [u32],
    bias: &'a mut [f32],
    count: &'a mut [u32],
}

impl<'a> RowsMut<'a> {
    fn n_rows(&self) -> usize {
        self.len.len()
    }

    fn split(self, rows: usize) -> (RowsMut<'a>, RowsMut<'a>) {
        let cut = self.starts[self.first + rows] - self.starts[self.first];
        let (p0, p1) = self.pre.split_at_mut(cut);
        let (w0, w1) = self.weight.split_at_mut(cut);
        let (s0, s1) = self.short_trail.split_at_mut(cut);
        let (l0, l1) = self.long_trail.split_at_mut(cut);
        let (c0, c1) = self.consolidation.split_at_mut(cut);
        let (a0, a1) = self.anchor.split_at_mut(cut);
        let (n0, n1) = self.len.split_at_mut(rows);
        let (b0, b1) = self.bias.split_at_mut(rows);
        let (k0, k1) = self.count.split_at_mut(rows);
        (
            RowsMut {
                first: self.first,
                starts: self.starts,
                pre: p0,
                weight: w0,
                short_trail: s0,
                long_trail: l0,
                consolidation: c0,
                anchor: a0,
                len: n0,
                bias: b0,
                count: k0,
            },
            RowsMut {
                first: self.first + rows,
                starts: self.starts,
                pre: p1,
                weight: w1,
                short_trail: s1,
                long_trail: l1,
                consolidation: c1,
                anchor: a1,
                len: n1,
                bias: b1,
                count: k1,
            },
        )
    }

    fn for_each_seq<F: Fn(usize, RowMut<'_>, &mut f32, &mut u32)>(self, f: &F) {
        let mut rest = self;
        while rest.n_rows() > 0 {
            let (head, tail) = rest.split(1);
            let j = head.first;
            f(
                j,
                RowMut {
                    pre: head.pre,
                    weight: head.weight,
                    short_trail: head.short_trail,
                    long_trail: head.long_trail,
                    consolidation: head.consolidation,
                    anchor: head.anchor,
                    len: &mut head.len[0],
                },
                &mut head.bias[0],
                &mut head.count[0],
            );
            rest = tail;
        }
    }
}

/// Rows per rayon task: big enough to amortise scheduling, small enough to balance 16 cores.
const GRAIN_SLOTS: usize = 4096;

fn drive<F: Fn(usize, RowMut<'_>, &mut f32, &mut u32) + Sync>(rows: RowsMut<'_>, f: &F) {
    let n = rows.n_rows();
    let slots = rows.starts[rows.first + n] - rows.starts[rows.first];
    if n <= 1 || slots <= GRAIN_SLOTS {
        rows.for_each_seq(f);
    } else {
        let (a, b) = rows.split(n / 2);
        rayon::join(|| drive(a, f), || drive(b, f));
    }
}

impl SynapseArena {
    /// Fresh arena from a neighbourhood, rows packed without spare slots; weights drawn by `init`
    /// in storage order.
    pub fn from_neighbourhood(nb: &Neighbourhood, mut init: impl FnMut() -> f32) -> Self {
        let n = nb.pre.len();
        let weight: Vec<f32> = (0..n).map(|_| init()).collect();
        SynapseArena {
            row_start: nb.start.clone(),
            row_len: (0..nb.n_rows())
                .map(|j| (nb.start[j + 1] - nb.start[j]) as u32)
                .collect(),
            pre: nb.pre.clone(),
            anchor: weight.clone(),
            weight,
            short_trail: vec![0.0; n],
            long_trail: vec![0.0; n],
            consolidation: vec![0.0; n],
        }
    }

    pub fn n_rows(&self) -> usize {
        self.row_len.len()
    }

    pub fn capacity(&self, j: usize) -> usize {
        self.row_start[j + 1] - self.row_start[j]
    }

    /// Live slot range of row `j`.
    #[inline]
    pub fn live(&self, j: usize) -> std::ops::Range<usize> {
        self.row_start[j]..self.row_start[j] + self.row_len[j] as usize
    }

    pub fn n_live(&self) -> usize {
        self.row_len.iter().map(|&l| l as usize).sum()
    }

    /// Run `f` on every row in parallel; each call sees only its own row, plus that row's entry
    /// of `bias` and `count` (per-row state kept outside the arena).
    pub fn par_rows<F>(&mut self, bias: &mut [f32], count: &mut [u32], f: F)
    where
        F: Fn(usize, RowMut<'_>, &mut f32, &mut u32) + Sync,
    {
        assert!(bias.len() == self.n_rows() && count.len() == self.n_rows());
        let rows = RowsMut {
            first: 0,
            starts: &self.row_start,
            pre: &mut self.pre,
            weight: &mut self.weight,
            short_trail: &mut self.short_trail,
            long_trail: &mut self.long_trail,
            consolidation: &mut self.consolidation,
            anchor: &mut self.anchor,
            len: &mut self.row_len,
            bias,
            count,
        };
        drive(rows, &f);
    }

    /// Give every row `max(capacity[j], live)` slots (growing or shrinking it), keeping live
    /// synapses in their rows; done in place, column by column (see `relayout_column`).
    pub fn relayout(&mut self, capacity: &[usize]) {
        let n_rows = self.n_rows();
        let mut start = Vec::with_capacity(n_rows + 1);
        start.push(0usize);
        for (j, &cap) in capacity.iter().enumerate().take(n_rows) {
            let c = cap.max(self.row_len[j] as usize);
            start.push(start[j] + c);
        }
        let (old, len) = (&self.row_start, &self.row_len);
        relayout_column(&mut self.pre, old, &start, len, 0);
        for col in [
            &mut self.weight,
            &mut self.short_trail,
            &mut self.long_trail,
            &mut self.consolidation,
            &mut self.anchor,
        ] {
            relayout_column(col, old, &start, len, 0.0);
        }
        self.row_start = start;
    }

    /// Live synapses as (post, pre, ...) in row order, for inspection and checkpoints.
    pub fn live_indices(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.n_live());
        for j in 0..self.n_rows() {
            out.extend(self.live(j));
        }
        out
    }

    /// Checks the arena's own invariants; used by tests and by the checkpoint loader.
    pub fn check(&self, n_in: usize) -> Result<(), String> {
        let n_rows = self.n_rows();
        if self.row_start.len() != n_rows + 1 || self.row_start[0] != 0 {
            return Err("row_start must have n_out + 1 entries starting at 0".into());
        }
        let total = self.pre.len();
        for v in [
            &self.weight,
            &self.short_trail,
            &self.long_trail,
            &self.consolidation,
            &self.anchor,
        ] {
            if v.len() != total {
                return Err("synapse arrays differ in length".into());
            }
        }
        if self.row_start[n_rows] != total {
            return Err("row_start does not end at the number of slots".into());
        }
        for j in 0..n_rows {
            if self.row_start[j + 1] < self.row_start[j] {
                return Err(format!("row_start decreases at row {j}"));
            }
            if self.row_len[j] as usize > self.capacity(j) {
                return Err(format!("row {j} has more live synapses than slots"));
            }
            let row = &self.pre[self.live(j)];
            if row.iter().any(|&i| i as usize >= n_in) {
                return Err(format!("row {j} reads an input index >= n_in = {n_in}"));
            }
            if row.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!(
                    "row {j} is not strictly sorted by input (duplicate synapse?)"
                ));
            }
        }
        Ok(())
    }
}

/// Re-lay one column in place from rows at `old` starts to rows at `new` starts (`len` live
/// slots each, capacities from the start arrays), growing the column first or shrinking it
/// last, so memory never holds two copies of the arena: the peak is one column's realloc.
/// Spare slots are set to `fresh`, as a freshly allocated column would be.
fn relayout_column<T: Copy>(v: &mut Vec<T>, old: &[usize], new: &[usize], len: &[u32], fresh: T) {
    if v.is_empty() {
        return; // an absent optional column stays absent
    }
    let n_rows = len.len();
    let total = new[n_rows];
    if total > v.len() {
        v.resize(total, fresh);
    }
    // Rows moving left go in increasing order and rows moving right in decreasing order; either
    // way a row's destination holds no live slot that has not moved yet.
    for j in 0..n_rows {
        if new[j] < old[j] {
            v.copy_within(old[j]..old[j] + len[j] as usize, new[j]);
        }
    }
    for j in (0..n_rows).rev() {
        if new[j] > old[j] {
            v.copy_within(old[j]..old[j] + len[j] as usize, new[j]);
        }
    }
    for j in 0..n_rows {
        v[new[j] + len[j] as usize..new[j + 1]].fill(fresh);
    }
    if total < v.len() {
        v.truncate(total);
        v.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> SynapseArena {
        let nb = Neighbourhood {
            start: vec![0, 2, 2, 5],
            pre: vec![0, 3, 1, 2, 4],
        };
        let mut k = 0.0;
        SynapseArena::from_neighbourhood(&nb, || {
            k += 1.0;
            k
        })
    }

    #[test]
    fn par_rows_sees_each_row_once() {
        let mut a = tiny();
        let mut bias = vec![0.0; 3];
        let mut count = vec![0; 3];
        a.par_rows(&mut bias, &mut count, |j, row, b, c| {
            for w in row.weight.iter_mut() {
                *w += 100.0 * j as f32;
            }
            *b = j as f32;
            *c = row.live() as u32;
        });
        assert_eq!(a.weight, vec![1.0, 2.0, 203.0, 204.0, 205.0]);
        assert_eq!(bias, vec![0.0, 1.0, 2.0]);
        assert_eq!(count, vec![2, 0, 3]);
        a.check(5).unwrap();
    }

    #[test]
    fn relayout_keeps_rows_and_adds_slots() {
        let mut a = tiny();
        a.relayout(&[4, 2, 6]);
        assert_eq!(a.row_start, vec![0, 4, 6, 12]);
        assert_eq!(&a.pre[a.live(0)], &[0, 3]);
        assert_eq!(&a.pre[a.live(2)], &[1, 2, 4]);
        assert_eq!(&a.weight[a.live(2)], &[3.0, 4.0, 5.0]);
        a.check(5).unwrap();
    }

    #[test]
    fn relayout_in_place_moves_rows_both_ways_and_shrinks() {
        let mut a = tiny();
        a.relayout(&[4, 2, 6]);
        let (mut b, mut c) = (vec![0.0; 3], vec![0; 3]);
        a.par_rows(&mut b, &mut c, |_, row, _, _| {
            for s in row.short_trail.iter_mut() {
                *s = 7.0; // spare slots too: the re-layout must reset them
            }
        });
        // Row 0 shrinks to its 2 live slots (moves nothing), row 1 grows, row 2 moves left.
        a.relayout(&[0, 3, 3]);
        assert_eq!(a.row_start, vec![0, 2, 5, 8]);
        assert_eq!(a.pre.len(), 8);
        assert_eq!(&a.pre[a.live(0)], &[0, 3]);
        assert_eq!(&a.pre[a.live(2)], &[1, 2, 4]);
        assert_eq!(&a.weight[a.live(2)], &[3.0, 4.0, 5.0]);
        assert_eq!(&a.short_trail[2..5], &[0.0, 0.0, 0.0]);
        // ... and back to more room: rows move right.
        a.relayout(&[5, 1, 4]);
        assert_eq!(a.row_start, vec![0, 5, 6, 10]);
        assert_eq!(&a.pre[a.live(0)], &[0, 3]);
        assert_eq!(&a.weight[a.live(0)], &[1.0, 2.0]);
        assert_eq!(&a.pre[a.live(2)], &[1, 2, 4]);
        assert_eq!(&a.weight[a.live(2)], &[3.0, 4.0, 5.0]);
        assert_eq!(a.weight[9], 0.0);
        a.check(5).unwrap();
    }

    #[test]
    fn insert_keeps_row_sorted() {
        let mut a = tiny();
        a.relayout(&[4, 2, 6]);
        let (mut b, mut c) = (vec![0.0; 3], vec![0; 3]);
        a.par_rows(&mut b, &mut c, |j, mut row, _, _| {
            if j == 2 {
                row.insert_fresh(3);
                row.insert_fresh(0);
            }
        });
        assert_eq!(&a.pre[a.live(2)], &[0, 1, 2, 3, 4]);
        assert_eq!(&a.weight[a.live(2)], &[0.0, 3.0, 4.0, 0.0, 5.0]);
        a.check(5).unwrap();
    }

    #[test]
    fn check_rejects_bad_index_and_duplicates() {
        let mut a = tiny();
        a.pre[1] = 9;
        assert!(a.check(5).is_err());
        let mut b = tiny();
        b.pre[3] = 1;
        assert!(b.check(5).is_err());
    }
}

//! Reservoir of past samples for local replay (docs/rule.md, local replay): Algorithm R or
//! the class-balanced reservoir (docs/rule-notes.md, "Replay", for the draw order).
use rand::Rng;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reservoir {
    pub capacity: usize,
    pub n_in: usize,
    pub n_out: usize,
    /// Samples offered so far (the reservoir's `n`).
    pub seen: u64,
    pub x: Vec<f32>,
    pub t: Vec<f32>,
    /// 1 where the stored sample's output was on; a sample stored without mask has all ones.
    pub mask: Vec<u8>,
    /// Balanced policy only (empty otherwise): samples offered so far per class.
    pub class_seen: Vec<u64>,
    /// Balanced policy only: stored samples per class. Derived from `t` (not saved), kept so
    /// that an offer needs no pass over the buffer to find the largest classes.
    pub stored: Vec<u64>,
    /// Balanced policy only: the class of each stored sample (derived from `t`, not saved), so
    /// finding a class's k-th slot reads one u32 per slot instead of a target.
    pub slot_class: Vec<u32>,
}

/// The class of a target: its argmax, the lowest index on ties (NaN never wins; targets are
/// checked finite before they get here).
pub fn class_of(t: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in t.iter().enumerate() {
        if v > t[best] {
            best = j;
        }
    }
    best
}

impl Reservoir {
    /// An empty buffer; `balanced` adds the per-class counts of the class-balanced policy.
    pub fn new(capacity: usize, n_in: usize, n_out: usize, balanced: bool) -> Self {
        let per_class = if balanced { vec![0; n_out] } else { Vec::new() };
        Reservoir {
            capacity,
            n_in,
            n_out,
            class_seen: per_class.clone(),
            stored: per_class,
            ..Default::default()
        }
    }

    /// Whether this buffer keeps classes balanced.
    pub fn balanced(&self) -> bool {
        !self.class_seen.is_empty()
    }

    /// Rebuild `stored` and `slot_class` from the stored targets (after loading a checkpoint).
    pub fn recount(&mut self) {
        self.stored = vec![0; self.class_seen.len()];
        self.slot_class.clear();
        if self.balanced() {
            for k in 0..self.len() {
                let c = class_of(self.sample_t(k));
                self.stored[c] += 1;
                self.slot_class.push(c as u32);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.x.len() / self.n_in.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offer a sample: kept with probability capacity / seen (Algorithm R), or by the
    /// class-balanced rule.
    pub fn offer<R: Rng>(&mut self, x: &[f32], t: &[f32], mask: Option<&[bool]>, rng: &mut R) {
        if self.capacity == 0 {
            return;
        }
        if self.balanced() {
            return self.offer_balanced(x, t, mask, rng);
        }
        let slot = if self.len() < self.capacity {
            self.append(x, t, mask);
            None
        } else {
            let r = rng.random_range(0..=self.seen);
            (r < self.capacity as u64).then_some(r as usize)
        };
        if let Some(s) = slot {
            self.write(s, x, t, mask);
        }
        self.seen += 1;
    }

    fn append(&mut self, x: &[f32], t: &[f32], mask: Option<&[bool]>) {
        self.x.extend_from_slice(x);
        self.t.extend_from_slice(t);
        match mask {
            Some(m) => self.mask.extend(m.iter().map(|&b| b as u8)),
            None => self.mask.extend(std::iter::repeat_n(1u8, self.n_out)),
        }
    }

    fn write(&mut self, s: usize, x: &[f32], t: &[f32], mask: Option<&[bool]>) {
        self.x[s * self.n_in..(s + 1) * self.n_in].copy_from_slice(x);
        self.t[s * self.n_out..(s + 1) * self.n_out].copy_from_slice(t);
        let m = &mut self.mask[s * self.n_out..(s + 1) * self.n_out];
        match mask {
            Some(mk) => m.iter_mut().zip(mk).for_each(|(d, &b)| *d = b as u8),
            None => m.fill(1),
        }
    }

    /// Class-balanced reservoir sampling (Chrysakis & Moens 2020). While the buffer has room
    /// every sample is kept. When it is full, a sample of class `c`:
    /// - if `c` is not among the largest classes in the buffer, evicts a uniformly chosen
    ///   stored sample of a uniformly chosen largest class (draws: the class, then the sample);
    /// - else is kept with probability stored(c) / seen(c), replacing a uniformly chosen stored
    ///   sample of its own class (draws: `r < stored(c)` for `r` uniform in `0..seen(c)`, then,
    ///   if kept, the sample).
    ///
    /// "The k-th sample of a class" counts that class's slots in ascending slot order.
    fn offer_balanced<R: Rng>(&mut self, x: &[f32], t: &[f32], mask: Option<&[bool]>, rng: &mut R) {
        let c = class_of(t);
        self.class_seen[c] += 1;
        self.seen += 1;
        if self.len() < self.capacity {
            self.append(x, t, mask);
            self.stored[c] += 1;
            self.slot_class.push(c as u32);
            return;
        }
        let top = *self.stored.iter().max().expect("n_out > 0");
        let victim_class = if self.stored[c] != top {
            let n_top = self.stored.iter().filter(|&&n| n == top).count();
            let k = rng.random_range(0..n_top);
            self.stored
                .iter()
                .enumerate()
                .filter(|&(_, &n)| n == top)
                .nth(k)
                .expect("k < n_top")
                .0
        } else if rng.random_range(0..self.class_seen[c]) < self.stored[c] {
            c
        } else {
            return;
        };
        let r = rng.random_range(0..self.stored[victim_class]) as usize;
        let slot = self
            .slot_class
            .iter()
            .enumerate()
            .filter(|&(_, &k)| k as usize == victim_class)
            .nth(r)
            .expect("r < stored count of the class")
            .0;
        self.write(slot, x, t, mask);
        self.slot_class[slot] = c as u32;
        self.stored[victim_class] -= 1;
        self.stored[c] += 1;
    }

    pub fn sample_x(&self, k: usize) -> &[f32] {
        &self.x[k * self.n_in..(k + 1) * self.n_in]
    }

    pub fn sample_t(&self, k: usize) -> &[f32] {
        &self.t[k * self.n_out..(k + 1) * self.n_out]
    }

    pub fn sample_mask(&self, k: usize) -> &[u8] {
        &self.mask[k * self.n_out..(k + 1) * self.n_out]
    }

    /// Whether stored sample `k` shares an active output with `mask` (None: all outputs).
    pub fn overlaps(&self, k: usize, mask: Option<&[bool]>) -> bool {
        let m = self.sample_mask(k);
        match mask {
            None => m.iter().any(|&b| b != 0),
            Some(cur) => m.iter().zip(cur).any(|(&a, &b)| a != 0 && b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn reservoir_keeps_capacity_and_is_roughly_uniform() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut hits = vec![0u32; 100];
        for _ in 0..2000 {
            let mut r = Reservoir::new(10, 1, 1, false);
            for k in 0..100 {
                r.offer(&[k as f32], &[0.0], None, &mut rng);
            }
            assert_eq!(r.len(), 10);
            for s in 0..10 {
                hits[r.sample_x(s)[0] as usize] += 1;
            }
        }
        // Each of 100 items is kept with probability 0.1: 200 expected, sd ≈ 13.4.
        for (k, &h) in hits.iter().enumerate() {
            assert!((130..=270).contains(&h), "item {k} kept {h} times");
        }
    }

    #[test]
    fn overlap_respects_masks() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut r = Reservoir::new(4, 1, 3, false);
        r.offer(&[0.0], &[0.0; 3], Some(&[true, false, false]), &mut rng);
        r.offer(&[1.0], &[0.0; 3], None, &mut rng);
        assert!(r.overlaps(0, Some(&[true, false, true])));
        assert!(!r.overlaps(0, Some(&[false, true, true])));
        assert!(r.overlaps(1, Some(&[false, true, false])));
    }

    #[test]
    fn balanced_buffer_evens_out_an_imbalanced_stream() {
        // 900 samples of class 0, then 100 each of classes 1 and 2, into 30 slots.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut r = Reservoir::new(30, 1, 3, true);
        for (c, n) in [(0usize, 900), (1, 100), (2, 100)] {
            for k in 0..n {
                let mut t = [0.0f32; 3];
                t[c] = 1.0;
                r.offer(&[k as f32], &t, None, &mut rng);
            }
        }
        assert_eq!(r.len(), 30);
        assert_eq!(r.stored, vec![10, 10, 10]);
        assert_eq!(r.class_seen, vec![900, 100, 100]);
        let mut again = r.clone();
        again.recount();
        assert_eq!(again, r);
    }

    #[test]
    fn class_is_the_first_argmax() {
        assert_eq!(class_of(&[0.0, 1.0, 1.0]), 1);
        assert_eq!(class_of(&[-1.0, -2.0]), 0);
        assert_eq!(class_of(&[0.0, 0.0, 0.0]), 0);
    }
}

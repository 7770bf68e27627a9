//! Reservoir of past samples for local replay (docs/rule.md, local replay).
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
}

impl Reservoir {
    pub fn new(capacity: usize, n_in: usize, n_out: usize) -> Self {
        Reservoir {
            capacity,
            n_in,
            n_out,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.x.len() / self.n_in.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Offer a sample: kept with probability capacity / seen (Algorithm R).
    pub fn offer<R: Rng>(&mut self, x: &[f32], t: &[f32], mask: Option<&[bool]>, rng: &mut R) {
        if self.capacity == 0 {
            return;
        }
        let slot = if self.len() < self.capacity {
            self.x.extend_from_slice(x);
            self.t.extend_from_slice(t);
            match mask {
                Some(m) => self.mask.extend(m.iter().map(|&b| b as u8)),
                None => self.mask.extend(std::iter::repeat_n(1u8, self.n_out)),
            }
            None
        } else {
            let r = rng.random_range(0..=self.seen);
            (r < self.capacity as u64).then_some(r as usize)
        };
        if let Some(s) = slot {
            self.x[s * self.n_in..(s + 1) * self.n_in].copy_from_slice(x);
            self.t[s * self.n_out..(s + 1) * self.n_out].copy_from_slice(t);
            let m = &mut self.mask[s * self.n_out..(s + 1) * self.n_out];
            match mask {
                Some(mk) => m.iter_mut().zip(mk).for_each(|(d, &b)| *d = b as u8),
                None => m.fill(1),
            }
        }
        self.seen += 1;
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
            let mut r = Reservoir::new(10, 1, 1);
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
        let mut r = Reservoir::new(4, 1, 3);
        r.offer(&[0.0], &[0.0; 3], Some(&[true, false, false]), &mut rng);
        r.offer(&[1.0], &[0.0; 3], None, &mut rng);
        assert!(r.overlaps(0, Some(&[true, false, true])));
        assert!(!r.overlaps(0, Some(&[false, true, true])));
        assert!(r.overlaps(1, Some(&[false, true, false])));
    }
}

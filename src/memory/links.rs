//! Co-access links: a symmetric, sparse table of association weights in [0, 1] between items
//! used together. Ordered maps keep every walk (and so every float sum) in one order.
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    adj: BTreeMap<u64, BTreeMap<u64, f32>>,
}

impl Links {
    /// Move the link `a`–`b` a fraction `rate` of the way to 1.
    pub fn strengthen(&mut self, a: u64, b: u64, rate: f32) {
        if a == b {
            return;
        }
        let w = self.get(a, b);
        let w = w + rate * (1.0 - w);
        self.set(a, b, w);
    }

    pub fn set(&mut self, a: u64, b: u64, w: f32) {
        self.adj.entry(a).or_default().insert(b, w);
        self.adj.entry(b).or_default().insert(a, w);
    }

    pub fn get(&self, a: u64, b: u64) -> f32 {
        self.adj
            .get(&a)
            .and_then(|m| m.get(&b))
            .copied()
            .unwrap_or(0.0)
    }

    pub fn neighbours(&self, a: u64) -> impl Iterator<Item = (u64, f32)> + '_ {
        self.adj
            .get(&a)
            .into_iter()
            .flat_map(|m| m.iter().map(|(&b, &w)| (b, w)))
    }

    /// Drop `a` and every link to it.
    pub fn remove(&mut self, a: u64) {
        if let Some(m) = self.adj.remove(&a) {
            for b in m.keys() {
                if let Some(mb) = self.adj.get_mut(b) {
                    mb.remove(&a);
                    if mb.is_empty() {
                        self.adj.remove(b);
                    }
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.adj.is_empty()
    }

    /// Each link once, as `(a, b, w)` with `a < b`, in order.
    pub fn triples(&self) -> Vec<(u64, u64, f32)> {
        let mut out = Vec::new();
        for (&a, m) in &self.adj {
            for (&b, &w) in m.range(a + 1..) {
                out.push((a, b, w));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_saturating_and_removable() {
        let mut l = Links::default();
        l.strengthen(1, 2, 0.5);
        l.strengthen(2, 1, 0.5);
        assert_eq!(l.get(1, 2), 0.75);
        assert_eq!(l.get(2, 1), 0.75);
        l.strengthen(1, 3, 0.5);
        assert_eq!(l.triples(), vec![(1, 2, 0.75), (1, 3, 0.5)]);
        l.remove(1);
        assert!(l.is_empty());
        assert_eq!(l.get(2, 1), 0.0);
    }
}

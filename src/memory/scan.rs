//! The top-k scan: one fused pass of dot product, strength bonus and partial top-k over a
//! contiguous matrix of normalised codes, split into chunks on the pool and merged in a fixed
//! total order (score descending, then id ascending), so the answer never depends on the thread
//! count or on where an item sits in storage.
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Rows per parallel chunk: large enough that a chunk's heap work is noise next to its dots.
pub const CHUNK_ROWS: usize = 2048;

/// A scored item; `Ord` says which is better (higher score, then lower id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cand {
    pub score: f32,
    pub id: u64,
}

impl Eq for Cand {}

impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.id.cmp(&self.id))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Dot product with eight independent accumulators, so the compiler vectorises it. The sum
/// order is fixed by the length alone, so every caller gets the same bits.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[f32; 8], &[f32; 8]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// Keeps the best `k` candidates seen; the worst of them sits on top of a min-heap.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<Cand>>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    #[inline]
    pub fn offer(&mut self, c: Cand) {
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(c));
        } else if let Some(w) = self.heap.peek() {
            if c > w.0 {
                self.heap.pop();
                self.heap.push(std::cmp::Reverse(c));
            }
        }
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<Cand> {
        let mut v: Vec<Cand> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }
}

/// The best `k` rows of `codes` (`n` rows of `width`) for the normalised `query`, each scored
/// `dot + bonus(row)`.
pub fn top_k(
    codes: &[f32],
    width: usize,
    ids: &[u64],
    query: &[f32],
    k: usize,
    bonus: &(dyn Fn(usize) -> f32 + Sync),
) -> Vec<Cand> {
    top_k_batch(codes, width, ids, query, k, bonus)
        .pop()
        .unwrap_or_default()
}

/// `top_k` for every query in `queries` (rows of `width`) in one pass over the codes: each
/// chunk of rows is read once for all queries while it is in cache, so a batch costs little
/// more memory traffic than one query.
pub fn top_k_batch(
    codes: &[f32],
    width: usize,
    ids: &[u64],
    queries: &[f32],
    k: usize,
    bonus: &(dyn Fn(usize) -> f32 + Sync),
) -> Vec<Vec<Cand>> {
    let nq = queries.len() / width;
    let n = ids.len();
    if k == 0 || n == 0 {
        return vec![Vec::new(); nq];
    }
    let scan = |start: usize, rows: &[f32]| {
        let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        for (r, row) in rows.chunks_exact(width).enumerate() {
            let i = start + r;
            let b = bonus(i);
            for (top, q) in tops.iter_mut().zip(queries.chunks_exact(width)) {
                top.offer(Cand {
                    score: dot(row, q) + b,
                    id: ids[i],
                });
            }
        }
        tops
    };
    let parts: Vec<Vec<TopK>> = if n <= CHUNK_ROWS {
        vec![scan(0, codes)]
    } else {
        codes
            .par_chunks(CHUNK_ROWS * width)
            .enumerate()
            .map(|(c, rows)| scan(c * CHUNK_ROWS, rows))
            .collect()
    };
    let mut all: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
    for part in parts {
        for (dst, p) in all.iter_mut().zip(part) {
            for std::cmp::Reverse(c) in p.heap {
                dst.offer(c);
            }
        }
    }
    all.into_iter().map(TopK::into_sorted).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum();
        assert!((dot(&a, &b) as f64 - naive).abs() < 1e-5);
    }

    #[test]
    fn top_k_equals_full_sort_with_id_tie_break_for_any_split() {
        let (n, w) = (3 * CHUNK_ROWS + 17, 4);
        let mut codes = vec![0.0f32; n * w];
        for i in 0..n {
            // Many exact ties: only 50 distinct rows.
            codes[i * w + (i % 4)] = ((i % 50) as f32) / 50.0;
        }
        let ids: Vec<u64> = (0..n as u64).map(|i| (i * 7919) % 100_003).collect();
        let q = [0.5f32, 0.5, 0.5, 0.5];
        let got = top_k(&codes, w, &ids, &q, 25, &|_| 0.0);
        let mut all: Vec<Cand> = (0..n)
            .map(|i| Cand {
                score: dot(&codes[i * w..(i + 1) * w], &q),
                id: ids[i],
            })
            .collect();
        all.sort_by(|a, b| b.cmp(a));
        assert_eq!(got, all[..25].to_vec());
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(
            one.install(|| top_k(&codes, w, &ids, &q, 25, &|_| 0.0)),
            got
        );
    }

    #[test]
    fn batch_equals_one_query_at_a_time() {
        let (n, w) = (2 * CHUNK_ROWS + 5, 3);
        let codes: Vec<f32> = (0..n * w).map(|i| ((i * 31 % 97) as f32).sin()).collect();
        let ids: Vec<u64> = (0..n as u64).collect();
        let qs = [0.3f32, -0.2, 0.9, 1.0, 0.0, 0.0, -0.5, 0.5, 0.1];
        let both = top_k_batch(&codes, w, &ids, &qs, 7, &|i| (i % 3) as f32 * 0.01);
        for (j, q) in qs.chunks(w).enumerate() {
            assert_eq!(
                both[j],
                top_k(&codes, w, &ids, q, 7, &|i| (i % 3) as f32 * 0.01)
            );
        }
    }

    #[test]
    fn k_larger_than_n_returns_all() {
        let got = top_k(&[1.0, 0.0, 0.0, 1.0], 2, &[5, 3], &[1.0, 0.0], 10, &|_| 0.0);
        assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![5, 3]);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release --lib scan_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn scan_timing() {
        let (n, w) = (100_000, 128);
        let codes: Vec<f32> = (0..n * w).map(|i| ((i * 31 % 97) as f32).sin()).collect();
        let ids: Vec<u64> = (0..n as u64).collect();
        let q: Vec<f32> = (0..64 * w).map(|i| ((i * 7 % 13) as f32).cos()).collect();
        let t = std::time::Instant::now();
        let mut s = 0.0;
        for r in codes.chunks_exact(w) {
            s += dot(r, &q[..w]);
        }
        eprintln!("plain dots: {:?} ({s})", t.elapsed());
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let t = std::time::Instant::now();
        one.install(|| top_k(&codes, w, &ids, &q[..w], 10, &|_| 0.0));
        eprintln!("top_k 1 query: {:?}", t.elapsed());
        let t = std::time::Instant::now();
        one.install(|| top_k_batch(&codes, w, &ids, &q, 10, &|_| 0.0));
        eprintln!("top_k 64 queries: {:?}", t.elapsed());
    }
}

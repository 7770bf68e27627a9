use super::*;
use crate::checkpoint;

fn cfg(dim: usize) -> MemoryConfig {
    MemoryConfig {
        dim,
        code_dim: 32,
        seed: 7,
        ..MemoryConfig::default()
    }
}

fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.random::<f32>() - 0.5).collect()
}

fn net_bytes(m: &RecallMemory) -> Vec<u8> {
    checkpoint::to_bytes(&m.net)
}

#[test]
fn each_item_recalls_itself_first() {
    let mut m = RecallMemory::new(cfg(16)).unwrap();
    let x = data(20, 16, 1);
    let ids = m.observe(&x, 20, None, 0.0).unwrap();
    assert_eq!(ids, (0..20).collect::<Vec<u64>>());
    let hits = m.recall(&x, 20, 3, 0.0).unwrap();
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(h[0].id, i as u64);
        assert!(h[0].score >= h[1].score && h[1].score >= h[2].score);
    }
}

#[test]
fn bad_input_changes_nothing() {
    let mut m = RecallMemory::new(cfg(8)).unwrap();
    m.observe(&data(3, 8, 1), 3, Some(&[5, 6, 7]), 0.0).unwrap();
    let before = save::to_bytes(&m);
    let mut nan = data(2, 8, 2);
    nan[9] = f32::NAN;
    assert!(m.observe(&nan, 2, None, 0.0).is_err());
    assert!(m.observe(&data(2, 8, 2), 2, Some(&[1, 5]), 0.0).is_err());
    assert!(m.observe(&data(2, 8, 2), 2, Some(&[1, 1]), 0.0).is_err());
    assert!(m.observe(&data(2, 7, 2), 2, None, 0.0).is_err());
    assert!(m.observe(&[0.0; 8], 1, None, 0.0).is_err());
    assert!(m.observe(&data(1, 8, 2), 1, None, f64::NAN).is_err());
    assert!(m.recall(&data(1, 8, 2), 1, 0, 0.0).is_err());
    assert!(m.recall(&data(1, 9, 2), 1, 1, 0.0).is_err());
    assert!(m.reinforce(&[5, 99], 1.0).is_err());
    assert!(m.forget(&[6, 99]).is_err());
    assert!(m.decay(1.0, 2.0).is_err());
    assert_eq!(save::to_bytes(&m), before);
}

#[test]
fn forget_equals_never_having_seen() {
    let x = data(6, 12, 3);
    let dim = 12;
    let mut a = RecallMemory::new(cfg(dim)).unwrap();
    a.observe(&x, 6, None, 0.0).unwrap();
    for t in 1..=6 {
        a.reinforce(&[1, 2], t as f64).unwrap();
    }
    a.reinforce(&[0, 4], 7.0).unwrap();
    a.forget(&[2, 4]).unwrap();

    let keep = [0usize, 1, 3, 5];
    let xs: Vec<f32> = keep
        .iter()
        .flat_map(|&i| x[i * dim..(i + 1) * dim].to_vec())
        .collect();
    let ids: Vec<u64> = keep.iter().map(|&i| i as u64).collect();
    let mut b = RecallMemory::new(cfg(dim)).unwrap();
    b.observe(&xs, 4, Some(&ids), 0.0).unwrap();
    // Item 1 became semantic at its fifth use: the same rehearsal, without item 2.
    for t in 1..=6 {
        b.reinforce(&[1], t as f64).unwrap();
    }
    b.reinforce(&[0], 7.0).unwrap();
    assert_eq!(net_bytes(&a), net_bytes(&b));
    assert_eq!(a.links.triples(), b.links.triples());
    assert!(a.links.is_empty());
    let q = data(5, dim, 9);
    assert_eq!(
        a.recall(&q, 5, 4, 8.0).unwrap(),
        b.recall(&q, 5, 4, 8.0).unwrap()
    );
    assert!(!a.contains(2) && a.vector(2).is_err());
}

#[test]
fn co_access_lifts_the_partner() {
    let dim = 16;
    let mut m = RecallMemory::new(MemoryConfig {
        strength_weight: 0.0,
        ..cfg(dim)
    })
    .unwrap();
    let x = data(30, dim, 4);
    m.observe(&x, 30, None, 0.0).unwrap();
    let q = &x[..dim];
    let rank_of = |m: &RecallMemory, id: u64| {
        m.recall(q, 1, 30, 0.0).unwrap()[0]
            .iter()
            .position(|c| c.id == id)
            .unwrap()
    };
    // An item that ranks mid-table for item 0's query.
    let hits = m.recall(q, 1, 30, 0.0).unwrap().remove(0);
    let (last, seed) = (hits[5], hits[0]);
    assert_eq!(seed.id, 0);
    let before = rank_of(&m, last.id);
    for _ in 0..3 {
        m.reinforce(&[0, last.id], 1.0).unwrap();
    }
    let after = rank_of(&m, last.id);
    assert_eq!(before, 5);
    assert!(after < before, "rank {after} after co-access");
    // The bonus is link_weight x link x the seed's similarity.
    let now = m.recall(q, 1, 30, 0.0).unwrap().remove(0);
    let lifted = now.iter().find(|c| c.id == last.id).unwrap().score;
    let want = last.score + 0.5 * 0.875 * seed.score;
    assert!((lifted - want).abs() < 1e-5, "{lifted} vs {want}");
    let last = last.id;
    assert!((m.link(0, last).unwrap() - 0.875).abs() < 1e-6);
}

#[test]
fn tiers_and_strengths_follow_uses_and_time() {
    let mut m = RecallMemory::new(cfg(8)).unwrap();
    m.observe(&data(3, 8, 5), 3, None, 100.0).unwrap();
    for t in 0..5 {
        m.reinforce(&[1], 100.0 + t as f64).unwrap();
    }
    m.reinforce(&[2], 100.0).unwrap();
    m.reinforce(&[2], 100.0).unwrap();
    let c = TierConfig::default();
    let info = m.info(&[0, 1, 2], 100.0 + 7200.0).unwrap();
    assert_eq!(info[0].tier, Tier::Working);
    assert_eq!(info[1].tier, Tier::Semantic);
    assert_eq!(info[2].tier, Tier::Episodic);
    assert!((info[0].strength - (-2.0f64).exp()).abs() < 1e-12);
    assert!((info[2].strength - (-7200.0f64 / c.episodic_tau).exp()).abs() < 1e-12);
    let dt = 7200.0 - 4.0;
    assert!((info[1].strength - (1.0 + dt / c.semantic_tau).powf(-0.5)).abs() < 1e-12);
    assert_eq!(m.log_len(), 3 * 5 + 1);
    // Working item 0 is at e^-2 ≈ 0.135: a 0.2 threshold forgets it and only it.
    assert_eq!(m.decay(100.0 + 7200.0, 0.2).unwrap(), vec![0]);
    assert_eq!(m.len(), 2);
}

#[test]
fn save_load_is_exact_and_deterministic() {
    let dim = 10;
    let mut m = RecallMemory::new(cfg(dim)).unwrap();
    m.observe(&data(8, dim, 6), 8, None, 0.0).unwrap();
    for t in 0..5 {
        m.reinforce(&[3, 4], t as f64).unwrap();
    }
    m.forget(&[1]).unwrap();
    let bytes = save::to_bytes(&m);
    assert_eq!(save::to_bytes(&m), bytes);
    let mut r = save::from_bytes(&bytes).unwrap();
    assert_eq!(save::to_bytes(&r), bytes);
    let q = data(3, dim, 8);
    assert_eq!(
        m.recall(&q, 3, 5, 9.0).unwrap(),
        r.recall(&q, 3, 5, 9.0).unwrap()
    );
    // Resume: the same next steps give the same bytes.
    let more = data(2, dim, 10);
    m.observe(&more, 2, None, 10.0).unwrap();
    r.observe(&more, 2, None, 10.0).unwrap();
    m.forget(&[3]).unwrap();
    r.forget(&[3]).unwrap();
    assert_eq!(save::to_bytes(&m), save::to_bytes(&r));
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(save::from_bytes(&bytes[..cut]).is_err());
    }
}

#[test]
fn score_matches_recall_scores_without_bonuses() {
    let dim = 8;
    let mut m = RecallMemory::new(MemoryConfig {
        strength_weight: 0.0,
        ..cfg(dim)
    })
    .unwrap();
    let x = data(5, dim, 11);
    m.observe(&x, 5, None, 0.0).unwrap();
    let q = data(1, dim, 12);
    let s = m.score(&q, &x, 5).unwrap();
    let hits = &m.recall(&q, 1, 5, 0.0).unwrap()[0];
    for h in hits {
        assert_eq!(h.score, s[h.id as usize]);
    }
}

#[test]
fn projection_keeps_cosines_when_code_is_wider() {
    let (dim, cd) = (6, 16);
    let p = projection(dim, cd, 3);
    let x = data(2, dim, 13);
    let px: Vec<f32> = (0..2)
        .flat_map(|r| (0..cd).map(move |j| (j, r)))
        .map(|(j, r)| dot(&p[j * dim..(j + 1) * dim], &x[r * dim..(r + 1) * dim]))
        .collect();
    let cos = |a: &[f32], b: &[f32]| dot(a, b) / (dot(a, a) * dot(b, b)).sqrt();
    let raw = cos(&x[..dim], &x[dim..]);
    assert!((cos(&px[..cd], &px[cd..]) - raw).abs() < 1e-5);
}

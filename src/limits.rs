//! Limits checked before any work, so that no accepted request can abort the process (an
//! allocation the OS refuses aborts a Rust program) or hold the engine for an unbounded time.
//!
//! Memory: a network's arrays are bounded from its specs alone, before anything is allocated,
//! and a network whose bound exceeds the machine's physical memory is refused with a
//! `ValueError` naming the bytes. The bound counts everything a layer can come to hold: its
//! synapse slots at build time, the re-layout that structural growth makes (to `max_fan_in`
//! slots per row), the growth neighbourhood, per-unit state, the feedback matrix and the replay
//! buffer. It is an upper bound (a square around each disc, tags ignored), so a network close to
//! the machine's size may be refused although it would just have fitted.
use crate::config::{LayerSpec, LearnConfig};
use crate::error::{value_err, Result};

/// Most replays per new sample that `learn(replay=...)` accepts. Replay is a handful of steps
/// per sample in every use docs/rule.md (replay) describes; the bound keeps one sample's work (and so the
/// time until a `KeyboardInterrupt` is seen) bounded.
pub const MAX_REPLAY: usize = 1000;

/// Most learning passes per observed batch a `RecallMemory` accepts (`repeats`): an observe is
/// one step that cannot be interrupted half-way, so its work must stay bounded.
pub const MAX_MEMORY_REPEATS: u32 = 1000;

/// Most best matches whose links spread a bonus in a recall (`spread_seeds`): each query keeps
/// that many candidates, so it must not size a buffer without bound.
pub const MAX_SPREAD_SEEDS: usize = 1024;

/// Largest radius (and growth radius) a spec may give: 2 already reaches every unit of every
/// geometry (no two positions in [0, 1)² are more than √2 apart).
pub const MAX_RADIUS: f64 = 2.0;

/// Bytes per synapse slot: `pre` (u32) and five f32 columns.
const SLOT_BYTES: u128 = 24;

/// Bytes per synapse slot under `config`: the cascade's levels add one f32 each.
fn slot_bytes(config: &LearnConfig) -> u128 {
    let levels = if config.cascade() {
        config.cascade_levels
    } else {
        0
    };
    SLOT_BYTES + 4 * levels as u128
}
/// Bytes per unit of per-row / per-input state (bias, traces, scratch, positions, cell index).
const UNIT_BYTES: u128 = 64;

/// Upper bound on the inputs within `radius` of one output of `spec`.
pub fn reach_bound(spec: &LayerSpec, radius: f64) -> u128 {
    let n_in = spec.n_in as u128;
    let r = radius.clamp(0.0, MAX_RADIUS);
    let along = |units: usize| -> u128 {
        // Units sit 1/units apart: a window of width 2r holds at most 2r·units + 1 of them.
        let v = (2.0 * r * units as f64).floor() + 1.0;
        (v as u128).min(units as u128)
    };
    let bound = if spec.dims == 1 {
        along(spec.n_in)
    } else {
        let (h, w) = match spec.in_shape {
            Some(s) => s,
            None => {
                let s = (spec.n_in as f64).sqrt().round() as usize;
                (s, s)
            }
        };
        along(w).saturating_mul(along(h))
    };
    bound.min(n_in)
}

/// Upper bound on the bytes one layer can come to hold; `feedback_to`: the network's outputs
/// for a hidden layer (its feedback matrix), 0 for the output layer.
pub fn layer_bytes(spec: &LayerSpec, feedback_to: usize, slot_bytes: u128) -> u128 {
    let n_out = spec.n_out as u128;
    let fan = reach_bound(spec, spec.radius).min(spec.fan_in.map_or(u128::MAX, |k| k as u128));
    // Growth re-lays each row out to max_fan_in slots (default twice its initial fan-in).
    let relaid = spec.max_fan_in.map_or(2 * fan, |m| m as u128);
    let growth = reach_bound(spec, spec.growth_radius());
    let slots = n_out.saturating_mul(fan.saturating_add(relaid));
    slots
        .saturating_mul(slot_bytes)
        // the growth neighbourhood (u32 per candidate), built once, copied once while built
        .saturating_add(n_out.saturating_mul(growth).saturating_mul(8))
        .saturating_add((spec.n_in as u128 + n_out).saturating_mul(UNIT_BYTES))
        .saturating_add(n_out.saturating_mul(feedback_to as u128).saturating_mul(4))
}

/// `layer_bytes` of layer `k` of `specs`.
fn bytes_of(specs: &[LayerSpec], k: usize, slot_bytes: u128) -> u128 {
    let n_final = specs.last().map_or(0, |s| s.n_out);
    let feedback_to = if k + 1 < specs.len() { n_final } else { 0 };
    layer_bytes(&specs[k], feedback_to, slot_bytes)
}

/// Upper bound on the bytes of a whole network built from `specs` and `config`.
pub fn network_bytes(specs: &[LayerSpec], config: &LearnConfig) -> u128 {
    let n_final = specs.last().map_or(0, |s| s.n_out);
    let n_in = specs.first().map_or(0, |s| s.n_in);
    let layers = (0..specs.len())
        .map(|k| bytes_of(specs, k, slot_bytes(config)))
        .fold(0u128, u128::saturating_add);
    // replay buffer: x and t as f32, mask as u8; the balanced policy adds a class per slot
    // (u32) and two u64 counts per class
    let (per_slot, per_class) = if config.balanced() { (4, 16) } else { (0, 0) };
    let per_sample = (n_in as u128) * 4 + (n_final as u128) * 5 + per_slot;
    layers
        .saturating_add((config.replay_capacity as u128).saturating_mul(per_sample))
        .saturating_add((n_final as u128) * per_class)
}

/// Physical memory of this machine in bytes (`None` where it cannot be read).
pub fn physical_memory() -> Option<u128> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads system constants.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return Some(pages as u128 * size as u128);
        }
    }
    None
}

/// The most bytes a network may need: the machine's physical memory, or `LPN_MAX_BYTES` when
/// set (lower it to refuse large networks early, e.g. on a shared machine).
pub fn max_bytes() -> u128 {
    let env = std::env::var("LPN_MAX_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u128>().ok());
    // Without either, still refuse what no 64-bit address space can hold.
    env.or_else(physical_memory).unwrap_or(1u128 << 47)
}

fn human(b: u128) -> String {
    let gib = b as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{b} bytes ({gib:.1} GiB)")
    } else {
        format!("{b} bytes")
    }
}

/// `ValueError` when a network of these specs could need more memory than the machine has.
pub fn check_fits(specs: &[LayerSpec], config: &LearnConfig) -> Result<()> {
    let need = network_bytes(specs, config);
    let have = max_bytes();
    if need > have {
        let worst = specs
            .iter()
            .enumerate()
            .max_by_key(|(k, _)| bytes_of(specs, *k, slot_bytes(config)))
            .map(|(k, s)| {
                format!(
                    " (layer {k}, {} -> {} with radius {}, needs up to {})",
                    s.n_in,
                    s.n_out,
                    s.radius,
                    human(bytes_of(specs, k, slot_bytes(config)))
                )
            })
            .unwrap_or_default();
        return value_err(format!(
            "this network needs up to {} of memory{worst}, more than the {} available \
             (physical memory, or LPN_MAX_BYTES); use fewer units, a smaller radius or fan_in, \
             or a smaller replay_capacity",
            human(need),
            human(have)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Network;
    use crate::topology::{build_neighbourhood, Geometry};

    #[test]
    fn reach_bound_is_an_upper_bound() {
        for (n_in, n_out, dims, radius, periodic) in [
            (50, 30, 1, 0.07, true),
            (50, 30, 1, 0.07, false),
            (64, 36, 2, 0.2, true),
            (64, 36, 2, 0.2, false),
            (100, 10, 1, 0.0, true),
            (100, 100, 2, 0.5, false),
            (49, 9, 2, 1.9, true),
        ] {
            let mut s = LayerSpec::new(n_in, n_out);
            s.dims = dims;
            s.radius = radius;
            s.periodic = periodic;
            let geo = Geometry::new(&s).unwrap();
            let nb = build_neighbourhood(&s, &geo, radius, None);
            let bound = reach_bound(&s, radius);
            for j in 0..n_out {
                assert!(nb.row(j).len() as u128 <= bound, "{s:?} row {j}");
            }
        }
    }

    #[test]
    fn huge_networks_are_refused_before_allocating() {
        let mut s = LayerSpec::new(100_000, 100_000);
        s.radius = 0.5;
        let e = Network::new(vec![s], LearnConfig::default(), 0).unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
        let e = Network::new(
            vec![LayerSpec::new(u32::MAX as usize, 1)],
            LearnConfig::default(),
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
        let cfg = LearnConfig {
            replay_capacity: usize::MAX,
            ..LearnConfig::default()
        };
        assert!(Network::new(vec![LayerSpec::new(4, 4)], cfg, 0).is_err());
    }
}

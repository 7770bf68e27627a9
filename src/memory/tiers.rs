//! Tiers and forgetting curves: how strong an item is `dt` seconds after its last use.
//!
//! Working and episodic items fade exponentially (fast, then gone); an item used often enough
//! becomes semantic and fades by a power law (slow and heavy-tailed). The tiers mirror the
//! synapse's own time scales: the short trail (working), the long trail (episodic) and
//! consolidation (semantic; promotion rehearses the item on the layer and consolidates it).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Tier {
    Working = 0,
    Episodic = 1,
    Semantic = 2,
}

impl Tier {
    pub fn from_u8(v: u8) -> Option<Tier> {
        match v {
            0 => Some(Tier::Working),
            1 => Some(Tier::Episodic),
            2 => Some(Tier::Semantic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tier::Working => "working",
            Tier::Episodic => "episodic",
            Tier::Semantic => "semantic",
        }
    }
}

/// Thresholds and rates of the three tiers (seconds and use counts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierConfig {
    /// Uses (reinforcements) at which a working item becomes episodic.
    pub episodic_uses: u32,
    /// Uses at which an item becomes semantic.
    pub semantic_uses: u32,
    /// Time constant of the working tier's exponential decay.
    pub working_tau: f64,
    /// Time constant of the episodic tier's exponential decay.
    pub episodic_tau: f64,
    /// Scale and exponent of the semantic tier's power law `(1 + dt / semantic_tau)^-alpha`.
    pub semantic_tau: f64,
    pub semantic_alpha: f64,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            episodic_uses: 2,
            semantic_uses: 5,
            working_tau: 3600.0,
            episodic_tau: 86400.0,
            semantic_tau: 86400.0,
            semantic_alpha: 0.5,
        }
    }
}

impl TierConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.episodic_uses == 0 || self.semantic_uses < self.episodic_uses {
            return Err(format!(
                "need 1 <= episodic_uses <= semantic_uses, got episodic_uses={}, semantic_uses={}",
                self.episodic_uses, self.semantic_uses
            ));
        }
        for (name, v) in [
            ("working_tau", self.working_tau),
            ("episodic_tau", self.episodic_tau),
            ("semantic_tau", self.semantic_tau),
            ("semantic_alpha", self.semantic_alpha),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a finite number > 0, got {v}"));
            }
        }
        Ok(())
    }

    pub fn tier_of(&self, uses: u32) -> Tier {
        if uses >= self.semantic_uses {
            Tier::Semantic
        } else if uses >= self.episodic_uses {
            Tier::Episodic
        } else {
            Tier::Working
        }
    }

    /// Strength in (0, 1] of an item of `tier` last used `dt` seconds ago (negative `dt`, a
    /// clock that went back, counts as 0).
    pub fn strength(&self, tier: Tier, dt: f64) -> f64 {
        let dt = dt.max(0.0);
        match tier {
            Tier::Working => (-dt / self.working_tau).exp(),
            Tier::Episodic => (-dt / self.episodic_tau).exp(),
            Tier::Semantic => (1.0 + dt / self.semantic_tau).powf(-self.semantic_alpha),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_follow_their_formulas() {
        let c = TierConfig::default();
        assert_eq!(c.strength(Tier::Working, 0.0), 1.0);
        assert!((c.strength(Tier::Working, 3600.0) - (-1.0f64).exp()).abs() < 1e-12);
        assert!((c.strength(Tier::Episodic, 86400.0) - (-1.0f64).exp()).abs() < 1e-12);
        assert!((c.strength(Tier::Semantic, 3.0 * 86400.0) - 0.5).abs() < 1e-12);
        assert_eq!(c.strength(Tier::Working, -5.0), 1.0);
    }

    #[test]
    fn power_law_outlasts_exponentials() {
        let c = TierConfig::default();
        let t = 30.0 * 86400.0;
        assert!(c.strength(Tier::Semantic, t) > c.strength(Tier::Episodic, t));
        assert!(c.strength(Tier::Episodic, t) > c.strength(Tier::Working, t));
    }

    #[test]
    fn tiers_by_uses() {
        let c = TierConfig::default();
        assert_eq!(c.tier_of(0), Tier::Working);
        assert_eq!(c.tier_of(2), Tier::Episodic);
        assert_eq!(c.tier_of(5), Tier::Semantic);
        assert!(TierConfig {
            semantic_uses: 1,
            ..c.clone()
        }
        .validate()
        .is_err());
    }
}

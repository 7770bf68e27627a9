//! Adaptive budget controller (docs/rule.md, adaptive budget): shrink while the loss improves, grow and expand
//! toward recently active rows while it worsens.
use crate::config::LearnConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Fraction `f` of candidates updated per row.
    pub(crate) fraction: f64,
    /// Running loss average `m`.
    pub(crate) loss_avg: f64,
    pub(crate) has_loss_avg: bool,
    /// Whether the next step uses the expansion quota and the `β·s` bonus.
    pub(crate) expanding: bool,
}

impl Budget {
    pub fn new(cfg: &LearnConfig) -> Self {
        Budget {
            fraction: cfg.budget,
            loss_avg: 0.0,
            has_loss_avg: false,
            expanding: false,
        }
    }

    /// Checkpoint packing: `[fraction, loss_avg]` and `[has_loss_avg, expanding]`.
    pub(crate) fn parts(&self) -> ([f64; 2], [u8; 2]) {
        (
            [self.fraction, self.loss_avg],
            [self.has_loss_avg as u8, self.expanding as u8],
        )
    }

    /// Inverse of `parts`, checked. The fraction is not required to lie in
    /// [budget_min, budget_max]: a config with shrink > 1 or grow < 1 walks it out of that
    /// range, up to inf, and any state the engine reaches must load. The quota is safe for
    /// every such value; NaN is never reached.
    pub(crate) fn from_parts(v: [f64; 2], flags: [u8; 2]) -> Result<Self, String> {
        let flag = |what: &str, b: u8| match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(format!("{what} is {b}, expected 0 or 1")),
        };
        if v[0].is_nan() || v[0] < 0.0 {
            return Err(format!(
                "budget fraction is {}, expected a number >= 0",
                v[0]
            ));
        }
        Ok(Budget {
            fraction: v[0],
            loss_avg: v[1],
            has_loss_avg: flag("has_loss_avg", flags[0])?,
            expanding: flag("expanding", flags[1])?,
        })
    }

    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    pub fn loss_avg(&self) -> f64 {
        self.loss_avg
    }

    pub fn has_loss_avg(&self) -> bool {
        self.has_loss_avg
    }

    pub fn expanding(&self) -> bool {
        self.expanding
    }

    /// Bit-for-bit equality (checkpoint round trips).
    pub fn same(&self, o: &Budget) -> bool {
        self.fraction.to_bits() == o.fraction.to_bits()
            && self.loss_avg.to_bits() == o.loss_avg.to_bits()
            && self.has_loss_avg == o.has_loss_avg
            && self.expanding == o.expanding
    }

    /// Feed the loss of the step just taken.
    pub fn observe(&mut self, loss: f64, cfg: &LearnConfig) {
        if !self.has_loss_avg {
            self.loss_avg = loss;
            self.has_loss_avg = true;
            self.expanding = false;
        } else if loss < self.loss_avg {
            self.fraction = (cfg.shrink * self.fraction).max(cfg.budget_min);
            self.expanding = false;
        } else if loss > self.loss_avg {
            self.fraction = (cfg.grow * self.fraction).min(cfg.budget_max);
            self.expanding = true;
        } else {
            self.expanding = false;
        }
        self.loss_avg = 0.9 * self.loss_avg + 0.1 * loss;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_on_improvement_grows_on_worsening() {
        let cfg = LearnConfig::default();
        let mut b = Budget::new(&cfg);
        b.observe(1.0, &cfg);
        assert_eq!(b.fraction, 0.3);
        assert_eq!(b.loss_avg, 1.0);
        b.observe(0.5, &cfg);
        assert!((b.fraction - 0.3 * 0.98).abs() < 1e-15 && !b.expanding);
        assert!((b.loss_avg - 0.95).abs() < 1e-15);
        b.observe(2.0, &cfg);
        assert!((b.fraction - 0.3 * 0.98 * 1.05).abs() < 1e-15 && b.expanding);
    }

    #[test]
    fn stays_within_bounds() {
        let cfg = LearnConfig::default();
        let mut b = Budget::new(&cfg);
        b.observe(1.0, &cfg);
        let mut loss = 1.0;
        for _ in 0..1000 {
            loss *= 0.9;
            b.observe(loss, &cfg);
        }
        assert_eq!(b.fraction, cfg.budget_min);
        for _ in 0..1000 {
            loss *= 1.5;
            b.observe(loss, &cfg);
        }
        assert_eq!(b.fraction, cfg.budget_max);
    }
}

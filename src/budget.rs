//! Adaptive budget controller (docs/rule.md, adaptive budget): shrink while the loss improves, grow and expand
//! toward recently active rows while it worsens.
use crate::config::LearnConfig;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Fraction `f` of candidates updated per row.
    pub fraction: f64,
    /// Running loss average `m`.
    pub loss_avg: f64,
    pub has_loss_avg: bool,
    /// Whether the next step uses the expansion quota and the `β·s` bonus.
    pub expanding: bool,
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

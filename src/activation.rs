//! Output non-linearities φ and their derivatives written in terms of (z, y).
use crate::error::{value_err, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Linear,
    Tanh,
    Relu,
    Sigmoid,
}

impl Activation {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(Self::Linear),
            "tanh" => Ok(Self::Tanh),
            "relu" => Ok(Self::Relu),
            "sigmoid" => Ok(Self::Sigmoid),
            other => value_err(format!(
                "unknown activation {other:?}: expected one of \"linear\", \"tanh\", \"relu\", \"sigmoid\""
            )),
        }
    }

    /// φ(z). tanh and sigmoid are evaluated in f64 and rounded once to f32, so the result is
    /// the correctly rounded value on every platform and matches the NumPy reference bit for
    /// bit; f32 libm kernels differ in the last ulp, and near saturation that ulp decides
    /// whether φ'(z) is exactly 0 (a row without candidates) or not (a full trail deposit).
    #[inline]
    pub fn apply(self, z: f32) -> f32 {
        match self {
            Self::Linear => z,
            Self::Tanh => (z as f64).tanh() as f32,
            Self::Relu => z.max(0.0),
            Self::Sigmoid => (1.0 / (1.0 + (-(z as f64)).exp())) as f32,
        }
    }

    /// φ'(z) from z and y = φ(z); using y avoids recomputing the exponentials.
    #[inline]
    pub fn derivative(self, z: f32, y: f32) -> f32 {
        match self {
            Self::Linear => 1.0,
            Self::Tanh => 1.0 - y * y,
            Self::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Sigmoid => y * (1.0 - y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivatives_match_finite_differences() {
        for act in [
            Activation::Linear,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Relu,
        ] {
            for &z in &[-1.3f32, -0.2, 0.4, 2.0] {
                let h = 1e-3f32;
                let num = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                let ana = act.derivative(z, act.apply(z));
                assert!((num - ana).abs() < 1e-3, "{act:?} at {z}: {num} vs {ana}");
            }
        }
    }

    #[test]
    fn unknown_name_is_an_error() {
        assert!(Activation::parse("softmax").is_err());
        assert_eq!(Activation::parse("tanh").unwrap(), Activation::Tanh);
    }
}

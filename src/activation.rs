//! Output non-linearities φ and their derivatives written in terms of (z, y).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Activation {
    Linear,
    Tanh,
    Relu,
    Sigmoid,
}

/// The names a spec may give (serde reads them through this, so the error names the field).
impl TryFrom<String> for Activation {
    type Error = String;
    fn try_from(name: String) -> std::result::Result<Self, String> {
        match name.as_str() {
            "linear" => Ok(Self::Linear),
            "tanh" => Ok(Self::Tanh),
            "relu" => Ok(Self::Relu),
            "sigmoid" => Ok(Self::Sigmoid),
            other => Err(format!(
                "unknown activation {other:?}: expected one of \"linear\", \"tanh\", \"relu\", \"sigmoid\""
            )),
        }
    }
}

impl Activation {
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
        let e = serde_json::from_str::<Activation>("\"softmax\"").unwrap_err();
        assert!(e.to_string().contains("unknown activation"), "{e}");
        let a: Activation = serde_json::from_str("\"tanh\"").unwrap();
        assert_eq!(a, Activation::Tanh);
    }
}

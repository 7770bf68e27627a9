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

    /// `y[k] = φ(z[k])`, the match made once for the whole slice (the linear case is a copy).
    #[inline]
    pub fn apply_all(self, z: &[f32], y: &mut [f32]) {
        let y = &mut y[..z.len()];
        match self {
            Self::Linear => y.copy_from_slice(z),
            Self::Tanh => y
                .iter_mut()
                .zip(z)
                .for_each(|(y, &z)| *y = Self::Tanh.apply(z)),
            Self::Relu => y
                .iter_mut()
                .zip(z)
                .for_each(|(y, &z)| *y = Self::Relu.apply(z)),
            Self::Sigmoid => y
                .iter_mut()
                .zip(z)
                .for_each(|(y, &z)| *y = Self::Sigmoid.apply(z)),
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
    fn apply_all_is_apply_per_element() {
        let z: Vec<f32> = (0..67)
            .map(|k| (k as f32 - 33.0) * 0.37)
            .chain([0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40])
            .collect();
        for act in [
            Activation::Linear,
            Activation::Tanh,
            Activation::Relu,
            Activation::Sigmoid,
        ] {
            let mut y = vec![7.0f32; z.len() + 2];
            act.apply_all(&z, &mut y);
            for (k, &v) in z.iter().enumerate() {
                assert_eq!(y[k].to_bits(), act.apply(v).to_bits(), "{act:?} z {v}");
            }
            assert_eq!(
                &y[z.len()..],
                &[7.0, 7.0],
                "{act:?}: only z.len() outputs written"
            );
        }
    }

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

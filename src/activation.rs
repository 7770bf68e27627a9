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

    /// `y[k] = φ(z[k])` for `k < z.len()`, the match made once for the whole slice (the
    /// linear case is a copy), so each loop is compiled, and vectorised, for one activation.
    #[inline]
    pub fn apply_all(self, z: &[f32], y: &mut [f32]) {
        #[inline(always)]
        fn each(z: &[f32], y: &mut [f32], phi: impl Fn(f32) -> f32) {
            for (y, &z) in y.iter_mut().zip(z) {
                *y = phi(z);
            }
        }
        let y = &mut y[..z.len()];
        match self {
            Self::Linear => y.copy_from_slice(z),
            Self::Tanh => each(z, y, |z| Self::Tanh.apply(z)),
            Self::Relu => each(z, y, |z| Self::Relu.apply(z)),
            Self::Sigmoid => each(z, y, |z| Self::Sigmoid.apply(z)),
        }
    }

    /// `d[k] = φ'(z[k], y[k])` for `k < d.len()`, the match made once for the whole slice.
    #[inline]
    pub fn derivative_all(self, z: &[f32], y: &[f32], d: &mut [f32]) {
        #[inline(always)]
        fn each(z: &[f32], y: &[f32], d: &mut [f32], dphi: impl Fn(f32, f32) -> f32) {
            let n = d.len();
            let (z, y) = (&z[..n], &y[..n]);
            for k in 0..n {
                d[k] = dphi(z[k], y[k]);
            }
        }
        match self {
            Self::Linear => d.fill(1.0),
            Self::Tanh => each(z, y, d, |z, y| Self::Tanh.derivative(z, y)),
            Self::Relu => each(z, y, d, |z, y| Self::Relu.derivative(z, y)),
            Self::Sigmoid => each(z, y, d, |z, y| Self::Sigmoid.derivative(z, y)),
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
    fn slice_forms_are_the_per_element_functions() {
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
            let mut d = vec![7.0f32; z.len()];
            act.derivative_all(&z, &y, &mut d);
            for k in 0..z.len() {
                let want = act.derivative(z[k], y[k]);
                assert_eq!(d[k].to_bits(), want.to_bits(), "{act:?} z {}", z[k]);
            }
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

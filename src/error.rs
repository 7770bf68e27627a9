//! One error type for the whole engine; the binding maps it to a Python `ValueError`.
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum LpnError {
    /// A value has the wrong shape, size, range or content (Python `ValueError`).
    Value(String),
}

impl LpnError {
    /// The same error with its place in front, e.g. `layer 2: radius must ...`.
    pub fn at(self, place: impl fmt::Display) -> Self {
        match self {
            LpnError::Value(m) => LpnError::Value(format!("{place}: {m}")),
        }
    }
}

impl fmt::Display for LpnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LpnError::Value(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LpnError {}

pub type Result<T> = std::result::Result<T, LpnError>;

pub(crate) fn value_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(LpnError::Value(msg.into()))
}

//! One error type for the whole engine; the binding maps it to Python exceptions in one place.
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum LpnError {
    /// A value has the wrong shape, size, range or content (Python `ValueError`).
    Value(String),
    /// A value has the wrong kind (Python `TypeError`).
    Type(String),
    /// Reading or writing a file failed (Python `OSError`).
    Io(String),
}

impl fmt::Display for LpnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LpnError::Value(m) | LpnError::Type(m) | LpnError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LpnError {}

pub type Result<T> = std::result::Result<T, LpnError>;

pub(crate) fn value_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(LpnError::Value(msg.into()))
}

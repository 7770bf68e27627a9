//! Local Pheromone Network engine: sparse, local layers that learn online without automatic
//! differentiation. Pure Rust; the Python binding lives in `python.rs` behind the `python`
//! feature.
pub mod activation;
pub mod arena;
pub mod budget;
pub mod cascade;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod header;
pub mod layer;
pub mod limits;
pub mod memory;
pub mod network;
pub mod pool;
pub mod readout;
pub mod replay;
pub mod rule;
mod simd;
pub mod structural;
pub mod topology;

pub use config::{LayerSpec, LearnConfig};
pub use error::{LpnError, Result};
pub use network::Network;

#[cfg(feature = "python")]
mod memory_py;
#[cfg(feature = "python")]
mod python;

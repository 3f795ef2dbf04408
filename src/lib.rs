//! redsim: a deterministic simulator of Redis Cluster.

pub mod engine;
pub mod net;
pub mod node;
pub mod scenario;

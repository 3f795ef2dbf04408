//! redsim: a deterministic simulator of Redis Cluster.

pub mod admin;
pub mod engine;
pub mod net;
pub mod node;

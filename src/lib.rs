//! redsim: a deterministic simulator of Redis Cluster.

pub mod admin;
pub mod bench;
pub mod check;
pub mod client;
pub mod engine;
pub mod fuzz;
pub mod net;
pub mod node;
pub mod report;
pub mod scenario;
pub mod sentinel;
pub mod sim;
pub mod world;

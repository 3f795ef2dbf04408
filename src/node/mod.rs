//! One Redis Cluster node as a sans-IO state machine.

pub mod slots;

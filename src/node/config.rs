//! TEMPORARY stand-in; replaced by the full redis.conf model on merge.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub cluster_node_timeout_ms: u64,
    pub cluster_require_full_coverage: bool,
    pub cluster_allow_replica_migration: bool,
    pub cluster_replica_no_failover: bool,
    pub cluster_announce_ip: Option<String>,
    /// `cluster-replica-validity-factor` (0 = never refuse for data age).
    pub cluster_replica_validity_factor: u32,
    /// `repl-ping-replica-period`, seconds.
    pub repl_ping_replica_period_s: u64,
    /// `cluster-migration-barrier`.
    pub cluster_migration_barrier: u32,
}
impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_node_timeout_ms: 15000,
            cluster_require_full_coverage: true,
            cluster_allow_replica_migration: true,
            cluster_replica_no_failover: false,
            cluster_announce_ip: None,
            cluster_replica_validity_factor: 10,
            repl_ping_replica_period_s: 10,
            cluster_migration_barrier: 1,
        }
    }
}

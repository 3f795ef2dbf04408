//! TEMPORARY stand-in; replaced by the full redis.conf model on merge.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub cluster_node_timeout_ms: u64,
    pub cluster_require_full_coverage: bool,
    pub cluster_allow_replica_migration: bool,
    pub cluster_replica_no_failover: bool,
    pub cluster_announce_ip: Option<String>,
}
impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_node_timeout_ms: 15000,
            cluster_require_full_coverage: true,
            cluster_allow_replica_migration: true,
            cluster_replica_no_failover: false,
            cluster_announce_ip: None,
        }
    }
}

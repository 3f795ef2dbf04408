//! `REPLICAOF host port` and `REPLICAOF NO ONE` (`replicaofCommand` in
//! Redis 7.0.15's `src/replication.c`) on a node with cluster mode off:
//! how an operator, or a Sentinel, turns a master into a replica and a
//! replica into a master. `NO ONE` keeps my history as `replid2`
//! (`shiftReplicationId` in `replicationUnsetMaster`), so my former
//! master's other replicas can `PSYNC` from me and continue.

use super::{Effect, Node};
use crate::engine::SimTime;

/// `REPLICAOF` in cluster mode.
pub const REPLICAOF_CLUSTER_ERR: &str = "ERR REPLICAOF not allowed in cluster mode.";

impl Node {
    /// `REPLICAOF <ip> <port>` (`master = Some`) or `REPLICAOF NO ONE`
    /// (`None`), at `now`: the reply Redis gives.
    pub fn replicaof_command(
        &mut self,
        now: SimTime,
        master: Option<([u8; 4], u16)>,
        out: &mut Vec<Effect>,
    ) -> Result<String, String> {
        if self.setup.config.cluster_enabled {
            return Err(REPLICAOF_CLUSTER_ERR.into());
        }
        self.set_now(now);
        match master {
            None => {
                if self.repl.replica.masterhost().is_some() {
                    self.with_repl(out, |r, now, ctx, o| {
                        r.replication_unset_master(now, ctx.rng, ctx.config, o)
                    });
                }
            }
            Some((ip, port)) => {
                if self.repl.replica.masterhost() == Some((ip, port)) {
                    return Ok("OK Already connected to specified master".into());
                }
                self.with_repl(out, |r, now, _, o| {
                    r.replication_set_master(now, ip, port, o)
                });
            }
        }
        self.before_sleep(out);
        Ok("OK".into())
    }
}

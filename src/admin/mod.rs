//! What `redis-cli --cluster` does to a cluster: for now, `create`.

pub mod create;

use crate::engine::Rng;
use crate::net::Addr;

/// The text `redsim create ADDR... --replicas N` prints: what
/// `redis-cli --cluster create ADDR... --cluster-replicas N` prints from
/// `>>> Performing hash slots allocation` through the `M:`/`S:` blocks.
/// `node_ids[i]` is the node ID of `addrs[i]`. On error, the text redis-cli
/// prints (ending in a newline).
pub fn create_command_output(
    addrs: &[Addr],
    replicas: usize,
    rng: &mut Rng,
    node_ids: &[String],
) -> Result<String, String> {
    let alloc = create::allocate(addrs, replicas, rng)?;
    Ok(create::render_allocation(addrs, &alloc, node_ids))
}

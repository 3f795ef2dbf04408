//! Redis 7.0's shared replication buffer (`server.repl_buffer_blocks`) and
//! the backlog that references it (`server.repl_backlog`).
//!
//! The buffer is a list of blocks, each with the offset of its first byte,
//! its capacity (`size`, what jemalloc gave: the allocation's size class
//! minus the 40-byte `replBufBlock` header) and what is filled (`used`).
//! Replicas and the backlog hold a reference to a block (`refcount`); the
//! backlog always references the first block, and it is trimmed a whole
//! block at a time, never below `repl-backlog-size`, never past a block a
//! replica still references. A replica's output buffer is the part of the
//! list from its referenced block to the end (`getClientOutputBufferMemoryUsage`).
//!
//! Bytes are counted, not kept: beside the blocks the buffer keeps the
//! commands those bytes encode, with the offset of each command's first
//! byte, so that what a replica is sent can be applied on the other side.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::node::argv::ReplCommand;
use crate::node::keyspace::jemalloc_size;

/// `PROTO_REPLY_CHUNK_BYTES`: the smallest block.
const PROTO_REPLY_CHUNK_BYTES: u64 = 16 * 1024;
/// `sizeof(replBufBlock)` (refcount, id, repl_offset, size, used).
const REPL_BUF_BLOCK_HEADER: u64 = 40;
/// `sizeof(listNode)` + `sizeof(replBufBlock)`: the per-block overhead an
/// output buffer is charged.
const REPL_NODE_SIZE: u64 = 24 + REPL_BUF_BLOCK_HEADER;
/// `REPL_BACKLOG_TRIM_BLOCKS_PER_CALL`.
const REPL_BACKLOG_TRIM_BLOCKS_PER_CALL: usize = 64;

/// `replBufBlock`.
#[derive(Clone, Debug)]
struct ReplBufBlock {
    id: u64,
    /// Offset of the first byte.
    repl_offset: i64,
    size: u64,
    used: u64,
    refcount: u32,
}

/// `ref_repl_buf_node` + `ref_block_pos` of a replica: the block holding the
/// next byte to send and the position in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufRef {
    block: u64,
    pos: u64,
}

/// `replBacklog`: the offset of its first byte and how many bytes it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Backlog {
    offset: i64,
    histlen: i64,
    /// `ref_repl_buf_node` is set (on the first block).
    referenced: bool,
}

/// Where one `feedReplicationBuffer` round put its bytes.
pub struct Appended {
    /// Where the bytes start (a replica without a reference starts there).
    pub start: BufRef,
    /// A new block was allocated (output buffer limits are checked then).
    pub new_block: bool,
    pub copied: u64,
}

/// The replication buffer, the backlog and `master_repl_offset`.
#[derive(Debug, Default)]
pub struct ReplBuffer {
    blocks: VecDeque<ReplBufBlock>,
    next_block_id: u64,
    /// `server.repl_buffer_mem`.
    pub repl_buffer_mem: u64,
    /// The commands in the blocks, each with the offset of its first byte.
    log: VecDeque<(i64, Rc<ReplCommand>)>,
    backlog: Option<Backlog>,
    /// `server.master_repl_offset`.
    pub master_repl_offset: i64,
}

impl ReplBuffer {
    /// `freeMemoryGetNotCountedMemory()`'s replication part: what the
    /// buffer holds beyond the backlog size (with an approximation of the
    /// backlog's block overhead) belongs to the replicas' output buffers
    /// and does not count against `maxmemory`.
    pub fn not_counted_memory(&self, repl_backlog_size: u64) -> u64 {
        if self.repl_buffer_mem <= repl_backlog_size {
            return 0;
        }
        let extra = (repl_backlog_size / PROTO_REPLY_CHUNK_BYTES + 1) * REPL_NODE_SIZE;
        self.repl_buffer_mem
            .saturating_sub(repl_backlog_size + extra)
    }

    pub fn has_backlog(&self) -> bool {
        self.backlog.is_some()
    }

    /// `repl_backlog->offset` and `histlen`.
    pub fn backlog_range(&self) -> Option<(i64, i64)> {
        self.backlog.map(|b| (b.offset, b.histlen))
    }

    /// `createReplicationBacklog`: empty, its first byte the next one the
    /// stream will produce.
    pub fn create_backlog(&mut self) {
        debug_assert!(self.backlog.is_none(), "backlog created twice");
        self.backlog = Some(Backlog {
            offset: self.master_repl_offset + 1,
            histlen: 0,
            referenced: false,
        });
    }

    /// `freeReplicationBacklog` (only with no replica attached): every block
    /// goes with it.
    pub fn free_backlog(&mut self) {
        self.backlog = None;
        self.blocks.clear();
        self.log.clear();
        self.repl_buffer_mem = 0;
    }

    fn index(&self, id: u64) -> usize {
        let first = self.blocks.front().expect("referenced block exists").id;
        (id - first) as usize
    }

    /// Record `cmd` as starting at the next offset (before its bytes are fed).
    pub fn log_command(&mut self, cmd: Rc<ReplCommand>) {
        self.log_command_at(self.master_repl_offset + 1, cmd);
    }

    /// Record `cmd` as starting at `offset` (a replica logging the commands
    /// of a part of its master's stream before feeding its bytes at once).
    pub fn log_command_at(&mut self, offset: i64, cmd: Rc<ReplCommand>) {
        if self.backlog.is_some() {
            self.log.push_back((offset, cmd));
        }
    }

    /// The free bytes of the tail block (0 without blocks).
    pub fn tail_room(&self) -> u64 {
        self.blocks.back().map_or(0, |t| t.size - t.used)
    }

    /// One round of `feedReplicationBuffer`'s loop: fill the tail block,
    /// then, if bytes remain, allocate one new block (at least 16 KiB, at
    /// most `max(backlog size / 16, 16 KiB)`, its capacity jemalloc's size
    /// class) and fill it. Advances `master_repl_offset` and the backlog.
    pub fn append(&mut self, len: u64, repl_backlog_size: u64) -> Appended {
        let mut left = len;
        let mut start = None;
        if let Some(tail) = self.blocks.back_mut().filter(|t| t.size > t.used) {
            start = Some(BufRef {
                block: tail.id,
                pos: tail.used,
            });
            let copy = left.min(tail.size - tail.used);
            tail.used += copy;
            left -= copy;
        }
        let mut new_block = false;
        if left > 0 {
            let limit = (repl_backlog_size / 16).max(PROTO_REPLY_CHUNK_BYTES);
            let want = left.max(PROTO_REPLY_CHUNK_BYTES).min(limit);
            let usable = jemalloc_size(want + REPL_BUF_BLOCK_HEADER);
            let size = usable - REPL_BUF_BLOCK_HEADER;
            let copy = left.min(size);
            let id = self.next_block_id;
            self.next_block_id += 1;
            let copied_before = len - left;
            self.blocks.push_back(ReplBufBlock {
                id,
                repl_offset: self.master_repl_offset + 1 + copied_before as i64,
                size,
                used: copy,
                refcount: 0,
            });
            self.repl_buffer_mem += usable + 24;
            start.get_or_insert(BufRef { block: id, pos: 0 });
            left -= copy;
            new_block = true;
        }
        let copied = len - left;
        self.master_repl_offset += copied as i64;
        if let Some(b) = &mut self.backlog {
            b.histlen += copied as i64;
        }
        Appended {
            start: start.expect("bytes were appended somewhere"),
            new_block,
            copied,
        }
    }

    /// The backlog takes its reference on its first round.
    pub fn reference_from_backlog(&mut self, start: BufRef) {
        if let Some(b) = &mut self.backlog {
            if !b.referenced {
                b.referenced = true;
                self.incr_ref(start);
            }
        }
    }

    pub fn incr_ref(&mut self, r: BufRef) {
        let i = self.index(r.block);
        self.blocks[i].refcount += 1;
    }

    /// `freeReplicaReferencedReplBuffer`.
    pub fn release(&mut self, r: BufRef, repl_backlog_size: u64) {
        let i = self.index(r.block);
        self.blocks[i].refcount -= 1;
        self.trim(repl_backlog_size);
    }

    /// `incrementalTrimReplicationBacklog`.
    pub fn trim(&mut self, repl_backlog_size: u64) {
        let Some(backlog) = &mut self.backlog else {
            return;
        };
        let size = repl_backlog_size as i64;
        let mut trimmed = 0;
        while backlog.histlen > size && trimmed < REPL_BACKLOG_TRIM_BLOCKS_PER_CALL {
            if self.blocks.len() <= 1 {
                break;
            }
            let first = &self.blocks[0];
            if first.refcount != 1 || backlog.histlen - (first.size as i64) <= size {
                break;
            }
            let first = self.blocks.pop_front().expect("two blocks at least");
            trimmed += 1;
            backlog.histlen -= first.size as i64;
            self.blocks[0].refcount += 1;
            self.repl_buffer_mem -= first.size + REPL_NODE_SIZE;
        }
        backlog.offset = self.master_repl_offset - backlog.histlen + 1;
        if let Some(first) = self.blocks.front() {
            let from = first.repl_offset;
            while self
                .log
                .front()
                .is_some_and(|(o, c)| *o + (c.size as i64) <= from)
            {
                self.log.pop_front();
            }
        }
    }

    /// `addReplyReplicationBacklog`: a replica's reference to `offset`
    /// (the backlog holds it), or `None` if the backlog is empty.
    pub fn reference_offset(&mut self, offset: i64) -> Option<BufRef> {
        if self.backlog?.histlen == 0 {
            return None;
        }
        let i = self
            .blocks
            .iter()
            .position(|b| b.repl_offset + b.used as i64 >= offset)?;
        let b = &mut self.blocks[i];
        b.refcount += 1;
        Some(BufRef {
            block: b.id,
            pos: (offset - b.repl_offset) as u64,
        })
    }

    /// `getClientOutputBufferMemoryUsage` of a replica referencing `r`.
    pub fn usage(&self, r: Option<BufRef>) -> u64 {
        let (Some(r), Some(last)) = (r, self.blocks.back()) else {
            return 0;
        };
        let cur = &self.blocks[self.index(r.block)];
        (last.repl_offset + last.size as i64 - cur.repl_offset) as u64
            + REPL_NODE_SIZE * (last.id - cur.id + 1)
    }

    /// The offset of the next byte a replica referencing `r` would send.
    fn position(&self, r: BufRef) -> i64 {
        self.blocks[self.index(r.block)].repl_offset + r.pos as i64
    }

    /// What a replica referencing `r` has not been sent yet: the offset of
    /// its first byte, its size and its commands. Its reference moves to the
    /// end (the last block, fully sent), as `writeToClient` leaves it.
    pub fn take_pending(
        &mut self,
        r: &mut BufRef,
        repl_backlog_size: u64,
    ) -> Option<(i64, u64, Vec<Rc<ReplCommand>>)> {
        let from = self.position(*r);
        let bytes = self.master_repl_offset + 1 - from;
        if bytes <= 0 {
            return None;
        }
        let first = self.log.partition_point(|(o, _)| *o < from);
        let commands = self.log.range(first..).map(|(_, c)| c.clone()).collect();
        let last = self.blocks.back().expect("bytes are in blocks");
        let end = BufRef {
            block: last.id,
            pos: last.used,
        };
        if end.block != r.block {
            self.incr_ref(end);
            let old = std::mem::replace(r, end);
            self.release(old, repl_backlog_size);
        } else {
            *r = end;
        }
        Some((from, bytes as u64, commands))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(b: &mut ReplBuffer, len: u64, backlog_size: u64) {
        let cmd = ReplCommand::new(crate::node::argv::Argv::from_slices(&[&vec![
            b'x';
            len as usize
        ]]));
        let size = cmd.size;
        b.log_command(cmd);
        let mut left = size;
        while left > 0 {
            let a = b.append(left, backlog_size);
            b.reference_from_backlog(a.start);
            if a.new_block {
                b.trim(backlog_size);
            }
            left -= a.copied;
        }
    }

    #[test]
    fn blocks_and_trimming() {
        let size = 1 << 20;
        let mut b = ReplBuffer::default();
        b.create_backlog();
        assert_eq!(b.backlog_range(), Some((1, 0)));
        // A 16 KiB + 40 allocation is in jemalloc's 20 KiB class.
        feed(&mut b, 100, size);
        assert_eq!(b.blocks[0].size, 20480 - 40);
        // 3 MB of small commands: the backlog keeps at least 1 MB, whole
        // blocks only, and its first byte follows.
        for _ in 0..30_000 {
            feed(&mut b, 90, size);
        }
        let (first, histlen) = b.backlog_range().unwrap();
        assert!(histlen >= size as i64);
        assert!(histlen < size as i64 + 20440);
        assert_eq!(first, b.master_repl_offset - histlen + 1);
        assert_eq!(first, b.blocks[0].repl_offset);
        // The command log covers the backlog from its first byte on.
        assert!(b.log[0].0 <= first);
        assert!(b.log[1].0 > first);
    }

    #[test]
    fn a_replica_reference_holds_blocks_and_counts_as_its_buffer() {
        let size = 32 * 1024;
        let mut b = ReplBuffer::default();
        b.create_backlog();
        feed(&mut b, 100, size);
        let mut r = b.reference_offset(1).unwrap();
        assert_eq!(r, BufRef { block: 0, pos: 0 });
        for _ in 0..2000 {
            feed(&mut b, 90, size);
        }
        // Nothing trimmed while the replica holds block 0.
        assert_eq!(b.backlog_range().unwrap().0, 1);
        let used = b.usage(Some(r));
        assert!(used > 2000 * 90);
        let (from, bytes, cmds) = b.take_pending(&mut r, size).unwrap();
        assert_eq!(from, 1);
        assert_eq!(bytes as i64, b.master_repl_offset);
        assert_eq!(cmds.len(), 2001);
        // Released: the backlog shrinks back towards its size.
        let (_, histlen) = b.backlog_range().unwrap();
        assert!(histlen < 2 * size as i64);
        assert!(b.usage(Some(r)) < 20480 + REPL_NODE_SIZE);
        assert!(b.take_pending(&mut r, size).is_none());
    }
}

//! Persistence for a restart, as Redis 7.0.15 does it: the RDB save points
//! (`save`: `serverCron` → `rdbSaveBackground`, `rdb.c`), the append only
//! file (`appendonly`, `appendfsync`: `feedAppendOnlyFile` and
//! `flushAppendOnlyFile`, `aof.c`), and the load at start
//! (`loadDataFromDisk`, `server.c`).
//!
//! The node keeps what the process keeps in memory: `server.dirty`,
//! `lastsave`, the BGSAVE child, when the AOF was last fsynced, and the
//! load in progress. The disk is the world's (it outlives the process): the
//! node hands it each finished `dump.rdb`, each command written to the AOF
//! and each fsync ([`PersistEffect`]); [`AofFile`] is the AOF as the disk
//! holds it, with what a host crash loses. At start the world gives the
//! node what its disk holds ([`Node::load_data_from_disk`]).
//!
//! What survives:
//!
//! * `kill` (the process dies, the machine does not): everything written
//!   — the last finished `dump.rdb`, and every command written to the AOF
//!   (Redis writes the AOF in `beforeSleep`, before the replies go out, so
//!   the OS has every acknowledged write whatever `appendfsync` says);
//! * `crash-host`: what was fsynced. `dump.rdb` is fsynced before its
//!   rename; the AOF: `always`, every acknowledged write (fsync before the
//!   replies); `everysec`, what was written up to the last fsync (at the
//!   first write or cron tick of each new second, so up to about a second
//!   is lost); `no`, what the OS wrote back by itself: modelled as every
//!   write older than 30 s (Linux's `dirty_expire_centisecs` default).
//!
//! Costs: a save point's BGSAVE forks as a full sync's does (the parent is
//! blocked 10 ms per GiB) and the child takes the replication model's
//! `rdb_save_us`; the snapshot is the keyspace at the fork. Loading takes
//! the replication model's `rdb_load_us` for the dataset (an AOF as well: as
//! if rewritten with its RDB preamble, `aof-use-rdb-preamble yes`); clients
//! get `-LOADING` meanwhile and `serverCron` does not run.
//!
//! A BGSAVE to disk, a save point's or a full sync's (`rdbSaveBackground`
//! from `startBgsaveForReplication`), records its start (`dirty_before_bgsave`,
//! `lastbgsave_try`) and, done, the save (`backgroundSaveDoneHandlerDisk`:
//! `dirty`, `lastsave`, `lastbgsave_status`); a diskless sync's child
//! (`backgroundSaveDoneHandlerSocket`) touches none of them. A `fork()`
//! fails with `Cannot allocate memory` when the host's free memory is
//! smaller than the node's (`vm.overcommit_memory` 0): `lastbgsave_status`
//! is `err` and `serverCron` tries a save point again only
//! `CONFIG_BGSAVE_RETRY_DELAY` (5 s) after the failed attempt.
//!
//! After a failed BGSAVE, with save points set and
//! `stop-writes-on-bgsave-error yes`, clients' writes get `-MISCONF`
//! (`writeCommandsDeniedByDiskError`) until a BGSAVE succeeds.
//!
//! Not modelled: AOF rewrites (`auto-aof-rewrite-*`) and their fork, a
//! BGSAVE child failing to write, AOF write errors, a replica applying its
//! master's write while its own BGSAVE failed (Redis panics unless
//! `replica-ignore-disk-write-errors`), `SAVE`/`BGSAVE`/`SHUTDOWN`
//! commands, and a BGSAVE child outliving its killed parent (it dies with
//! it here).

use std::rc::Rc;

use crate::engine::SimTime;

use super::config::{Appendfsync, Config};
use super::keyspace::Keyspace;
use super::mstime;
use super::replication::rdb::{self, RdbSnapshot};
use super::replication::{apply_replicated, ReplCommand, ReplNote};
use super::{Effect, Node};

/// How long the OS keeps a written page dirty before writing it back by
/// itself (`vm.dirty_expire_centisecs` = 3000): what `appendfsync no` has
/// on disk when the machine dies.
pub const OS_WRITEBACK_US: SimTime = 30_000_000;

/// `CONFIG_BGSAVE_RETRY_DELAY`: seconds after a failed BGSAVE before a save
/// point tries again.
const CONFIG_BGSAVE_RETRY_DELAY: i64 = 5;

/// `shared.bgsaveerr`, without the leading `-`.
pub const MISCONF_ERR: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// What persistence asks of the disk, and tells observers.
#[derive(Clone, Debug)]
pub enum PersistEffect {
    /// `fork()` of a save point's BGSAVE: the parent is blocked `fork_us`.
    Fork {
        fork_us: SimTime,
        used_memory: u64,
        rdb_bytes: u64,
    },
    /// `fork()` of a save point's BGSAVE failed (`Cannot allocate memory`).
    ForkFailed,
    /// A BGSAVE finished, or a replica received its master's RDB: this is
    /// `dump.rdb` now (written, fsynced and renamed).
    RdbSaved { rdb: Rc<RdbSnapshot> },
    /// Commands written to the AOF (`write(2)`: the OS has them).
    AofWrite { commands: Vec<Rc<ReplCommand>> },
    /// The AOF is fsynced: everything written so far survives a crash.
    AofFsync,
    /// After a full sync a replica's AOF holds the dataset it loaded
    /// (`restartAOFAfterSYNC`; the rewrite is taken as instant), fsynced.
    AofRewritten { rdb: Rc<RdbSnapshot> },
    /// The process started loading its data from disk; it serves again
    /// after `load_us`.
    Loading {
        from_aof: bool,
        keys: u64,
        load_us: SimTime,
    },
}

/// A save point's BGSAVE child.
#[derive(Debug)]
struct SaveChild {
    rdb: Rc<RdbSnapshot>,
    /// When it has written, fsynced and renamed the file.
    done_at: SimTime,
}

/// What a process keeps in memory about persistence.
#[derive(Debug)]
pub struct Persistence {
    /// `server.dirty`: writes since the last successful save.
    dirty: u64,
    /// `server.dirty_before_bgsave`.
    dirty_before_bgsave: u64,
    /// `server.lastsave` (Unix seconds): at start the dataset counts as saved.
    lastsave_s: i64,
    /// `server.lastbgsave_try` (Unix seconds).
    lastbgsave_try_s: i64,
    /// `server.lastbgsave_status == C_OK`.
    lastbgsave_ok: bool,
    child: Option<SaveChild>,
    /// `server.aof_last_fsync` (Unix seconds).
    aof_last_fsync_s: i64,
    /// Written to the AOF and not fsynced yet.
    aof_unsynced: bool,
    /// Loading the dataset from disk until then (`server.loading`).
    loading_until: SimTime,
}

impl Persistence {
    pub fn new(now: SimTime) -> Persistence {
        let unixtime = mstime(now) / 1000;
        Persistence {
            dirty: 0,
            dirty_before_bgsave: 0,
            lastsave_s: unixtime,
            lastbgsave_try_s: 0,
            lastbgsave_ok: true,
            child: None,
            aof_last_fsync_s: unixtime,
            aof_unsynced: false,
            loading_until: 0,
        }
    }

    /// `writeCommandsDeniedByDiskError`'s RDB case: the last BGSAVE failed,
    /// save points are set and `stop-writes-on-bgsave-error yes`.
    pub fn writes_denied_by_disk_error(&self, cfg: &Config) -> bool {
        cfg.stop_writes_on_bgsave_error && !cfg.save.is_empty() && !self.lastbgsave_ok
    }

    /// A save point's child is running (`hasActiveChildProcess`, my part).
    pub fn has_child(&self) -> bool {
        self.child.is_some()
    }

    pub(super) fn loading_until(&self) -> SimTime {
        self.loading_until
    }

    /// `rdbSaveBackground` before its `fork()`.
    fn bgsave_start(&mut self, unixtime: i64) {
        self.dirty_before_bgsave = self.dirty;
        self.lastbgsave_try_s = unixtime;
    }

    /// `backgroundSaveDoneHandlerDisk` after a successful child.
    fn bgsave_done(&mut self, unixtime: i64) {
        self.dirty -= self.dirty_before_bgsave.min(self.dirty);
        self.lastsave_s = unixtime;
        self.lastbgsave_ok = true;
    }

    /// `INFO persistence`'s fields redsim models, in Redis's order;
    /// `loading` and `bgsave_in_progress` are the process's.
    pub(super) fn info(&self, loading: bool, bgsave_in_progress: bool) -> String {
        format!(
            "# Persistence\r\nloading:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\n",
            u8::from(loading),
            self.dirty,
            u8::from(bgsave_in_progress),
            self.lastsave_s,
            if self.lastbgsave_ok { "ok" } else { "err" },
        )
    }
}

/// The append only file as the disk holds it: the dataset it replays to
/// up to the last fsync, and what was written since.
#[derive(Clone, Debug, Default)]
pub struct AofFile {
    synced: Keyspace,
    /// Written since the last fsync: when, and what.
    unsynced: Vec<(SimTime, Rc<ReplCommand>)>,
}

impl AofFile {
    /// `write(2)` of `commands` at `now`.
    pub fn write(&mut self, now: SimTime, commands: &[Rc<ReplCommand>]) {
        self.unsynced
            .extend(commands.iter().map(|c| (now, Rc::clone(c))));
    }

    /// `fsync(2)`: everything written is on disk.
    pub fn fsync(&mut self) {
        for (at, cmd) in self.unsynced.drain(..) {
            apply_replicated(&cmd, &mut self.synced, mstime(at));
        }
    }

    /// A rewrite: the file now holds `keyspace`, fsynced.
    pub fn rewrite(&mut self, keyspace: &Keyspace) {
        self.unsynced.clear();
        self.synced = keyspace.clone();
    }

    /// The machine died at `now`: what was not fsynced is lost, except,
    /// with `appendfsync no`, what the OS wrote back by itself.
    pub fn crash(&mut self, now: SimTime, policy: Appendfsync) {
        let keep = match policy {
            Appendfsync::No => self
                .unsynced
                .iter()
                .take_while(|(at, _)| *at + OS_WRITEBACK_US <= now)
                .count(),
            Appendfsync::Always | Appendfsync::Everysec => 0,
        };
        self.unsynced.truncate(keep);
        self.fsync();
    }

    /// What loading the file gives (`loadAppendOnlyFiles`).
    pub fn load(&self) -> Keyspace {
        let mut ks = self.synced.clone();
        for (at, cmd) in &self.unsynced {
            apply_replicated(cmd, &mut ks, mstime(*at));
        }
        ks
    }
}

/// What a process finds on its disk at start, as `loadDataFromDisk` reads
/// it: the AOF when `appendonly yes`, else `dump.rdb`.
pub enum DiskData {
    Aof(Box<Keyspace>),
    Rdb(Rc<RdbSnapshot>),
}

impl Node {
    /// `server.loading`: loading the dataset from disk, or a replica loading
    /// its master's RDB. Commands without the `loading` flag get
    /// `-LOADING` and `serverCron` does not run.
    pub fn loading(&self) -> bool {
        self.now < self.persist.loading_until || self.repl.replica.loading()
    }

    /// `loadDataFromDisk` at start: the dataset, and from an RDB the
    /// replication ID and offset (a replica's as its cached master, a
    /// master's as its second ID, so that their partners may `PSYNC`).
    /// The process is busy loading for the load time from the dataset.
    pub fn load_data_from_disk(&mut self, data: DiskData, out: &mut Vec<Effect>) {
        let (keyspace, rsi, from_aof) = match data {
            DiskData::Aof(ks) => (*ks, None, true),
            DiskData::Rdb(rdb) => (rdb.keyspace.clone(), rdb.rsi, false),
        };
        let unixtime = self.now_ms / 1000;
        let rdb_bytes = rdb::rdb_size(&keyspace, unixtime, rsi.as_ref());
        let keys = keyspace.len() as u64;
        let load_us = rdb::rdb_load_us(keys, rdb_bytes);
        self.keyspace.load(keyspace);
        if let Some(rsi) = rsi {
            let is_master = self.is_master();
            self.repl.restore_save_info(self.now, is_master, rsi);
        }
        self.persist.loading_until = self.now + load_us;
        out.push(Effect::Persist(PersistEffect::Loading {
            from_aof,
            keys,
            load_us,
        }));
    }

    /// `serverCron`'s persistence duties: a finished child
    /// (`checkChildrenDone` → `backgroundSaveDoneHandler`, then the
    /// replication fork replicas wait for), else a save
    /// point reached (`server.dirty >= changes` and more than `seconds`
    /// since the last save) starts a BGSAVE, unless replication's child
    /// runs.
    pub(super) fn persistence_cron(&mut self, out: &mut Vec<Effect>) {
        let unixtime = self.now_ms / 1000;
        let p = &mut self.persist;
        if let Some(child) = &p.child {
            if child.done_at <= self.now {
                let child = p.child.take().expect("checked above");
                p.bgsave_done(unixtime);
                out.push(Effect::Persist(PersistEffect::RdbSaved { rdb: child.rdb }));
                // `checkChildrenDone` starts the fork replicas wait for.
                self.with_repl(out, |r, now, ctx, o| r.child_exited(now, ctx, o));
            }
        } else if !self.repl.has_child() {
            let retry =
                unixtime - p.lastbgsave_try_s > CONFIG_BGSAVE_RETRY_DELAY || p.lastbgsave_ok;
            let due = self.setup.config.save.iter().any(|&(seconds, changes)| {
                p.dirty >= changes && unixtime - p.lastsave_s > seconds as i64 && retry
            });
            if due {
                self.rdb_save_background(out);
            }
        }
    }

    /// `rdbSaveBackground`: fork; the child writes the keyspace as it is
    /// now, with `rdbPopulateSaveInfo`'s replication info.
    fn rdb_save_background(&mut self, out: &mut Vec<Effect>) {
        self.persist.bgsave_start(self.now_ms / 1000);
        if self.fork_enomem() {
            self.persist.lastbgsave_ok = false;
            out.push(Effect::Persist(PersistEffect::ForkFailed));
            return;
        }
        self.repl.stats.total_forks += 1;
        let used_memory = self.keyspace.used_memory();
        let rsi = self.repl.rdb_save_info();
        let snapshot = RdbSnapshot::take(&self.keyspace, self.now_ms / 1000, rsi);
        let fork_us = rdb::fork_us(used_memory);
        out.push(Effect::Persist(PersistEffect::Fork {
            fork_us,
            used_memory,
            rdb_bytes: snapshot.rdb_bytes,
        }));
        self.persist.child = Some(SaveChild {
            done_at: self.now + fork_us + rdb::rdb_save_us(used_memory),
            rdb: snapshot,
        });
    }

    /// What a replication BGSAVE to disk (`rdbSaveBackground` from
    /// `startBgsaveForReplication`) does to my persistence state: its
    /// `fork()` (successful or not), and its end (`backgroundSaveDoneHandler`:
    /// the disk handler after a child that was not killed). A diskless
    /// sync's child changes none of it.
    pub(super) fn persist_repl_note(&mut self, note: &ReplNote) {
        let unixtime = self.now_ms / 1000;
        let p = &mut self.persist;
        match note {
            ReplNote::Fork {
                diskless: false, ..
            } => p.bgsave_start(unixtime),
            ReplNote::ForkFailed { diskless: false } => {
                p.bgsave_start(unixtime);
                p.lastbgsave_ok = false;
            }
            ReplNote::ChildDone {
                ok: true,
                diskless: false,
                ..
            } => p.bgsave_done(unixtime),
            _ => {}
        }
    }

    /// `call()`'s `server.dirty++` and `feedAppendOnlyFile` for `commands`
    /// executed on my keyspace (a client's writes, or my master's stream).
    /// `commands` is only asked for when `appendonly yes`.
    pub(super) fn persist_feed(
        &mut self,
        count: usize,
        commands: impl FnOnce() -> Vec<Rc<ReplCommand>>,
        out: &mut Vec<Effect>,
    ) {
        self.persist.dirty += count as u64;
        if self.setup.config.appendonly && count > 0 {
            self.persist.aof_unsynced = true;
            let commands = commands();
            out.push(Effect::Persist(PersistEffect::AofWrite { commands }));
        }
    }

    /// `flushAppendOnlyFile`'s fsync, in `beforeSleep` before the replies
    /// go out: `always` every time something was written, `everysec` once
    /// the second changed since the last one, `no` never (the OS decides).
    pub(super) fn aof_flush(&mut self, out: &mut Vec<Effect>) {
        let p = &mut self.persist;
        if !p.aof_unsynced {
            return;
        }
        let unixtime = self.now_ms / 1000;
        let fsync = match self.setup.config.appendfsync {
            Appendfsync::Always => true,
            Appendfsync::Everysec => unixtime > p.aof_last_fsync_s,
            Appendfsync::No => false,
        };
        if fsync {
            p.aof_unsynced = false;
            p.aof_last_fsync_s = unixtime;
            out.push(Effect::Persist(PersistEffect::AofFsync));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str, v: &str) -> Rc<ReplCommand> {
        ReplCommand::new(["SET", k, v].into_iter().collect())
    }

    #[test]
    fn a_crash_keeps_what_was_fsynced_and_with_appendfsync_no_what_the_os_wrote_back() {
        let s = 1_000_000;
        let mut aof = AofFile::default();
        aof.write(s, &[set("a", "1")]);
        aof.fsync();
        aof.write(2 * s, &[set("b", "1")]);
        aof.write(40 * s, &[set("c", "1")]);
        // A kill: the OS has every write.
        assert_eq!(aof.load().len(), 3);
        let mut everysec = aof.clone();
        everysec.crash(41 * s, Appendfsync::Everysec);
        assert_eq!(everysec.load().len(), 1);
        // `no`: `b` is 39 s old, written back; `c` is not.
        let mut no = aof.clone();
        no.crash(41 * s, Appendfsync::No);
        let ks = no.load();
        assert!(ks.peek(b"b").is_some() && ks.peek(b"c").is_none());
        aof.rewrite(&Keyspace::new());
        assert!(aof.load().is_empty());
    }
}

//! The commands a node knows, with what Redis 7.0.15's command table
//! (`src/commands/*.json`, compiled into `commands.c`) says about each that
//! matters before the command runs: its arity, its flags, and where its keys
//! are. `processCommand()` (`src/server.c`) looks the command up and checks
//! its arity first (`commandCheckExistence`, `commandCheckArity`); cluster
//! routing then reads the keys and the flags.
//!
//! Only the commands the data path is meant to execute are here: the
//! keyspace's string commands, `RESTORE-ASKING` (what `MIGRATE` sends the
//! target), the connection state commands a cluster
//! client sends (`ASKING`, `READONLY`, `READWRITE`), `WAIT` and `CLUSTER SLOTS`
//! (the `CLUSTER` container knows no other subcommand on this path: the
//! cluster manager's commands go through [`super::render::ClusterCommand`]).
//! The keys are found as `getKeysUsingKeySpecs()` (`src/db.c`) finds them
//! for these commands, whose key specs are all "index 1, range": the legacy
//! `(first_key, last_key, step)` triple describes them exactly.

use super::render::CommandError;

/// `CMD_*` command flags (`src/server.h`), same bit values.
pub const CMD_WRITE: u64 = 1 << 0;
pub const CMD_READONLY: u64 = 1 << 1;
pub const CMD_DENYOOM: u64 = 1 << 2;
pub const CMD_LOADING: u64 = 1 << 9;
pub const CMD_STALE: u64 = 1 << 10;
pub const CMD_ASKING: u64 = 1 << 13;
pub const CMD_FAST: u64 = 1 << 14;
pub const CMD_MAY_REPLICATE: u64 = 1 << 16;

/// One entry of the command table (`struct redisCommand`).
#[derive(Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name as Redis prints it in errors (`fullname`, lower case).
    pub name: &'static str,
    /// Number of arguments including the name; negative: at least `-arity`.
    pub arity: i32,
    /// `CMD_*` flags.
    pub flags: u64,
    /// Index of the first key in argv.
    pub first_key: usize,
    /// Index of the last key; negative counts from the end (-1 = last
    /// argument).
    pub last_key: i32,
    /// Distance between keys (2 for MSET: key value key value ...).
    pub step: usize,
}

const fn spec(
    name: &'static str,
    arity: i32,
    flags: u64,
    last_key: i32,
    step: usize,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 1,
        last_key,
        step,
    }
}

/// A command without keys.
const fn keyless(name: &'static str, arity: i32, flags: u64) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: 0,
        last_key: 0,
        step: 1,
    }
}

/// The table, from the 7.0.15 JSON files (arity, `command_flags`,
/// `key_specs`).
pub const COMMANDS: [CommandSpec; 19] = [
    spec("get", 2, CMD_READONLY | CMD_FAST, 1, 1),
    spec("set", -3, CMD_WRITE | CMD_DENYOOM, 1, 1),
    spec("incr", 2, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1),
    spec("append", 3, CMD_WRITE | CMD_DENYOOM | CMD_FAST, 1, 1),
    spec("del", -2, CMD_WRITE, -1, 1),
    spec("exists", -2, CMD_READONLY | CMD_FAST, -1, 1),
    spec("expire", -3, CMD_WRITE | CMD_FAST, 1, 1),
    spec("pexpire", -3, CMD_WRITE | CMD_FAST, 1, 1),
    spec("pexpireat", -3, CMD_WRITE | CMD_FAST, 1, 1),
    spec("ttl", 2, CMD_READONLY | CMD_FAST, 1, 1),
    spec("pttl", 2, CMD_READONLY | CMD_FAST, 1, 1),
    spec("mset", -3, CMD_WRITE | CMD_DENYOOM, -1, 2),
    spec("mget", -2, CMD_READONLY | CMD_FAST, -1, 1),
    spec(
        "restore-asking",
        -4,
        CMD_WRITE | CMD_DENYOOM | CMD_ASKING,
        1,
        1,
    ),
    keyless("asking", 1, CMD_FAST),
    keyless("readonly", 1, CMD_FAST | CMD_LOADING | CMD_STALE),
    keyless("readwrite", 1, CMD_FAST | CMD_LOADING | CMD_STALE),
    // `NOSCRIPT` only: no `loading` flag, so `-LOADING` while loading.
    keyless("wait", 3, 0),
    keyless("info", -1, CMD_LOADING | CMD_STALE),
];

/// The `CLUSTER` container command (`cluster.json`: arity -2, no flags).
pub static CLUSTER: CommandSpec = keyless("cluster", -2, 0);

/// Its subcommands served on the client path, by their full name.
pub static CLUSTER_SUBCOMMANDS: [CommandSpec; 1] = [keyless("cluster|slots", 2, CMD_STALE)];

/// `lookupCommand`: the command named `name`, ignoring case (`CLUSTER`
/// is the container; its subcommands are found by [`lookup_command`]).
pub fn find_command(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .chain(std::iter::once(&CLUSTER))
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// `lookupCommand` + `commandCheckExistence` + `commandCheckArity`: the
/// command of `argv` (`argv[0]` is its name), or Redis's error. An empty
/// `argv` is looked up as an empty name (Redis skips empty requests before
/// this point).
pub fn lookup_command(argv: &[&[u8]]) -> Result<&'static CommandSpec, CommandError> {
    let name = argv.first().copied().unwrap_or_default();
    let Some(mut cmd) = find_command(name) else {
        return Err(unknown_command(name, argv.get(1..).unwrap_or_default()));
    };
    if cmd.name == CLUSTER.name && argv.len() >= 2 {
        // lookupSubcommand; an unknown one gets commandCheckExistence's
        // help text.
        let sub = argv[1];
        let prefix = CLUSTER.name.len() + 1;
        cmd = CLUSTER_SUBCOMMANDS
            .iter()
            .find(|c| c.name.as_bytes()[prefix..].eq_ignore_ascii_case(sub))
            .ok_or_else(|| {
                let sub = String::from_utf8_lossy(&sub[..sub.len().min(128)]);
                format!("ERR unknown subcommand '{sub}'. Try CLUSTER HELP.")
            })?;
    }
    let argc = argv.len() as i64;
    let arity = i64::from(cmd.arity);
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.name
        ));
    }
    Ok(cmd)
}

/// `commandCheckExistence`'s error: the name cut at 128 bytes, then the
/// arguments quoted, each cut so that the list stops growing once it
/// reaches 128 bytes; CR and LF become spaces.
fn unknown_command(name: &[u8], args: &[&[u8]]) -> CommandError {
    const LIMIT: usize = 128;
    let mut listed = Vec::new();
    for a in args {
        if listed.len() >= LIMIT {
            break;
        }
        let room = LIMIT - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&a[..a.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&name[..name.len().min(LIMIT)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    msg.extend_from_slice(&listed);
    for b in &mut msg {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    String::from_utf8_lossy(&msg).into_owned()
}

impl CommandSpec {
    /// `getKeysFromCommand`: the key arguments of `argv`, in order; none
    /// if the range falls outside `argv` (the arity check rules that out
    /// for every command of the table).
    pub fn keys<'a>(&self, argv: &[&'a [u8]]) -> Keys<'a> {
        if self.first_key == 0 {
            return Keys::new();
        }
        let argc = argv.len() as i64;
        let first = self.first_key as i64;
        let last = if self.last_key >= 0 {
            i64::from(self.last_key)
        } else {
            argc + i64::from(self.last_key)
        };
        if last >= argc || last < first || first >= argc {
            return Keys::new();
        }
        (first as usize..=last as usize)
            .step_by(self.step)
            .map(|i| argv[i])
            .collect()
    }
}

/// The key arguments of a command (on the stack for up to four).
pub type Keys<'a> = smallvec::SmallVec<[&'a [u8]; 4]>;

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn lookup_ignores_case_and_checks_arity() {
        assert_eq!(lookup_command(&argv("GeT k")).unwrap().name, "get");
        assert_eq!(
            lookup_command(&argv("GET")),
            Err("ERR wrong number of arguments for 'get' command".into())
        );
        assert_eq!(
            lookup_command(&argv("get a b")),
            Err("ERR wrong number of arguments for 'get' command".into())
        );
        // Negative arity: at least that many.
        assert!(lookup_command(&argv("SET k v EX 10")).is_ok());
        assert_eq!(
            lookup_command(&argv("mset k")),
            Err("ERR wrong number of arguments for 'mset' command".into())
        );
    }

    #[test]
    fn connection_commands_and_cluster_slots() {
        for name in ["ASKING", "readonly", "ReadWrite"] {
            let c = lookup_command(&argv(name)).unwrap();
            assert!(c.keys(&argv(name)).is_empty(), "{name}");
            assert_eq!(c.flags & (CMD_WRITE | CMD_READONLY), 0, "{name}");
        }
        assert_eq!(
            lookup_command(&argv("READONLY now")),
            Err("ERR wrong number of arguments for 'readonly' command".into())
        );
        let c = lookup_command(&argv("cluster SLOTS")).unwrap();
        assert_eq!(c.name, "cluster|slots");
        assert!(c.keys(&argv("cluster SLOTS")).is_empty());
        assert_eq!(
            lookup_command(&argv("CLUSTER")),
            Err("ERR wrong number of arguments for 'cluster' command".into())
        );
        assert_eq!(
            lookup_command(&argv("CLUSTER slots x")),
            Err("ERR wrong number of arguments for 'cluster|slots' command".into())
        );
        assert_eq!(
            lookup_command(&argv("cluster nope x")),
            Err("ERR unknown subcommand 'nope'. Try CLUSTER HELP.".into())
        );
    }

    #[test]
    fn unknown_command_error_is_redis_text() {
        assert_eq!(
            lookup_command(&argv("FOO a bc")),
            Err("ERR unknown command 'FOO', with args beginning with: 'a' 'bc' ".into())
        );
        assert_eq!(
            lookup_command(&argv("nope")),
            Err("ERR unknown command 'nope', with args beginning with: ".into())
        );
        assert_eq!(
            lookup_command(&[]),
            Err("ERR unknown command '', with args beginning with: ".into())
        );
        // Arguments are listed until the list reaches 128 bytes, the last
        // one cut to fit; CR/LF become spaces.
        let long = "x".repeat(200);
        let e = lookup_command(&[b"foo\r\n", long.as_bytes(), b"more"]).unwrap_err();
        assert_eq!(
            e,
            format!(
                "ERR unknown command 'foo  ', with args beginning with: '{}' ",
                "x".repeat(128)
            )
        );
        let e = lookup_command(&[b"foo", &[b'y'; 120], b"abcdefghij", b"z"]).unwrap_err();
        assert!(
            e.ends_with(&format!("'{}' 'abcde' ", "y".repeat(120))),
            "{e}"
        );
    }

    #[test]
    fn keys_follow_the_key_specs() {
        let k = |s: &str| {
            let a = argv(s);
            let cmd = lookup_command(&a).unwrap();
            cmd.keys(&a)
                .into_iter()
                .map(|k| String::from_utf8(k.to_vec()).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(k("GET a"), ["a"]);
        assert_eq!(k("SET a v NX"), ["a"]);
        assert_eq!(k("EXPIRE a 10 NX"), ["a"]);
        assert_eq!(k("DEL a b c"), ["a", "b", "c"]);
        assert_eq!(k("MGET a b"), ["a", "b"]);
        assert_eq!(k("MSET a 1 b 2"), ["a", "b"]);
        // An odd MSET is refused by the command itself, after routing,
        // which sees the last argument as a key.
        assert_eq!(k("MSET a 1 b"), ["a", "b"]);
    }

    #[test]
    fn flags_match_redis() {
        for (name, write) in [
            ("get", false),
            ("set", true),
            ("incr", true),
            ("append", true),
            ("del", true),
            ("exists", false),
            ("expire", true),
            ("pexpire", true),
            ("ttl", false),
            ("mset", true),
            ("mget", false),
        ] {
            let c = find_command(name.as_bytes()).unwrap();
            assert_eq!(c.flags & CMD_WRITE != 0, write, "{name}");
            assert_eq!(c.flags & CMD_READONLY != 0, !write, "{name}");
        }
    }
}

//! RESP sizes of what travels on a replication link, in bytes.
//!
//! The model keeps commands, not bytes; these functions say how many bytes
//! Redis would put on the wire or into the replication buffer for them.

use crate::node::argv::Argv;

/// Decimal digits of `n` (`ll2string` length of a non-negative value).
pub fn digits(n: u64) -> u64 {
    n.checked_ilog10().map_or(1, |d| u64::from(d) + 1)
}

/// `ll2string` length of a signed value (the `-` counts).
pub fn digits_i64(n: i64) -> u64 {
    digits(n.unsigned_abs()) + u64::from(n < 0)
}

/// The pieces `replicationFeedSlaves` hands to `feedReplicationBuffer` for
/// one command, in order: `*<argc>\r\n`, then per argument `$<len>\r\n`, the
/// argument itself and `\r\n`. Empty pieces (an empty argument) are kept:
/// feeding zero bytes does nothing.
pub fn feed_pieces(argv: &Argv) -> impl Iterator<Item = u64> + '_ {
    let head = 3 + digits(argv.len() as u64);
    std::iter::once(head).chain(argv.iter().flat_map(|a| {
        let len = a.len() as u64;
        [3 + digits(len), len, 2]
    }))
}

/// Size of a command as a RESP multi-bulk (`*<n>\r\n$<len>\r\n<arg>\r\n...`).
pub fn multibulk_size(argv: &Argv) -> u64 {
    feed_pieces(argv).sum()
}

/// Size of a multi-bulk whose arguments have the given lengths, without
/// building the arguments.
pub fn multibulk_size_of(lens: &[u64]) -> u64 {
    3 + digits(lens.len() as u64) + lens.iter().map(|&l| 3 + digits(l) + l + 2).sum::<u64>()
}

/// Size of a status or error reply line (`+<s>\r\n` / `-<s>\r\n`).
pub fn line_size(s_len: u64) -> u64 {
    1 + s_len + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Argv {
        args.iter().collect()
    }

    #[test]
    fn sizes_match_the_encoding() {
        // *2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n
        assert_eq!(multibulk_size(&argv(&["SELECT", "0"])), 23);
        // *1\r\n$4\r\nPING\r\n
        assert_eq!(multibulk_size(&argv(&["PING"])), 14);
        // *3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n
        let set = argv(&["SET", "key", "0123456789"]);
        assert_eq!(multibulk_size(&set), 4 + 9 + 9 + 17);
        assert_eq!(multibulk_size_of(&[3, 3, 10]), multibulk_size(&set));
        assert_eq!(feed_pieces(&set).count(), 10);
        assert_eq!(digits(0), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits_i64(-1), 2);
        assert_eq!(line_size(4), 7); // +PONG\r\n
    }
}

//! Key → hash slot, as `keyHashSlot()` in Redis's `src/cluster.c`.
//!
//! The slot of a key is the CRC16 (XMODEM variant: poly 0x1021, init 0, no
//! reflection, no final XOR) of the key, masked to its low 14 bits. If the key
//! holds a hash tag — the bytes between the first `{` and the first `}` after
//! it, when there is at least one byte between them — only the tag is hashed.
//! The rule works on bytes, with no UTF-8 awareness.

/// Number of hash slots in a Redis Cluster (`CLUSTER_SLOTS`).
pub const CLUSTER_SLOTS: usize = 16384;

/// The hash slot (0..16384) of `key`, exactly as Redis computes it.
pub fn key_hash_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key)) & 0x3FFF
}

/// The bytes Redis hashes for `key`: the hash tag if there is a non-empty one,
/// else the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        // No `}` after the `{`, or `{}` with nothing inside: whole key.
        None | Some(0) => key,
        Some(close) => &rest[..close],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31C3
        );
    }

    #[test]
    fn known_vectors() {
        for (key, slot) in [
            (&b"foo"[..], 12182),
            (b"bar", 5061),
            (b"hello", 866),
            (b"a", 15495),
            (b"FOO", 3028),
            (b"key9184688", 10923),
            (b"06S", 0),
            (b"aga", 609),
            (b"{user1000}.following", 3443),
        ] {
            assert_eq!(key_hash_slot(key), slot, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn hash_tag_edge_cases() {
        // Empty tag: the whole key is hashed, not the later `{bar}`.
        assert_eq!(key_hash_slot(b"foo{}{bar}"), 8363);
        assert_ne!(key_hash_slot(b"foo{}{bar}"), key_hash_slot(b"bar"));
        // First `{`, first `}` after it: the tag is `{bar`.
        assert_eq!(key_hash_slot(b"foo{{bar}}zap"), 4015);
        assert_eq!(key_hash_slot(b"foo{{bar}}zap"), key_hash_slot(b"{bar"));
        // Only the first tag counts.
        assert_eq!(key_hash_slot(b"foo{bar}{zap}"), 5061);
        // `}` without a `{` before it: whole key.
        assert_eq!(
            key_hash_slot(b"bar}"),
            crc16::State::<crc16::XMODEM>::calculate(b"bar}") & 0x3FFF
        );
        // `{` without a `}` after it: whole key.
        assert_eq!(
            key_hash_slot(b"foo{bar"),
            crc16::State::<crc16::XMODEM>::calculate(b"foo{bar") & 0x3FFF
        );
        // A `}` before the `{` does not close it.
        assert_eq!(key_hash_slot(b"}x{bar}"), key_hash_slot(b"bar"));
        // Empty key.
        assert_eq!(key_hash_slot(b""), 0);
        // Same tag, same slot.
        assert_eq!(
            key_hash_slot(b"{user1000}.followers"),
            key_hash_slot(b"{user1000}.following")
        );
    }

    #[test]
    fn slot_is_in_range() {
        for i in 0u32..5000 {
            assert!(usize::from(key_hash_slot(&i.to_le_bytes())) < CLUSTER_SLOTS);
        }
    }
}

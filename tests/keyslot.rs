//! Every row of `tests/data/keyslots.tsv` (real `CLUSTER KEYSLOT` answers
//! from Redis 7.0.15) must match `key_hash_slot`.

use redsim::node::slots::key_hash_slot;

fn decode_hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

#[test]
fn every_keyslot_row_matches_redis() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keyslots.tsv"
    ))
    .expect("read keyslots.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (hex_col, len_col, slot_col) = (col("key_hex"), col("key_len"), col("slot"));
    let mut rows = 0;
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let key = decode_hex(fields[hex_col]);
        let len: usize = fields[len_col].parse().expect("key_len");
        assert_eq!(key.len(), len, "row {}: key length", n + 2);
        let slot: u16 = fields[slot_col].parse().expect("slot");
        assert_eq!(key_hash_slot(&key), slot, "row {}: {line}", n + 2);
        rows += 1;
    }
    assert_eq!(rows, 604);
}

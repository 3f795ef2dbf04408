//! TEMPORARY: replaced by the key→slot module on merge.
pub const CLUSTER_SLOTS: usize = 16384;

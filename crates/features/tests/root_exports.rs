//! Other crates import from the crate root, whatever module an item lives in: every
//! public item must stay reachable there under its name. This compiles or fails.

#[allow(unused_imports)]
use portwatch_features::{
    CLIP, Carry, DAY_SLOTS, Evidence, FeatureSpec, HIGH_ENTROPY, LOCAL_ADDR_SHARE, MAX_SEEN_NAMES,
    MAX_TRACKED_REMOTES, MIN_SCALE, N_BUCKETS, N_FEATURES, N_TIME, OFFSET_SHARE, PktRow,
    RoundBuilder, RoundKeys, SCAN_HORIZON, SECOND, SPEC_VERSION, Scaler, ScanTracker, Seen,
    SockRow, Step, calendar, calendar_inputs, day_slot, entropy, feature_names, fnv1a,
    listen_bucket, port_key, quantile_sorted,
};

#[test]
fn root_items_keep_their_values() {
    assert_eq!(SPEC_VERSION, 2);
    assert_eq!(N_FEATURES, feature_names().len());
    assert_eq!(FeatureSpec::current().buckets, N_BUCKETS);
    assert_eq!(calendar::SECOND, SECOND);
}

//! Features per time step (one scanner sample): the feature spec, the stable hashes,
//! the seen-set of listening ports and DNS names, the round builder that turns stored
//! socket rows and packets into steps, the robust scaler, and the calendar inputs.
//!
//! It is its own crate, with no SQLite and no Burn, so that the simulator (which aims
//! its backdoor at [`listen_bucket`]) shares these definitions with the detector while
//! its dependency tree, and the collector's, stay light. The store crate reads rows
//! into [`SockRow`] and [`PktRow`]; the model crate trains on and scores the [`Step`]s.
//!
//! A step's socket features come from the `rounds_ports` rows of its sample. Its traffic
//! features come from the packets between its sample and the next one; the round's last
//! sample has no next sample inside the round, so its interval is merged into the one
//! before and both steps carry the same traffic figures (otherwise every 12th step would
//! show an empty sliver of time, which the model would have to learn as a pattern).
//!
//! Direction rule (the schema stores no local addresses): the host's own addresses are
//! learnt from traffic — in a host capture they are on the host's side (the side whose
//! port the host has a socket on) of nearly every packet, so an address on that side of
//! at least a fifth of a round's packets is local for the next round.
//! A packet from a local address to a non-local one is *outbound*, the reverse
//! *inbound*. Otherwise (first round, loopback) ports decide: outbound when the source
//! port is one the host has a socket on in this round and the destination port is not,
//! inbound in the mirror case, and else the side with the higher port number is taken as
//! the client. The remote address and port are the other side's.
//!
//! Modules: [`spec`] (the features and their order), [`hash`], [`seen`], [`input`]
//! (the rows read), [`builder`] (rows to steps), with [`traffic`] (one step's packets)
//! and [`scan_tracker`] (closed-port probes across rounds) and [`repeats`]
//! (connections per remote and port) and [`uploads`] (bytes per program and remote)
//! and [`peers`] (the networks each program reaches),
//! [`scaler`] and
//! [`calendar`]. Everything public is re-exported here, and other crates import it
//! from the root.

pub mod builder;
pub mod calendar;
pub mod hash;
pub mod input;
pub mod peers;
pub mod repeats;
pub mod scaler;
pub mod scan_tracker;
pub mod seen;
pub mod spec;
pub mod traffic;
pub mod uploads;

pub use builder::{Carry, Evidence, LOCAL_ADDR_SHARE, RoundBuilder, Step};
pub use calendar::{DAY_SLOTS, SECOND, calendar_inputs, day_slot};
pub use hash::{fnv1a, listen_bucket};
pub use input::{PktRow, SockRow};
pub use peers::{MAX_KNOWN_PEERS, Peers};
pub use repeats::{MAX_ROUND_CLIENTS, RECEIVED_MARGIN, client_key, received_limit, repeat_limit};
pub use scaler::{CLIP, MIN_SCALE, OFFSET_SHARE, Scaler, quantile_sorted};
pub use scan_tracker::{MAX_TRACKED_REMOTES, SCAN_HORIZON, ScanTracker};
pub use seen::{
    ANY_SERVICE, Clients, MAX_KNOWN_CLIENTS, MAX_KNOWN_RESOLVERS, MAX_SEEN_NAMES, RoundKeys, Seen,
    port_key,
};
pub use spec::{FeatureSpec, N_BUCKETS, N_FEATURES, N_TIME, SPEC_VERSION, feature_names};
pub use traffic::{HIGH_ENTROPY, entropy};
pub use uploads::{UPLOAD_MARGIN, upload_limit};

//! Packet capture for portwatch: where frames come from (live libpcap, pcap/pcapng
//! files) and what they mean (a parser from `(bytes, link type)` to a [`Packet`]).
//!
//! Why it is split this way:
//! * the parser ([`Parser`]) never sees a pcap handle, so live capture, files and tests
//!   share one code path and it can be fed hostile bytes directly (it never panics);
//! * the sources sit behind one [`PacketSource`] trait, so the collector has one capture
//!   loop for `--interface` and `--read`, and tests can substitute a fake;
//! * libpcap is behind the default `pcap` feature, so the store crate can use
//!   [`Packet`] without linking libpcap; `quic-sni` (on with `pcap`) adds ring to read
//!   the SNI of QUIC client Initial packets, whose keys anyone can derive.
//!
//! Counts are checked against tshark 4.0 on a set of reference captures
//! (`tests/pcaps.rs`); where they differ on purpose, `tests/deviations.tsv` names the
//! rule (listed in [`parse`]'s documentation) that explains it.

pub(crate) mod dns;
pub mod error;
pub mod escape;
pub mod fragments;
pub mod fuzz;
pub mod hello;
pub mod packet;
pub mod parse;
pub(crate) mod quic;
#[cfg(feature = "quic-sni")]
pub(crate) mod quic_sni;
pub mod source;
pub(crate) mod tls;

pub use error::Error;
pub use packet::{DnsKind, Layer, Layers, Packet, Transport};
pub use parse::Parser;
#[cfg(feature = "pcap")]
pub use source::{FileSource, LiveConfig, LiveSource, check_filter, default_device};
pub use source::{Frame, PacketSource, Stats, copy_payload};

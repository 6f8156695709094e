//! Socket-table sources for portwatch: which local TCP/UDP ports are in use, in
//! which state, and by which process.
//!
//! The collector's scanner thread samples a [`SocketSource`] every few seconds and
//! folds each sample into `rounds_ports` rows with [`aggregate`]. Three sources exist:
//!
//! - [`SockDiag`], the default for live sampling: the kernel's own tables over
//!   netlink sock_diag (as ss reads them), with owners found through `/proc/PID/fd`.
//!   Each table falls back to its `/proc/net` file when netlink cannot dump it.
//! - [`ProcNet`]: the same tables as text, `/proc/net/{tcp,tcp6,udp,udp6}`, under a
//!   root directory, so tests run the real code on recorded `/proc` trees. Twice as
//!   slow as netlink with 10,000 sockets (the kernel formats text), hence not the
//!   default; the parser is the pure function [`parse_table`].
//! - [`BindProbe`], `--scan-method bind`: the original design's method, kept and fixed
//!   (UDP and IPv6 too, and a refused bind is reported apart, never as "occupied").
//!
//! Why here and not in the collector: the socket table is an OS input, and the design
//! puts every OS input behind a small trait so the binaries can be tested on fakes
//! ([`Replay`]) and the OS layer on recorded files.

pub mod attribution;
pub mod bind;
pub mod error;
pub mod netns;
pub mod owners;
pub mod procnet;
pub mod sockdiag;
pub mod socket;
pub mod sockstat;
pub mod source;

pub use attribution::{SharedOwners, View, interface_addrs};
pub use bind::{BindProbe, Probe, UNKNOWN_UID, classify};
pub use error::Error;
pub use owners::Owner;
pub use procnet::{ProcNet, parse_table};
pub use sockdiag::SockDiag;
pub use socket::{PortUsage, Socket, Transport, aggregate};
pub use source::{Replay, SocketSource};

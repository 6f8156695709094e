//! Socket-table sources for portwatch.

pub mod socket;

pub use socket::{PortUsage, Socket, Transport, aggregate};

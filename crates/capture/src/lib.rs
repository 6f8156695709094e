//! Packet capture for portwatch: sources (live libpcap, pcap/pcapng files) and a frame
//! parser that is a pure function of `(bytes, link type)`.

pub mod packet;

pub use packet::{DnsKind, Layer, Layers, Packet, Transport};

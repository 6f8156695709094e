//! The frame parser: `(bytes, link type, wire length) → Packet`.
//!
//! It never sees a pcap handle (as in sniffnet), so the same code serves live capture,
//! files and tests, and it is fed hostile bytes in the tests: every index is checked and
//! nothing panics. A frame that fails part-way keeps the layers that parsed and is
//! marked `malformed`; failures that only come from the capture having been cut short
//! (snaplen, caplen < wire length) are not called malformed, as tcpdump and tshark do.
//!
//! Link layers are read by hand (a handful of fixed offsets, and etherparse does not
//! know NULL/LOOP or SLL2); IPv4/IPv6 with extension headers and the TCP/UDP headers go
//! through etherparse's lax slicers, which accept a length field larger than what was
//! captured. What is deliberately *not* done — the numbered rules that
//! `tests/deviations.tsv` cites for every difference from tshark:
//! 1. IP fragments are not reassembled: the first fragment is parsed as far as it goes,
//!    later fragments have no transport layer.
//! 2. TCP segments are not reassembled: DNS over TCP is read from a segment that starts a
//!    length-prefixed message, only the first message of a segment is read.
//! 3. Tunnels (GRE, VXLAN, GTP, IP-in-IP) are not decoded.
//! 4. The UDP length field is honoured: bytes after it are not UDP payload.
//! 5. QUIC is recognised by a heuristic (`src/quic.rs` states it).

use std::collections::HashSet;
use std::net::IpAddr;

use etherparse::{ArpPacketSlice, IpNumber, Ipv6ExtensionSlice, LaxIpSlice, TcpSlice, UdpSlice};

use crate::escape::escape;
use crate::packet::{Layer, Packet, Transport};
use crate::{dns, quic, tls};

/// libpcap link types (DLT values as `pcap_datalink` returns them) the parser decodes.
pub mod linktype {
    /// BSD loopback, AF in host byte order.
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    /// DLT_RAW on most systems (a file's LINKTYPE_RAW 101 is read as 12 on Linux).
    pub const RAW_12: i32 = 12;
    /// DLT_RAW on OpenBSD.
    pub const RAW_14: i32 = 14;
    pub const RAW: i32 = 101;
    /// OpenBSD loopback, AF in network byte order.
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad (QinQ) and the old pre-standard QinQ tags.
const VLAN_TPIDS: [u16; 4] = [0x8100, 0x88a8, 0x9100, 0x9200];
const DNS_PORT: u16 = 53;
/// Where tshark dissects any UDP payload as QUIC.
const QUIC_PORT: u16 = 443;

/// A UDP flow, the same key for both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

impl FlowKey {
    fn new(a: (IpAddr, u16), b: (IpAddr, u16)) -> Self {
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

/// Parses frames. Its only state is the bounded set of UDP flows already seen as QUIC,
/// so that short-header packets (which carry no version) on those flows count as QUIC.
#[derive(Debug, Clone)]
pub struct Parser {
    quic_flows: HashSet<FlowKey>,
    quic_flow_cap: usize,
    /// Buffers for decrypting QUIC Initial packets, reused across packets.
    #[cfg(feature = "quic-sni")]
    quic_scratch: crate::quic_sni::Scratch,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

/// Where parsing stands for one frame.
struct Ctx<'a> {
    frame: &'a [u8],
    /// The capture holds fewer bytes than the wire did: running out of bytes is then
    /// truncation, not malformation.
    cut: bool,
    p: Packet,
}

impl Ctx<'_> {
    /// A header ran past the captured bytes.
    fn short(&mut self) {
        if !self.cut {
            self.p.malformed = true;
        }
    }

    fn offset_of(&self, s: &[u8]) -> usize {
        (s.as_ptr() as usize).saturating_sub(self.frame.as_ptr() as usize)
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

impl Parser {
    /// Flows remembered as QUIC before the set is cleared (a flow then needs one more
    /// long-header packet to be recognised again).
    pub const QUIC_FLOW_CAP: usize = 16_384;

    pub fn new() -> Self {
        Self::with_quic_flow_cap(Self::QUIC_FLOW_CAP)
    }

    /// A parser remembering at most `cap` QUIC flows (at least 1).
    pub fn with_quic_flow_cap(cap: usize) -> Self {
        Parser {
            quic_flows: HashSet::new(),
            quic_flow_cap: cap.max(1),
            #[cfg(feature = "quic-sni")]
            quic_scratch: Default::default(),
        }
    }

    /// Number of UDP flows currently remembered as QUIC.
    pub fn quic_flows(&self) -> usize {
        self.quic_flows.len()
    }

    /// Parses one frame as captured (`frame` may be shorter than `wire_len`) with the
    /// libpcap link type `linktype`. Never panics; fills everything but the timestamp,
    /// payload copy and owning process.
    pub fn parse(&mut self, frame: &[u8], linktype: i32, wire_len: u32) -> Packet {
        let mut c = Ctx {
            frame,
            cut: (frame.len() as u64) < u64::from(wire_len),
            p: Packet {
                length: wire_len,
                ..Packet::default()
            },
        };
        match linktype {
            linktype::ETHERNET => {
                c.p.layers.push(Layer::Eth);
                match be16(frame, 12) {
                    Some(et) => self.ether_type(&mut c, et, 14),
                    None => c.short(),
                }
            }
            linktype::LINUX_SLL => {
                c.p.layers.push(Layer::Sll);
                match (be16(frame, 14), frame.len() >= 16) {
                    (Some(et), true) => self.ether_type(&mut c, et, 16),
                    _ => c.short(),
                }
            }
            linktype::LINUX_SLL2 => {
                c.p.layers.push(Layer::Sll2);
                match (be16(frame, 0), frame.len() >= 20) {
                    (Some(et), true) => self.ether_type(&mut c, et, 20),
                    _ => c.short(),
                }
            }
            linktype::NULL | linktype::LOOP => {
                c.p.layers.push(Layer::Null);
                match frame.get(..4) {
                    Some(h) => {
                        let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
                        let be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                        // DLT_NULL is in the capturing host's byte order, LOOP in network
                        // order: the family is small, so the right reading is < 2^16.
                        let af = if le <= 0xffff { le } else { be };
                        match af {
                            2 => self.ip(&mut c, 4, 4),
                            24 | 28 | 30 => self.ip(&mut c, 4, 6),
                            _ => {}
                        }
                    }
                    None => c.short(),
                }
            }
            linktype::RAW | linktype::RAW_12 | linktype::RAW_14 => {
                c.p.layers.push(Layer::Raw);
                match frame.first().map(|b| b >> 4) {
                    Some(4) => self.ip(&mut c, 0, 4),
                    Some(6) => self.ip(&mut c, 0, 6),
                    Some(_) => c.p.malformed = true,
                    None => c.short(),
                }
            }
            linktype::IPV4 => {
                c.p.layers.push(Layer::Raw);
                self.ip(&mut c, 0, 4);
            }
            linktype::IPV6 => {
                c.p.layers.push(Layer::Raw);
                self.ip(&mut c, 0, 6);
            }
            other => c.p.layers.push(Layer::Dlt(other as u32)),
        }
        c.p
    }

    /// Decodes from an EtherType at `off`: VLAN tags (any number, one `vlan` layer each,
    /// capped by `Layers`), then ARP or IP.
    fn ether_type(&mut self, c: &mut Ctx<'_>, mut et: u16, mut off: usize) {
        while VLAN_TPIDS.contains(&et) {
            match be16(c.frame, off + 2) {
                Some(next) => {
                    c.p.layers.push(Layer::Vlan);
                    et = next;
                    off += 4;
                }
                None => {
                    c.short();
                    return;
                }
            }
        }
        match et {
            ETHERTYPE_IPV4 => self.ip(c, off, 4),
            ETHERTYPE_IPV6 => self.ip(c, off, 6),
            ETHERTYPE_ARP => {
                c.p.layers.push(Layer::Arp);
                let rest = c.frame.get(off..).unwrap_or_default();
                if ArpPacketSlice::from_slice(rest).is_err() {
                    c.short();
                }
            }
            // An 802.3 length (LLC follows) or a protocol we do not decode.
            _ => {}
        }
    }

    /// IPv4 or IPv6 at `off`; `version` is what the link layer announced.
    fn ip(&mut self, c: &mut Ctx<'_>, off: usize, version: u8) {
        let rest = c.frame.get(off..).unwrap_or_default();
        let layer = if version == 4 {
            Layer::Ipv4
        } else {
            Layer::Ipv6
        };
        let (ip, ext_err) = match LaxIpSlice::from_slice(rest) {
            Ok(x) => x,
            Err(e) => {
                // The announced protocol is kept as a layer, as tshark shows `ip` for a
                // bogus header: the frame claims to be IP and is a broken one.
                c.p.layers.push(layer);
                match e {
                    etherparse::err::ip::LaxHeaderSliceError::Len(_) => c.short(),
                    etherparse::err::ip::LaxHeaderSliceError::Content(_) => c.p.malformed = true,
                }
                return;
            }
        };
        c.p.layers.push(match ip {
            LaxIpSlice::Ipv4(_) => Layer::Ipv4,
            LaxIpSlice::Ipv6(_) => Layer::Ipv6,
        });
        c.p.src_addr = Some(ip.source_addr());
        c.p.dst_addr = Some(ip.destination_addr());
        if ext_err.is_some() {
            // An IPv6 extension header (or IPv4 AH) is broken: the transport is unknown.
            c.short();
            return;
        }
        let payload = ip.payload();
        if payload.incomplete {
            // The IP length claims more than the frame holds: truncation if the capture
            // was cut, an inconsistent header if not.
            c.short();
        }
        if payload.fragmented {
            let first = match &ip {
                LaxIpSlice::Ipv4(v4) => v4.header().fragments_offset().value() == 0,
                LaxIpSlice::Ipv6(v6) => v6.extensions().clone().into_iter().all(|e| match e {
                    Ipv6ExtensionSlice::Fragment(f) => f.fragment_offset().value() == 0,
                    _ => true,
                }),
            };
            // Rule 1: later fragments carry no transport header.
            if !first {
                return;
            }
        }
        self.transport(c, payload.ip_number, payload.payload, payload.fragmented);
    }

    /// `fragment`: `data` is the first fragment of a larger datagram.
    fn transport(&mut self, c: &mut Ctx<'_>, proto: IpNumber, data: &[u8], fragment: bool) {
        match proto {
            IpNumber::TCP => self.tcp(c, data),
            IpNumber::UDP => self.udp(c, data, fragment),
            IpNumber::ICMP => c.p.layers.push(Layer::Icmp),
            IpNumber::IPV6_ICMP => c.p.layers.push(Layer::Icmpv6),
            // Rule 3: tunnels and everything else stop here.
            _ => {}
        }
    }

    fn ports_by_hand(c: &mut Ctx<'_>, data: &[u8]) {
        c.p.src_port = be16(data, 0);
        c.p.dst_port = be16(data, 2);
    }

    fn tcp(&mut self, c: &mut Ctx<'_>, data: &[u8]) {
        if data.is_empty() {
            c.short();
            return;
        }
        c.p.layers.push(Layer::Tcp);
        c.p.transport = Some(Transport::Tcp);
        let tcp = match TcpSlice::from_slice(data) {
            Ok(t) => t,
            Err(e) => {
                // Keep what the truncated header holds, as tshark shows `tcp` for it.
                Self::ports_by_hand(c, data);
                c.p.tcp_flags = data.get(13).copied();
                match e {
                    etherparse::err::tcp::HeaderSliceError::Len(_) => c.short(),
                    etherparse::err::tcp::HeaderSliceError::Content(_) => c.p.malformed = true,
                }
                return;
            }
        };
        c.p.src_port = Some(tcp.source_port());
        c.p.dst_port = Some(tcp.destination_port());
        c.p.tcp_flags = data.get(13).copied();
        let payload = tcp.payload();
        let start = c.offset_of(payload);
        c.p.payload_range = Some((start, start + payload.len()));
        if payload.is_empty() {
            return;
        }
        if tcp.source_port() == DNS_PORT || tcp.destination_port() == DNS_PORT {
            // Rule 2: a segment that starts a message: 2-byte length, then the message.
            if let Some(len) = be16(payload, 0) {
                let len = usize::from(len);
                if len >= 12 {
                    let msg = &payload[2..payload.len().min(2 + len)];
                    if let Some(info) = dns::parse(msg) {
                        self.apply_dns(c, info, msg.len() < len);
                        return;
                    }
                }
            }
        }
        if tls::is_record(payload) {
            c.p.layers.push(Layer::Tls);
            if let Some(sni) = tls::client_hello_sni(payload) {
                c.p.server_name = Some(escape(sni));
            }
        }
    }

    fn udp(&mut self, c: &mut Ctx<'_>, data: &[u8], fragment: bool) {
        if data.is_empty() {
            c.short();
            return;
        }
        c.p.layers.push(Layer::Udp);
        c.p.transport = Some(Transport::Udp);
        // Rule 4: `from_slice_lax` cuts the payload at the UDP length field when the
        // capture holds more, and falls back to the captured bytes when it holds less.
        let udp = match UdpSlice::from_slice_lax(data) {
            Ok(u) => u,
            Err(_) => {
                Self::ports_by_hand(c, data);
                c.short();
                return;
            }
        };
        let declared = usize::from(udp.length());
        if declared < 8 {
            // Shorter than its own header (tshark: "Bad length value").
            c.p.malformed = true;
        } else if declared > data.len() && !fragment {
            // Longer than the IP payload: cut by the snaplen, or inconsistent.
            c.short();
        }
        let (sport, dport) = (udp.source_port(), udp.destination_port());
        c.p.src_port = Some(sport);
        c.p.dst_port = Some(dport);
        let payload = udp.payload();
        let start = c.offset_of(payload);
        c.p.payload_range = Some((start, start + payload.len()));
        if payload.is_empty() {
            return;
        }
        if sport == DNS_PORT || dport == DNS_PORT {
            if let Some(info) = dns::parse(payload) {
                self.apply_dns(c, info, payload.len() < declared.saturating_sub(8));
            }
            return;
        }
        let (Some(src), Some(dst)) = (c.p.src_addr, c.p.dst_addr) else {
            return;
        };
        let key = FlowKey::new((src, sport), (dst, dport));
        let long = quic::long_header(payload);
        let is_quic = match long {
            Some(quic::LongHeader::Known) => true,
            Some(quic::LongHeader::Weak) => {
                sport == QUIC_PORT || dport == QUIC_PORT || self.quic_flows.contains(&key)
            }
            None => false,
        };
        if is_quic {
            if self.quic_flows.len() >= self.quic_flow_cap && !self.quic_flows.contains(&key) {
                self.quic_flows.clear();
            }
            self.quic_flows.insert(key);
            c.p.layers.push(Layer::Quic);
            #[cfg(feature = "quic-sni")]
            if long.is_some() {
                c.p.server_name = crate::quic_sni::initial_sni(payload, &mut self.quic_scratch);
            }
        } else if self.quic_flows.contains(&key) {
            c.p.layers.push(Layer::Quic);
        }
    }

    /// Records a DNS message; `cut_short` when the message is shorter than its framing
    /// (UDP length or TCP length prefix) says — cut by the snaplen, by IP fragmentation
    /// or by TCP segmentation, which is not malformation.
    fn apply_dns(&mut self, c: &mut Ctx<'_>, info: dns::DnsInfo, cut_short: bool) {
        c.p.layers.push(Layer::Dns);
        c.p.dns = Some(info.kind);
        c.p.qry_name = info.qry_name;
        c.p.qry_name_more = info.qry_name_more;
        c.p.resp_name = info.resp_name;
        if info.malformed && !cut_short {
            c.p.malformed = true;
        }
    }
}

#[cfg(test)]
mod tests;

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
//! 1. IP fragments are reassembled ([`crate::fragments`], bounded): the datagram is
//!    parsed on the frame that completes it, the frames before show their IP layer only,
//!    as tshark shows them. A datagram whose fragments never all come has no transport
//!    layer on any frame; a first fragment whose own bytes are not all there (cut, or a
//!    length that lies) is read as far as it goes, as tshark does.
//! 2. TCP segments are not reassembled: DNS over TCP is read from a segment that starts a
//!    length-prefixed message, only the first message of a segment is read. The one
//!    exception is a TLS ClientHello split over segments ([`crate::hello`]): its server
//!    name is read from the segment that completes it, as tshark shows it.
//! 3. Tunnels are decoded, [`MAX_TUNNELS`] deep: IP-in-IP (4in4, 6in4, 4in6, 6in6),
//!    GRE (checksum, key, sequence; IPv4, IPv6, transparent Ethernet bridging and NVGRE,
//!    ERSPAN types I–III), VXLAN (UDP 4789), GENEVE (6081), GTP-U (2152), Teredo
//!    (3544), CAPWAP data (5247: 802.11 or Ethernet frames from access points), PPPoE
//!    sessions, MPLS stacks and Cisco FabricPath. The packet describes the innermost
//!    flow; the outermost IP addresses are kept apart ([`Packet::outer_src`]). Deeper
//!    nesting stops there and is malformed. The packet an ICMP error quotes adds its
//!    layers to the stack, as tshark shows them, but the row stays the error's. Other
//!    encapsulations (L2TP, for one) are not decoded.
//! 4. The UDP length field is honoured: bytes after it are not UDP payload.
//! 5. QUIC is recognised by a heuristic (`src/quic.rs` states it).

use std::collections::HashSet;
use std::net::IpAddr;

use etherparse::{ArpPacketSlice, IpNumber, Ipv6ExtensionSlice, LaxIpSlice, TcpSlice, UdpSlice};

use crate::escape::escape;
use crate::fragments::Fragments;
use crate::hello::{Hellos, StreamKey};
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
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: [u16; 2] = [0x8847, 0x8848];
const ETHERTYPE_FABRICPATH: u16 = 0x8903;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;
const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;
const GTP_U_PORT: u16 = 2152;
const TEREDO_PORT: u16 = 3544;
const CAPWAP_DATA_PORT: u16 = 5247;
/// Tunnels decoded inside one another before a frame is cut there as malformed: real
/// stacks are two or three deep (GTP-U in MPLS in a VXLAN overlay); a frame of nested
/// GRE headers must not recurse without bound.
pub const MAX_TUNNELS: u8 = 4;
const DNS_PORT: u16 = 53;
/// Where tshark dissects any UDP payload as QUIC.
const QUIC_PORT: u16 = 443;

/// A UDP flow, the same key for both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

/// The key's bytes in one write: every UDP packet looks its flow up, and the derived
/// hash's eight writes (each address's variant, length and octets, each port) made the
/// lookup 6 % of the reading thread's instructions (callgrind).
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut buf = [0u8; 36];
        let mut n = 0;
        for (addr, port) in [self.lo, self.hi] {
            n += match addr {
                IpAddr::V4(a) => {
                    buf[n..n + 4].copy_from_slice(&a.octets());
                    4
                }
                IpAddr::V6(a) => {
                    buf[n..n + 16].copy_from_slice(&a.octets());
                    16
                }
            };
            buf[n..n + 2].copy_from_slice(&port.to_be_bytes());
            n += 2;
        }
        state.write(&buf[..n]);
    }
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
    /// ClientHellos waiting for their next segment.
    hellos: Hellos<StreamKey>,
    /// IP datagrams waiting for their other fragments.
    fragments: Fragments,
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
    /// Tunnels entered so far.
    depth: u8,
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

    /// Enters a tunnel whose header is `layer`: the first one keeps the outer IP
    /// addresses aside. False (and malformed) past [`MAX_TUNNELS`].
    fn enter(&mut self, layer: Layer) -> bool {
        self.enter_as(Some(layer))
    }

    /// Enters a tunnel without a header of its own — IP in IP, an Ethernet frame
    /// bridged over GRE — whose inner `ipv4`/`ipv6`/`eth` layer shows it.
    fn enter_bare(&mut self) -> bool {
        self.enter_as(None)
    }

    fn enter_as(&mut self, layer: Option<Layer>) -> bool {
        if self.depth >= MAX_TUNNELS {
            self.p.malformed = true;
            return false;
        }
        if self.depth == 0 {
            self.p.outer_src = self.p.src_addr;
            self.p.outer_dst = self.p.dst_addr;
        }
        self.depth += 1;
        if let Some(l) = layer {
            self.p.layers.push(l);
        }
        true
    }
}

/// A fragment's identification, byte offset and "more fragments" flag.
fn fragment_of(ip: &LaxIpSlice<'_>) -> Option<(u32, usize, bool)> {
    match ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            Some((
                u32::from(h.identification()),
                usize::from(h.fragments_offset().value()) * 8,
                h.more_fragments(),
            ))
        }
        LaxIpSlice::Ipv6(v6) => v6.extensions().clone().into_iter().find_map(|e| match e {
            Ipv6ExtensionSlice::Fragment(f) => Some((
                f.identification(),
                usize::from(f.fragment_offset().value()) * 8,
                f.more_fragments(),
            )),
            _ => None,
        }),
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
            hellos: Hellos::default(),
            fragments: Fragments::default(),
            #[cfg(feature = "quic-sni")]
            quic_scratch: Default::default(),
        }
    }

    /// Number of UDP flows currently remembered as QUIC.
    pub fn quic_flows(&self) -> usize {
        self.quic_flows.len()
    }

    /// Bytes of IP fragments held, waiting for the rest of their datagram (at most
    /// [`crate::fragments::MAX_BYTES`]).
    pub fn held_fragment_bytes(&self) -> usize {
        self.fragments.bytes()
    }

    /// Bytes of split ClientHellos held, waiting for their next segment (at most
    /// [`crate::hello::MAX_BYTES`]).
    pub fn held_hello_bytes(&self) -> usize {
        let quic = {
            #[cfg(feature = "quic-sni")]
            {
                self.quic_scratch.held.bytes()
            }
            #[cfg(not(feature = "quic-sni"))]
            0
        };
        self.hellos.bytes() + quic
    }

    /// Parses one frame as captured (`frame` may be shorter than `wire_len`) with the
    /// libpcap link type `linktype`. Never panics; fills everything but the timestamp,
    /// payload copy and owning process.
    pub fn parse(&mut self, frame: &[u8], linktype: i32, wire_len: u32) -> Packet {
        self.hellos.tick();
        self.fragments.tick();
        #[cfg(feature = "quic-sni")]
        self.quic_scratch.held.tick();
        let mut c = Ctx {
            frame,
            cut: (frame.len() as u64) < u64::from(wire_len),
            depth: 0,
            p: Packet {
                length: wire_len,
                ..Packet::default()
            },
        };
        match linktype {
            linktype::ETHERNET => self.ethernet(&mut c, 0),
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

    /// An Ethernet header at `off` (a frame's own, or one a tunnel carries).
    fn ethernet(&mut self, c: &mut Ctx<'_>, off: usize) {
        c.p.layers.push(Layer::Eth);
        match be16(c.frame, off + 12) {
            Some(et) => self.ether_type(c, et, off + 14),
            None => c.short(),
        }
    }

    /// An IP header at `off` whose version is read from its first nibble, as MPLS,
    /// GTP-U and Teredo carry it (no protocol field says which). Anything else ends the
    /// stack there, as tshark's heuristics would leave it as data.
    fn ip_by_nibble(&mut self, c: &mut Ctx<'_>, off: usize) {
        match c.frame.get(off).map(|b| b >> 4) {
            Some(4) => self.ip(c, off, 4),
            Some(6) => self.ip(c, off, 6),
            Some(_) => {}
            None => c.short(),
        }
    }

    /// Decodes from an EtherType at `off`: VLAN tags (any number, one `vlan` layer each,
    /// capped by `Layers`), then ARP, IP, or an encapsulation of them.
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
            ETHERTYPE_TEB if c.enter_bare() => self.ethernet(c, off),
            ETHERTYPE_PPPOE_SESSION if c.enter(Layer::Pppoes) => {
                // Version/type, code, session id, length; then PPP.
                self.ppp(c, off + 6);
            }
            et if ETHERTYPE_MPLS.contains(&et) && c.enter(Layer::Mpls) => {
                // Labels of 4 bytes up to the one with the bottom-of-stack bit.
                let mut at = off;
                loop {
                    match c.frame.get(at + 2) {
                        Some(b) if b & 1 == 1 => break,
                        Some(_) => at += 4,
                        None => return c.short(),
                    }
                }
                self.ip_by_nibble(c, at + 4);
            }
            ETHERTYPE_FABRICPATH if c.enter(Layer::Cfp) => {
                // The FabricPath tag's 2 bytes after its EtherType, then the frame
                // carried, with its own Ethernet header.
                self.ethernet(c, off + 2);
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
            // Rule 1: held until the datagram is whole.
            let Some((id, offset, more)) = fragment_of(&ip) else {
                return;
            };
            if payload.incomplete {
                // Not all of the fragment's bytes are here (cut by the snaplen, or a
                // length that lies): it cannot complete a datagram, and tshark then
                // reads a first fragment's payload as far as it goes.
                if offset == 0 {
                    self.transport(c, payload.ip_number, payload.payload);
                }
                return;
            }
            let key = (
                ip.source_addr(),
                ip.destination_addr(),
                id,
                payload.ip_number.0,
            );
            let Some(whole) = self.fragments.add(key, offset, more, payload.payload) else {
                return;
            };
            // Parsed in a context of its own: offsets into the datagram are not the
            // frame's, so no payload range either.
            let mut inner = Ctx {
                frame: &whole,
                cut: false,
                depth: c.depth,
                p: std::mem::take(&mut c.p),
            };
            self.transport(&mut inner, payload.ip_number, &whole);
            c.p = inner.p;
            c.p.payload_range = None;
            return;
        }
        self.transport(c, payload.ip_number, payload.payload);
    }

    fn transport(&mut self, c: &mut Ctx<'_>, proto: IpNumber, data: &[u8]) {
        match proto {
            IpNumber::TCP => self.tcp(c, data),
            IpNumber::UDP => self.udp(c, data),
            IpNumber::ICMP => {
                c.p.layers.push(Layer::Icmp);
                // Destination unreachable, source quench, redirect, time exceeded,
                // parameter problem: errors, which quote the packet that caused them.
                if matches!(data.first(), Some(3 | 4 | 5 | 11 | 12)) {
                    self.quoted(c, data.get(8..).unwrap_or_default());
                }
            }
            IpNumber::IPV6_ICMP => {
                c.p.layers.push(Layer::Icmpv6);
                // Destination unreachable, packet too big, time exceeded, parameter
                // problem.
                if matches!(data.first(), Some(1..=4)) {
                    self.quoted(c, data.get(8..).unwrap_or_default());
                }
            }
            // IP in IP: no header of its own (tshark shows `ip:ip`, as this stack does).
            IpNumber::IPV4 if c.enter_bare() => self.ip(c, c.offset_of(data), 4),
            IpNumber::IPV6 if c.enter_bare() => self.ip(c, c.offset_of(data), 6),
            IpNumber::GRE if c.enter(Layer::Gre) => self.gre(c, data),
            _ => {}
        }
    }

    /// The packet an ICMP error quotes (after its 8-byte header: RFC 792, RFC 4443), as
    /// far as tshark shows it: its IP, TCP or UDP and QUIC layers join the stack
    /// (`ipv6:icmpv6:ipv6:udp:quic`), while the row goes on describing the error
    /// itself — its addresses, no ports, counted as ICMP — because that is the packet
    /// on the wire. QUIC is recognised as on the wire, including a short header on a
    /// flow already seen as QUIC; nothing is learnt from a quote, and nothing deeper
    /// (names, server names) is read from one.
    fn quoted(&mut self, c: &mut Ctx<'_>, data: &[u8]) {
        let Ok((ip, _)) = LaxIpSlice::from_slice(data) else {
            return;
        };
        c.p.layers.push(match ip {
            LaxIpSlice::Ipv4(_) => Layer::Ipv4,
            LaxIpSlice::Ipv6(_) => Layer::Ipv6,
        });
        let payload = ip.payload();
        if payload.fragmented && fragment_of(&ip).is_none_or(|(_, offset, _)| offset != 0) {
            return;
        }
        match payload.ip_number {
            IpNumber::TCP if payload.payload.len() >= 8 => c.p.layers.push(Layer::Tcp),
            IpNumber::UDP => {
                let Ok(udp) = UdpSlice::from_slice_lax(payload.payload) else {
                    return;
                };
                c.p.layers.push(Layer::Udp);
                let (sport, dport) = (udp.source_port(), udp.destination_port());
                let key = FlowKey::new((ip.source_addr(), sport), (ip.destination_addr(), dport));
                let known = self.quic_flows.contains(&key);
                let quic = match quic::long_header(udp.payload()) {
                    Some(quic::LongHeader::Known) => true,
                    Some(quic::LongHeader::Weak) => {
                        sport == QUIC_PORT || dport == QUIC_PORT || known
                    }
                    None => known && !udp.payload().is_empty(),
                };
                if quic {
                    c.p.layers.push(Layer::Quic);
                }
            }
            _ => {}
        }
    }

    /// PPP from its protocol field at `off` (after PPPoE's session header, or in
    /// PPTP's GRE): IPv4 or IPv6; anything else (LCP, IPCP) ends the stack there.
    fn ppp(&mut self, c: &mut Ctx<'_>, off: usize) {
        c.p.layers.push(Layer::Ppp);
        match be16(c.frame, off) {
            Some(0x0021) => self.ip(c, off + 2, 4),
            Some(0x0057) => self.ip(c, off + 2, 6),
            Some(_) => {}
            None => c.short(),
        }
    }

    /// A GRE header (RFC 2784/2890: optional checksum, key and sequence number; the
    /// key carries NVGRE's virtual subnet), then what its protocol type names.
    fn gre(&mut self, c: &mut Ctx<'_>, data: &[u8]) {
        let (Some(flags), Some(proto)) = (be16(data, 0), be16(data, 2)) else {
            return c.short();
        };
        if flags & 0x0007 > 1 {
            // Versions 0 and 1 (PPTP's enhanced GRE) only.
            c.p.malformed = true;
            return;
        }
        let has_seq = flags & 0x1000 != 0;
        let mut len = 4;
        for bit in [0x8000u16, 0x2000, 0x1000] {
            // Checksum (with its reserved half), key, sequence number: 4 bytes each.
            if flags & bit != 0 {
                len += 4;
            }
        }
        if flags & 0x0007 == 1 && flags & 0x0080 != 0 {
            len += 4; // enhanced GRE's acknowledgement number
        }
        let off = c.offset_of(data) + len;
        if c.frame.len() < off {
            return c.short();
        }
        match proto {
            ETHERTYPE_ERSPAN_2 if c.enter(Layer::Erspan) => {
                // Type I has no header (and GRE no sequence number); type II 8 bytes.
                self.ethernet(c, if has_seq { off + 8 } else { off });
            }
            ETHERTYPE_ERSPAN_3 if c.enter(Layer::Erspan) => {
                // 12 bytes, then 8 of platform-specific subheader when the O bit is set.
                let Some(&b) = c.frame.get(off + 11) else {
                    return c.short();
                };
                self.ethernet(c, off + 12 + if b & 1 != 0 { 8 } else { 0 });
            }
            // PPP in enhanced GRE (PPTP): the address/control bytes may be left out.
            0x880b => {
                let at = if be16(c.frame, off) == Some(0xff03) {
                    off + 2
                } else {
                    off
                };
                self.ppp(c, at);
            }
            et => self.ether_type(c, et, off),
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
        // The stream's key is made only where a ClientHello is held or may start: not
        // for every segment.
        let stream = || match (c.p.src_addr, c.p.dst_addr) {
            (Some(s), Some(d)) => Some(((s, tcp.source_port()), (d, tcp.destination_port()))),
            _ => None,
        };
        let seq = tcp.sequence_number();
        if !self.hellos.is_empty()
            && let Some(key) = stream()
            && let Some(whole) = self.hellos.extend(&key, seq, payload)
        {
            c.p.layers.push(Layer::Tls);
            c.p.server_name = tls::client_hello_sni(&whole).map(escape);
            return;
        }
        if tls::is_record(payload) {
            c.p.layers.push(Layer::Tls);
            match tls::client_hello_sni(payload) {
                Some(sni) => c.p.server_name = Some(escape(sni)),
                None => {
                    if let (Some(need), Some(key)) = (tls::client_hello_len(payload), stream()) {
                        self.hellos.start(key, seq, payload, need);
                    }
                }
            }
        }
    }

    fn udp(&mut self, c: &mut Ctx<'_>, data: &[u8]) {
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
        } else if declared > data.len() {
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
        if self.udp_tunnel(c, sport, dport, payload) {
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

    /// A tunnel over UDP, recognised by its well-known port (either side, as tshark
    /// does) and a header that fits: true when one was decoded (or was one too deep).
    fn udp_tunnel(&mut self, c: &mut Ctx<'_>, sport: u16, dport: u16, payload: &[u8]) -> bool {
        let on = |port: u16| sport == port || dport == port;
        let off = c.offset_of(payload);
        if on(VXLAN_PORT) {
            // Flags with the I bit (VNI valid), 3 reserved, VNI, reserved; Ethernet.
            if payload.len() < 8 + 14 || payload[0] & 0x08 == 0 {
                return false;
            }
            if c.enter(Layer::Vxlan) {
                self.ethernet(c, off + 8);
            }
            return true;
        }
        if on(GENEVE_PORT) {
            // Version 0; options of 4-byte words; the protocol type an EtherType.
            let (Some(&b0), Some(proto)) = (payload.first(), be16(payload, 2)) else {
                return false;
            };
            let len = 8 + 4 * usize::from(b0 & 0x3f);
            if b0 >> 6 != 0 || payload.len() < len {
                return false;
            }
            if c.enter(Layer::Geneve) {
                self.ether_type(c, proto, off + len);
            }
            return true;
        }
        if on(GTP_U_PORT) {
            return self.gtp_u(c, payload, off);
        }
        if on(CAPWAP_DATA_PORT) {
            return self.capwap(c, payload, off);
        }
        if on(TEREDO_PORT) {
            // Optional authentication (type 1) and origin indication (type 0)
            // headers, then an IPv6 header.
            let mut at = 0;
            if be16(payload, 0) == Some(0x0001) {
                let (Some(&id), Some(&au)) = (payload.get(2), payload.get(3)) else {
                    return false;
                };
                at = 4 + usize::from(id) + usize::from(au) + 9;
            }
            if be16(payload, at) == Some(0x0000) {
                at += 8;
            }
            if payload.get(at).map(|b| b >> 4) != Some(6) || payload.len() < at + 40 {
                return false;
            }
            if c.enter(Layer::Teredo) {
                self.ip(c, off + at, 6);
            }
            return true;
        }
        false
    }

    /// CAPWAP's data channel (RFC 5415 §4.3; RFC 5416 for IEEE 802.11): a preamble of
    /// version 0 and type 0, the header length in 4-byte words, the wireless binding and
    /// the T flag: with T set and binding 1 the payload is an 802.11 frame, without T an
    /// Ethernet frame. A keep-alive or a fragment after the first carries none.
    fn capwap(&mut self, c: &mut Ctx<'_>, payload: &[u8], off: usize) -> bool {
        let [0, b1, b2, b3, ..] = *payload else {
            return false;
        };
        let len = 4 * usize::from(b1 >> 3);
        let binding = ((b2 & 0x3e) >> 1, b2 & 0x01 != 0);
        let (fragment, keep_alive) = (b3 & 0x80 != 0, b3 & 0x08 != 0);
        if len < 8 || payload.len() < len {
            return false;
        }
        if !c.enter(Layer::Capwap) || keep_alive {
            return true;
        }
        let first = be16(payload, 6).is_some_and(|o| o >> 3 == 0);
        if fragment && !first {
            return true;
        }
        match binding {
            (1, true) => self.wlan(c, off + len),
            (_, false) => self.ethernet(c, off + len),
            _ => {}
        }
        true
    }

    /// An IEEE 802.11 data frame at `off` (in CAPWAP): its header (24 bytes; 6 more with
    /// both DS bits, 2 for QoS, 4 more for HT control), then LLC/SNAP and an EtherType.
    /// Cisco controllers send the frame control field byte-swapped, as tshark assumes for
    /// CAPWAP; either order is read. A protected (encrypted) or empty (null) frame ends
    /// the stack at `wlan`.
    fn wlan(&mut self, c: &mut Ctx<'_>, off: usize) {
        let (Some(&a), Some(&b)) = (c.frame.get(off), c.frame.get(off + 1)) else {
            return c.short();
        };
        let is_data = |fc: u8| fc & 0x0f == 0x08;
        let (fc, flags) = match (is_data(a), is_data(b)) {
            (true, _) => (a, b),
            (false, true) => (b, a),
            _ => {
                c.p.layers.push(Layer::Wlan);
                return;
            }
        };
        c.p.layers.push(Layer::Wlan);
        let subtype = fc >> 4;
        let qos = subtype & 0x08 != 0;
        if subtype & 0x04 != 0 || flags & 0x40 != 0 {
            return;
        }
        let mut at = off + 24;
        if flags & 0x03 == 0x03 {
            at += 6;
        }
        if qos {
            at += if flags & 0x80 != 0 { 6 } else { 2 };
        }
        match (c.frame.get(at..at + 6), be16(c.frame, at + 6)) {
            (Some([0xaa, 0xaa, 0x03, ..]), Some(et)) => {
                c.p.layers.push(Layer::Llc);
                self.ether_type(c, et, at + 8);
            }
            (Some(_), Some(_)) => {}
            _ => c.short(),
        }
    }

    /// GTP-U (GTPv1, protocol type GTP): a G-PDU (message type 255) carries an IP
    /// packet after the 8-byte header, 4 more when any of the E, S, PN flags is set,
    /// and the chain of extension headers the E flag announces.
    fn gtp_u(&mut self, c: &mut Ctx<'_>, payload: &[u8], off: usize) -> bool {
        let (Some(&flags), Some(&kind)) = (payload.first(), payload.get(1)) else {
            return false;
        };
        if flags >> 5 != 1 || flags & 0x10 == 0 {
            return false;
        }
        if !c.enter(Layer::Gtp) {
            return true;
        }
        if kind != 0xff {
            // Echo, error indication, end marker: signalling, no user packet.
            return true;
        }
        let mut at = 8;
        if flags & 0x07 != 0 {
            at = 12;
            let mut next = payload.get(11).copied();
            while let Some(t) = next
                && t != 0
            {
                // Length in 4-byte units, the last byte the next header's type.
                let Some(&units) = payload.get(at) else {
                    c.short();
                    return true;
                };
                if units == 0 {
                    c.p.malformed = true;
                    return true;
                }
                at += 4 * usize::from(units);
                next = payload.get(at - 1).copied();
                if next.is_none() {
                    c.short();
                    return true;
                }
            }
        }
        self.ip_by_nibble(c, off + at);
        true
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

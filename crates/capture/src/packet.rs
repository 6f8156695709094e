//! The parsed summary of one frame: what the store writes to `packets`.
//!
//! It is filled by [`crate::parse`] from `(bytes, link type)` alone; the sources add the
//! timestamp and payload, and the collector adds the owning process from the scanner.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// One decoded layer, in the design's `protocols` vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Eth,
    Sll,
    Sll2,
    Null,
    Raw,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    Icmp,
    Icmpv6,
    Tcp,
    Udp,
    Dns,
    Quic,
    Tls,
    /// Tunnels and encapsulations ([`crate::parse`] decodes what they carry).
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    Gtp,
    Teredo,
    Mpls,
    Pppoes,
    Ppp,
    /// Cisco FabricPath (tshark's `cfp`).
    Cfp,
    /// CAPWAP's data channel (UDP 5247: a wireless controller's access points), then
    /// the 802.11 frame it carries and that frame's LLC/SNAP header.
    Capwap,
    Wlan,
    Llc,
    /// A link type the parser does not decode, stored as `dlt<N>`.
    Dlt(u32),
}

impl Layer {
    /// Every layer but [`Layer::Dlt`], with its name, in declaration order: a layer's
    /// place here is its one-byte code in a [`Layers`].
    pub const UNITS: [(Layer, &'static str); 29] = [
        (Layer::Eth, "eth"),
        (Layer::Sll, "sll"),
        (Layer::Sll2, "sll2"),
        (Layer::Null, "null"),
        (Layer::Raw, "raw"),
        (Layer::Vlan, "vlan"),
        (Layer::Arp, "arp"),
        (Layer::Ipv4, "ipv4"),
        (Layer::Ipv6, "ipv6"),
        (Layer::Icmp, "icmp"),
        (Layer::Icmpv6, "icmpv6"),
        (Layer::Tcp, "tcp"),
        (Layer::Udp, "udp"),
        (Layer::Dns, "dns"),
        (Layer::Quic, "quic"),
        (Layer::Tls, "tls"),
        (Layer::Gre, "gre"),
        (Layer::Erspan, "erspan"),
        (Layer::Vxlan, "vxlan"),
        (Layer::Geneve, "geneve"),
        (Layer::Gtp, "gtp"),
        (Layer::Teredo, "teredo"),
        (Layer::Mpls, "mpls"),
        (Layer::Pppoes, "pppoes"),
        (Layer::Ppp, "ppp"),
        (Layer::Cfp, "cfp"),
        (Layer::Capwap, "capwap"),
        (Layer::Wlan, "wlan"),
        (Layer::Llc, "llc"),
    ];

    /// The layer's code in a [`Layers`]: its place in [`Layer::UNITS`], or
    /// [`DLT_CODE`] (the number is kept beside the codes). A match rather than a search
    /// of the table: it compiles to the enum's own discriminant.
    #[inline]
    fn code(self) -> u8 {
        match self {
            Layer::Eth => 0,
            Layer::Sll => 1,
            Layer::Sll2 => 2,
            Layer::Null => 3,
            Layer::Raw => 4,
            Layer::Vlan => 5,
            Layer::Arp => 6,
            Layer::Ipv4 => 7,
            Layer::Ipv6 => 8,
            Layer::Icmp => 9,
            Layer::Icmpv6 => 10,
            Layer::Tcp => 11,
            Layer::Udp => 12,
            Layer::Dns => 13,
            Layer::Quic => 14,
            Layer::Tls => 15,
            Layer::Gre => 16,
            Layer::Erspan => 17,
            Layer::Vxlan => 18,
            Layer::Geneve => 19,
            Layer::Gtp => 20,
            Layer::Teredo => 21,
            Layer::Mpls => 22,
            Layer::Pppoes => 23,
            Layer::Ppp => 24,
            Layer::Cfp => 25,
            Layer::Capwap => 26,
            Layer::Wlan => 27,
            Layer::Llc => 28,
            Layer::Dlt(_) => DLT_CODE,
        }
    }

    /// The lower-case name used in `packets.protocols` (except [`Layer::Dlt`], which
    /// formats as `dlt<N>` through `Display`).
    pub fn name(self) -> &'static str {
        match self {
            Layer::Dlt(_) => "dlt",
            unit => Layer::UNITS[usize::from(unit.code())].1,
        }
    }

    /// The layer a `packets.protocols` entry names: the inverse of `Display` ([`name`]
    /// for every layer but [`Layer::Dlt`], read from `dlt<N>`), so readers of stored
    /// stacks share this vocabulary instead of keeping a copy of the names. `None` for a
    /// name outside it, and for a bare `dlt` or a `dlt` followed by anything but
    /// decimal digits, which `Display` never writes.
    ///
    /// [`name`]: Layer::name
    #[inline]
    pub fn from_name(name: &str) -> Option<Layer> {
        Some(match name {
            "eth" => Layer::Eth,
            "sll" => Layer::Sll,
            "sll2" => Layer::Sll2,
            "null" => Layer::Null,
            "raw" => Layer::Raw,
            "vlan" => Layer::Vlan,
            "arp" => Layer::Arp,
            "ipv4" => Layer::Ipv4,
            "ipv6" => Layer::Ipv6,
            "icmp" => Layer::Icmp,
            "icmpv6" => Layer::Icmpv6,
            "tcp" => Layer::Tcp,
            "udp" => Layer::Udp,
            "dns" => Layer::Dns,
            "quic" => Layer::Quic,
            "tls" => Layer::Tls,
            "gre" => Layer::Gre,
            "erspan" => Layer::Erspan,
            "vxlan" => Layer::Vxlan,
            "geneve" => Layer::Geneve,
            "gtp" => Layer::Gtp,
            "teredo" => Layer::Teredo,
            "mpls" => Layer::Mpls,
            "pppoes" => Layer::Pppoes,
            "ppp" => Layer::Ppp,
            "cfp" => Layer::Cfp,
            "capwap" => Layer::Capwap,
            "wlan" => Layer::Wlan,
            "llc" => Layer::Llc,
            other => {
                return other
                    .strip_prefix("dlt")
                    .and_then(link_type)
                    .map(Layer::Dlt);
            }
        })
    }
}

/// The link type of a `dlt<N>` name: decimal digits only (`u32::from_str` would also
/// take a leading `+`, which `Display` never writes).
#[inline]
fn link_type(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Dlt(n) => write!(f, "dlt{n}"),
            other => f.write_str(other.name()),
        }
    }
}

/// [`Layer::Dlt`]'s code in a [`Layers`].
const DLT_CODE: u8 = u8::MAX;

/// The layer stack, outermost first, without allocating: a frame has at most a handful
/// of layers, and a stack deeper than [`Layers::CAP`] (stacked VLAN tags, tunnels up to
/// the parser's depth limit) keeps the first ones. It holds at most one link type the
/// parser does not decode ([`Layer::Dlt`]: the parser stops there); a second one is
/// dropped as a layer past the capacity is.
///
/// A byte a layer (its place in [`Layer::UNITS`]), 36 bytes in all: every packet
/// carries one from the reading thread to the writer's, and with 24 `Option<Layer>`
/// (8 bytes each, for `Dlt`'s number) the stack was 200 of a packet's 470 bytes; the
/// 2 M-packet ingest took 0.92× of the time with this one (BENCHMARKS.md). Slots past
/// `len` stay 0 and `dlt` is `None` without a link type, so the derived comparisons
/// compare what was pushed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Layers {
    codes: [u8; Layers::CAP],
    len: u8,
    dlt: Option<u32>,
}

impl fmt::Debug for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Layers {
    pub const CAP: usize = 24;

    #[inline]
    pub fn push(&mut self, layer: Layer) {
        if (self.len as usize) < Self::CAP {
            if let Layer::Dlt(n) = layer {
                if self.dlt.is_some() {
                    return;
                }
                self.dlt = Some(n);
            }
            self.codes[self.len as usize] = layer.code();
            self.len += 1;
        }
    }

    #[inline]
    pub fn contains(&self, layer: Layer) -> bool {
        match layer {
            Layer::Dlt(n) => self.dlt == Some(n),
            unit => self.codes[..self.len as usize].contains(&unit.code()),
        }
    }

    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = Layer> + '_ {
        let dlt = self.dlt.unwrap_or_default();
        // `DLT_CODE` is past `UNITS`.
        self.codes[..self.len as usize].iter().map(move |&c| {
            Layer::UNITS
                .get(usize::from(c))
                .map_or(Layer::Dlt(dlt), |u| u.0)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads a stack back from its `Display` form, as stored in `packets.protocols`
    /// (`eth:ipv4:udp:dns`). Names outside the vocabulary ([`Layer::from_name`]) are
    /// skipped, so a stack written by a build that knows more layers still yields the
    /// ones this build knows; past [`Layers::CAP`] the rest are dropped, as
    /// [`Layers::push`] does. It runs once per stored packet when features are built,
    /// hence one pass over the string and no allocation, and `#[inline]` (with the
    /// small methods it and its callers use): a caller's optimised build then inlines it
    /// instead of calling this crate's unoptimised dev build.
    #[inline]
    pub fn parse(protocols: &str) -> Layers {
        let mut layers = Layers::default();
        for layer in protocols
            .split(':')
            .filter_map(Layer::from_name)
            .take(Self::CAP)
        {
            layers.push(layer);
        }
        layers
    }
}

impl fmt::Display for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, layer) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            fmt::Display::fmt(&layer, f)?;
        }
        Ok(())
    }
}

/// Transport protocol of a packet or socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// Whether a DNS message was a query or a response (the QR bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsKind {
    Query,
    Response,
}

/// One frame, parsed as far as it would go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Packet {
    /// Capture time, microseconds since the Unix epoch (UTC).
    pub ts_micros: i64,
    /// Length on the wire (may exceed the captured bytes).
    pub length: u32,
    pub layers: Layers,
    /// The innermost IP header's addresses: inside a tunnel, the flow it carries.
    pub src_addr: Option<IpAddr>,
    pub dst_addr: Option<IpAddr>,
    /// The outermost IP header's addresses when the packet was tunnelled (the tunnel's
    /// endpoints); `None` otherwise.
    pub outer_src: Option<IpAddr>,
    pub outer_dst: Option<IpAddr>,
    pub transport: Option<Transport>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN, bit 7 → bit 0).
    pub tcp_flags: Option<u8>,
    pub dns: Option<DnsKind>,
    /// DNS question name, `\ooo`-escaped, `<Root>` for the root.
    pub qry_name: Option<String>,
    /// Names of the further questions when a message has more than one (QDCOUNT > 1 is
    /// seen only in crafted or malformed messages), comma-separated and escaped like
    /// `qry_name`. tshark lists them in `dns.qry.name` too, so the name comparisons use
    /// them; the store need not.
    pub qry_name_more: Option<String>,
    /// DNS answer record names, comma-separated in order, escaped likewise.
    pub resp_name: Option<String>,
    /// TLS (or QUIC) SNI, escaped likewise.
    pub server_name: Option<String>,
    /// Byte range of the transport payload within the frame, for the sources to copy
    /// at most `--payload-bytes` of it.
    pub payload_range: Option<(usize, usize)>,
    /// The copied payload prefix (empty unless the source was asked for payload bytes).
    pub payload: Vec<u8>,
    /// Set when a layer failed to parse part-way; what parsed before is kept.
    pub malformed: bool,
    /// Owning local process, filled in by the collector from the scanner's sockets.
    pub pid: Option<u32>,
    pub process: Option<Arc<str>>,
}

impl Packet {
    /// The local port whose socket may own this packet: tries the source port first,
    /// then the destination port, so that both directions of a flow map to the owner.
    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.src_port.into_iter().chain(self.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack holds one link type the parser does not decode: a second is dropped
    /// (the parser stops at the first). Every layer is found where it was pushed.
    #[test]
    fn layers_hold_one_link_type_and_every_layer() {
        let mut l = Layers::default();
        l.push(Layer::Dlt(281));
        l.push(Layer::Dlt(9));
        l.push(Layer::Eth);
        assert_eq!(l.to_string(), "dlt281:eth");
        assert!(l.contains(Layer::Dlt(281)) && !l.contains(Layer::Dlt(9)));
        assert_eq!(Layers::parse("dlt281:dlt9:eth"), l);
        let mut all = Layers::default();
        Layer::UNITS
            .iter()
            .take(Layers::CAP)
            .for_each(|u| all.push(u.0));
        let pushed: Vec<Layer> = Layer::UNITS.iter().take(Layers::CAP).map(|u| u.0).collect();
        assert_eq!(all.iter().collect::<Vec<_>>(), pushed);
        assert!(pushed.iter().all(|&u| all.contains(u)));
        assert!(!all.contains(Layer::Llc) && !all.contains(Layer::Dlt(0)));
        assert!(size_of::<Layers>() <= 36, "{}", size_of::<Layers>());
    }

    /// Stacks are equal when they pushed the same layers, in the same order.
    #[test]
    fn layers_equal_by_what_was_pushed() {
        let stack = |layers: &[Layer]| {
            let mut l = Layers::default();
            layers.iter().for_each(|&x| l.push(x));
            l
        };
        let (eth, ip, udp) = (Layer::Eth, Layer::Ipv4, Layer::Udp);
        assert_eq!(stack(&[eth, ip, udp]), stack(&[eth, ip, udp]));
        assert_eq!(Layers::default(), stack(&[]));
        assert_ne!(stack(&[eth, ip, udp]), stack(&[eth, ip]));
        assert_ne!(stack(&[eth, ip]), stack(&[eth, ip, udp]));
        assert_ne!(stack(&[eth, udp, ip]), stack(&[eth, ip, udp]));
        assert_ne!(stack(&[Layer::Dlt(281)]), stack(&[Layer::Dlt(282)]));
        // Past the capacity the first layers are kept: equal if those are.
        let deep = |last| {
            let mut v = vec![Layer::Vlan; Layers::CAP];
            v.push(last);
            stack(&v)
        };
        assert_eq!(deep(Layer::Tcp), deep(Layer::Udp));
    }

    #[test]
    fn layers_format_colon_separated() {
        let mut l = Layers::default();
        for x in [Layer::Eth, Layer::Ipv4, Layer::Udp, Layer::Dns] {
            l.push(x);
        }
        assert_eq!(l.to_string(), "eth:ipv4:udp:dns");
        let mut d = Layers::default();
        d.push(Layer::Dlt(281));
        assert_eq!(d.to_string(), "dlt281");
    }

    /// Every layer's name reads back as that layer, and its code is its place in
    /// `UNITS`.
    #[test]
    fn layer_from_name_inverts_display() {
        for (i, &(unit, name)) in Layer::UNITS.iter().enumerate() {
            assert_eq!(usize::from(unit.code()), i, "{name}");
            assert_eq!(unit.name(), name);
        }
        let units = Layer::UNITS.iter().map(|u| u.0);
        for layer in units.chain([Layer::Dlt(0), Layer::Dlt(281), Layer::Dlt(u32::MAX)]) {
            assert_eq!(Layer::from_name(&layer.to_string()), Some(layer), "{layer}");
        }
        for name in [
            "",
            "dlt",
            "dlt+5",
            "dlt-1",
            "dltx",
            "dlt4294967296",
            "ETH",
            " tcp",
            "ip",
        ] {
            assert_eq!(Layer::from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn layers_parse_round_trips_display() {
        let stacks: [&[Layer]; 6] = [
            &[Layer::Eth, Layer::Ipv4, Layer::Udp, Layer::Dns],
            &[Layer::Eth, Layer::Ipv6, Layer::Tcp, Layer::Tls],
            &[Layer::Sll2, Layer::Ipv4, Layer::Udp, Layer::Quic],
            &[
                Layer::Eth,
                Layer::Vlan,
                Layer::Vlan,
                Layer::Ipv6,
                Layer::Icmpv6,
            ],
            &[Layer::Dlt(281)],
            &[],
        ];
        for stack in stacks {
            let mut l = Layers::default();
            for &x in stack {
                l.push(x);
            }
            let text = l.to_string();
            assert_eq!(Layers::parse(&text), l, "{text}");
            assert_eq!(Layers::parse(&text).to_string(), text);
        }
    }

    #[test]
    fn layers_parse_skips_unknown_names() {
        let l = Layers::parse("eth:ipv4:gre:tcp::bogus:tls");
        assert_eq!(l.to_string(), "eth:ipv4:gre:tcp:tls");
        assert!(l.contains(Layer::Tcp));
        assert!(!l.contains(Layer::Udp));
        assert!(Layers::parse("").is_empty());
        assert!(Layers::parse("l2tp:wg").is_empty());
    }

    #[test]
    fn layers_parse_keeps_the_first_cap_layers() {
        let deep = ["vlan"; Layers::CAP + 2].join(":") + ":ipv4:tcp";
        let l = Layers::parse(&deep);
        assert_eq!(l.iter().count(), Layers::CAP);
        assert!(l.iter().all(|x| x == Layer::Vlan));
    }

    #[test]
    fn layers_cap_truncates_without_panic() {
        let mut l = Layers::default();
        for _ in 0..Layers::CAP * 2 {
            l.push(Layer::Vlan);
        }
        assert_eq!(l.iter().count(), Layers::CAP);
    }
}

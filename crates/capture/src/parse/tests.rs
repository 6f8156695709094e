//! Frames built with etherparse's `PacketBuilder` (and link headers written by hand),
//! then cut at every length: the parser must never panic and must keep what parsed.

use super::*;
use crate::packet::{DnsKind, Layers};
use etherparse::{PacketBuilder, VlanId};
use std::net::{Ipv4Addr, Ipv6Addr};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const V4_A: [u8; 4] = [192, 0, 2, 1];
const V4_B: [u8; 4] = [192, 0, 2, 53];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn dns_query(name: &[u8]) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m
}

fn dns_response(name: &[u8]) -> Vec<u8> {
    let mut m = vec![0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    m.extend_from_slice(name);
    m.extend_from_slice(&[0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
    m
}

fn eth_udp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_A, V4_B, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn eth_udp6(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(V6_A, V6_B, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn eth_tcp4(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_A, V4_B, 64)
        .tcp(sport, dport, 1000, 65535)
        .syn()
        .ack(1)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn ip4_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(V4_A, V4_B, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn ip6_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(V6_A, V6_B, 64)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn parse(frame: &[u8], linktype: i32) -> Packet {
    Parser::new().parse(frame, linktype, frame.len() as u32)
}

/// Every prefix of `frame` parses without panicking, and never claims more layers than
/// the whole frame has.
fn all_prefixes(frame: &[u8], linktype: i32) {
    let full = parse(frame, linktype);
    let full_layers: Vec<Layer> = full.layers.iter().collect();
    let mut parser = Parser::new();
    for n in 0..=frame.len() {
        let p = parser.parse(&frame[..n], linktype, frame.len() as u32);
        let layers: Vec<Layer> = p.layers.iter().collect();
        assert!(
            full_layers.starts_with(&layers),
            "prefix {n}: {layers:?} not a prefix of {full_layers:?}"
        );
        // As a frame that is really this short (no snaplen): must not panic either.
        let _ = parser.parse(&frame[..n], linktype, n as u32);
        if let Some((s, e)) = p.payload_range {
            assert!(s <= e && e <= n, "payload range {s}..{e} beyond {n}");
        }
    }
}

#[test]
fn dns_query_over_udp() {
    let f = eth_udp4(40000, 53, &dns_query(b"\x07example\x03com\x00"));
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv4:udp:dns");
    assert_eq!(p.src_addr, Some(IpAddr::V4(Ipv4Addr::from(V4_A))));
    assert_eq!(p.dst_addr, Some(IpAddr::V4(Ipv4Addr::from(V4_B))));
    assert_eq!((p.src_port, p.dst_port), (Some(40000), Some(53)));
    assert_eq!(p.transport, Some(Transport::Udp));
    assert_eq!(p.dns, Some(DnsKind::Query));
    assert_eq!(p.qry_name.as_deref(), Some("example.com"));
    assert_eq!(p.resp_name, None);
    assert_eq!(p.length, f.len() as u32);
    assert!(!p.malformed);
    let (s, e) = p.payload_range.unwrap();
    assert_eq!(&f[s..e], &dns_query(b"\x07example\x03com\x00")[..]);
    all_prefixes(&f, linktype::ETHERNET);
}

#[test]
fn dns_response_over_udp_ipv6() {
    let f = eth_udp6(53, 40000, &dns_response(b"\x03www\x07example\x03org\x00"));
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv6:udp:dns");
    assert_eq!(p.src_addr, Some(IpAddr::V6(Ipv6Addr::from(V6_A))));
    assert_eq!(p.dns, Some(DnsKind::Response));
    assert_eq!(p.qry_name.as_deref(), Some("www.example.org"));
    assert_eq!(p.resp_name.as_deref(), Some("www.example.org"));
    all_prefixes(&f, linktype::ETHERNET);
}

#[test]
fn dns_over_tcp_with_length_prefix() {
    let msg = dns_query(b"\x01a\x02bc\x00");
    let mut payload = (msg.len() as u16).to_be_bytes().to_vec();
    payload.extend_from_slice(&msg);
    let f = eth_tcp4(40001, 53, &payload);
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv4:tcp:dns");
    assert_eq!(p.qry_name.as_deref(), Some("a.bc"));
    assert_eq!(p.tcp_flags, Some(0x12), "SYN+ACK");
    all_prefixes(&f, linktype::ETHERNET);
    // A segment whose first bytes are not a plausible length prefix: plain TCP.
    let f = eth_tcp4(40001, 53, &[0, 3, 1, 2, 3]);
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv4:tcp");
}

#[test]
fn dns_only_on_port_53() {
    let f = eth_udp4(40000, 5353, &dns_query(b"\x01a\x00"));
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv4:udp");
    assert_eq!(p.dns, None);
}

#[test]
fn udp_length_field_is_honoured() {
    // Rule 4: a UDP length of 8 + 3 with more bytes captured after it.
    let mut f = eth_udp4(40000, 9999, b"abcdefgh");
    let udp = 14 + 20;
    f[udp + 4..udp + 6].copy_from_slice(&11u16.to_be_bytes());
    let p = parse(&f, linktype::ETHERNET);
    let (s, e) = p.payload_range.unwrap();
    assert_eq!(&f[s..e], b"abc");
}

#[test]
fn tls_client_hello_sni_on_any_port() {
    let hello = crate::tls::build_client_hello(b"secure.example.net");
    let f = eth_tcp4(40002, 8443, &hello);
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv4:tcp:tls");
    assert_eq!(p.server_name.as_deref(), Some("secure.example.net"));
    all_prefixes(&f, linktype::ETHERNET);
    // Application data: TLS layer, no SNI.
    let f = eth_tcp4(443, 40002, &[23, 3, 3, 0, 4, 1, 2, 3, 4]);
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv4:tcp:tls");
    assert_eq!(p.server_name, None);
}

fn quic_long(version: [u8; 4]) -> Vec<u8> {
    let mut q = vec![0xc0];
    q.extend_from_slice(&version);
    q.push(8);
    q.extend_from_slice(&[1; 8]);
    q.push(0);
    q.extend_from_slice(&[0; 40]);
    q
}

#[test]
fn quic_long_then_short_on_same_flow() {
    for version in [[0, 0, 0, 1], [0x6b, 0x33, 0x43, 0xcf]] {
        let mut parser = Parser::new();
        let short = [0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        // A short header alone is not recognisable.
        let f = eth_udp4(50000, 4433, &short);
        assert!(
            !parser
                .parse(&f, 1, f.len() as u32)
                .layers
                .contains(Layer::Quic)
        );
        let f = eth_udp4(50000, 4433, &quic_long(version));
        let p = parser.parse(&f, 1, f.len() as u32);
        assert_eq!(p.layers.to_string(), "eth:ipv4:udp:quic");
        // Now the flow is known, in both directions.
        let f = eth_udp4(50000, 4433, &short);
        assert!(
            parser
                .parse(&f, 1, f.len() as u32)
                .layers
                .contains(Layer::Quic)
        );
        let mut back = Vec::new();
        PacketBuilder::ethernet2(MAC_B, MAC_A)
            .ipv4(V4_B, V4_A, 64)
            .udp(4433, 50000)
            .write(&mut back, &short)
            .unwrap();
        assert!(
            parser
                .parse(&back, 1, back.len() as u32)
                .layers
                .contains(Layer::Quic)
        );
        // Another flow is not.
        let f = eth_udp4(50001, 4433, &short);
        assert!(
            !parser
                .parse(&f, 1, f.len() as u32)
                .layers
                .contains(Layer::Quic)
        );
        assert_eq!(parser.quic_flows(), 1);
    }
}

#[test]
fn quic_flow_set_is_bounded() {
    let mut parser = Parser::with_quic_flow_cap(4);
    for port in 0..100u16 {
        let f = eth_udp4(10000 + port, 443, &quic_long([0, 0, 0, 1]));
        assert!(
            parser
                .parse(&f, 1, f.len() as u32)
                .layers
                .contains(Layer::Quic)
        );
        assert!(parser.quic_flows() <= 4);
    }
}

#[test]
fn quic_version_negotiation_needs_port_443() {
    let vn = [0x80, 0, 0, 0, 0, 4, 1, 2, 3, 4, 0, 0, 0, 0, 1];
    let f = eth_udp4(443, 50000, &vn);
    assert!(parse(&f, 1).layers.contains(Layer::Quic));
    let f = eth_udp4(5355, 50000, &vn);
    assert!(!parse(&f, 1).layers.contains(Layer::Quic));
}

#[test]
fn vlan_tags_each_give_a_layer() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
        .ipv4(V4_A, V4_B, 64)
        .udp(1, 2)
        .write(&mut f, b"x")
        .unwrap();
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:vlan:vlan:ipv4:udp");
    all_prefixes(&f, linktype::ETHERNET);

    // Three stacked 802.1Q tags, and QinQ 0x88a8 outside.
    let inner = ip4_udp(1, 2, b"x");
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    for tpid in [0x88a8u16, 0x8100, 0x8100] {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&[0, 10]);
    }
    f.extend_from_slice(&[0x81, 0x00, 0, 20, 0x08, 0x00]);
    f.extend_from_slice(&inner);
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:vlan:vlan:vlan:vlan:ipv4:udp");
    all_prefixes(&f, linktype::ETHERNET);

    // More tags than Layers holds: capped, no panic.
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_A);
    for _ in 0..40 {
        f.extend_from_slice(&[0x81, 0x00, 0, 1]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&inner);
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.iter().count(), Layers::CAP);
    assert_eq!(p.transport, Some(Transport::Udp), "still parsed beneath");
}

#[test]
fn arp_frame() {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&V4_A);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&V4_B);
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:arp");
    assert!(!p.malformed);
    all_prefixes(&f, linktype::ETHERNET);
}

fn sll(proto: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6];
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&proto.to_be_bytes());
    f.extend_from_slice(inner);
    f
}

fn sll2(proto: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = proto.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(inner);
    f
}

#[test]
fn linux_cooked_v1_and_v2() {
    let q = dns_query(b"\x01x\x00");
    let f = sll(0x0800, &ip4_udp(1234, 53, &q));
    let p = parse(&f, linktype::LINUX_SLL);
    assert_eq!(p.layers.to_string(), "sll:ipv4:udp:dns");
    all_prefixes(&f, linktype::LINUX_SLL);
    let f = sll2(0x86dd, &ip6_udp(1234, 53, &q));
    assert_eq!(f.len() - ip6_udp(1234, 53, &q).len(), 20);
    let p = parse(&f, linktype::LINUX_SLL2);
    assert_eq!(p.layers.to_string(), "sll2:ipv6:udp:dns");
    all_prefixes(&f, linktype::LINUX_SLL2);
}

#[test]
fn bsd_null_and_loop_in_both_byte_orders() {
    let v4 = ip4_udp(1, 2, b"hi");
    let v6 = ip6_udp(1, 2, b"hi");
    for (af, inner, want) in [
        (2u32, &v4, "null:ipv4:udp"),
        (24, &v6, "null:ipv6:udp"),
        (28, &v6, "null:ipv6:udp"),
        (30, &v6, "null:ipv6:udp"),
    ] {
        for header in [af.to_le_bytes(), af.to_be_bytes()] {
            let mut f = header.to_vec();
            f.extend_from_slice(inner);
            for lt in [linktype::NULL, linktype::LOOP] {
                assert_eq!(parse(&f, lt).layers.to_string(), want, "af {af} lt {lt}");
                all_prefixes(&f, lt);
            }
        }
    }
    // An unknown family: the null layer only, not malformed.
    let mut f = 99u32.to_le_bytes().to_vec();
    f.extend_from_slice(&v4);
    let p = parse(&f, linktype::NULL);
    assert_eq!(p.layers.to_string(), "null");
    assert!(!p.malformed);
}

#[test]
fn raw_ip_link_types() {
    let v4 = ip4_udp(1, 2, b"hi");
    let v6 = ip6_udp(1, 2, b"hi");
    for lt in [linktype::RAW, linktype::RAW_12, linktype::RAW_14] {
        assert_eq!(parse(&v4, lt).layers.to_string(), "raw:ipv4:udp");
        assert_eq!(parse(&v6, lt).layers.to_string(), "raw:ipv6:udp");
        all_prefixes(&v4, lt);
        all_prefixes(&v6, lt);
    }
    assert_eq!(
        parse(&v4, linktype::IPV4).layers.to_string(),
        "raw:ipv4:udp"
    );
    assert_eq!(
        parse(&v6, linktype::IPV6).layers.to_string(),
        "raw:ipv6:udp"
    );
    all_prefixes(&v4, linktype::IPV4);
    all_prefixes(&v6, linktype::IPV6);
}

#[test]
fn unknown_link_type_is_one_layer() {
    let p = parse(&[1, 2, 3, 4], 281);
    assert_eq!(p.layers.to_string(), "dlt281");
    assert!(!p.malformed);
    assert_eq!(parse(&[], 147).layers.to_string(), "dlt147");
}

#[test]
fn icmp_and_icmpv6() {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_A, V4_B, 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut f, b"ping")
        .unwrap();
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv4:icmp");
    all_prefixes(&f, 1);
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(V6_A, V6_B, 64)
        .icmpv6_echo_request(1, 1)
        .write(&mut f, b"ping")
        .unwrap();
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv6:icmpv6");
    all_prefixes(&f, 1);
}

#[test]
fn truncated_headers_keep_what_parsed() {
    let f = eth_tcp4(1234, 80, b"GET / HTTP/1.1\r\n\r\n");
    // Cut inside the TCP header, as a snaplen would: TCP with its ports, not malformed.
    let cut = &f[..14 + 20 + 10];
    let p = Parser::new().parse(cut, 1, f.len() as u32);
    assert_eq!(p.layers.to_string(), "eth:ipv4:tcp");
    assert_eq!((p.src_port, p.dst_port), (Some(1234), Some(80)));
    assert!(!p.malformed);
    // The same bytes as a whole frame (wire length = captured): malformed.
    let p = Parser::new().parse(cut, 1, cut.len() as u32);
    assert_eq!(p.layers.to_string(), "eth:ipv4:tcp");
    assert!(p.malformed);
    // An IPv4 total length beyond the frame, which was not cut: malformed, the payload
    // still read from what is there (as tshark does).
    let mut g = eth_udp4(1, 2, b"x");
    g[16..18].copy_from_slice(&200u16.to_be_bytes());
    let p = parse(&g, 1);
    assert_eq!(p.layers.to_string(), "eth:ipv4:udp");
    assert!(p.malformed);
    // A UDP length below its header's 8 bytes: malformed.
    let mut g = eth_udp4(1, 2, b"xyz");
    g[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&3u16.to_be_bytes());
    assert!(parse(&g, 1).malformed);
    // A snaplen cut inside the UDP payload: not malformed.
    let g = eth_udp4(1, 2, &[7; 100]);
    let p = Parser::new().parse(&g[..60], 1, g.len() as u32);
    assert_eq!(p.layers.to_string(), "eth:ipv4:udp");
    assert!(!p.malformed);
    // A bogus IPv4 header length: the ipv4 layer, marked malformed.
    let mut g = eth_udp4(1, 2, b"x");
    g[14] = 0x44;
    let p = parse(&g, 1);
    assert_eq!(p.layers.to_string(), "eth:ipv4");
    assert!(p.malformed);
}

#[test]
fn ipv4_fragments_are_reassembled_on_the_frame_that_completes_them() {
    let q = dns_query(b"\x07example\x03com\x00");
    let ip = ip4_udp(40_000, 53, &q);
    // Two fragments of the datagram, by hand: 16 bytes of UDP payload, then the rest.
    let fragment = |at: usize, rest: &[u8], more: bool| {
        let mut h = ip[..20].to_vec();
        h[2..4].copy_from_slice(&((20 + rest.len()) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        let flags = if more { 0x2000 } else { 0 } | (at / 8) as u16;
        h[6..8].copy_from_slice(&flags.to_be_bytes());
        [&MAC_A[..], &MAC_B, &[0x08, 0x00], &h, rest].concat()
    };
    let body = &ip[20..];
    let (first, last) = (
        fragment(0, &body[..16], true),
        fragment(16, &body[16..], false),
    );
    let mut parser = Parser::new();
    let p = parser.parse(&first, linktype::ETHERNET, first.len() as u32);
    assert_eq!(p.layers.to_string(), "eth:ipv4", "held, as tshark shows it");
    assert_eq!(p.transport, None);
    assert!(!p.malformed);
    assert!(parser.held_fragment_bytes() > 0);
    let p = parser.parse(&last, linktype::ETHERNET, last.len() as u32);
    assert_eq!(p.layers.to_string(), "eth:ipv4:udp:dns");
    assert_eq!(p.qry_name.as_deref(), Some("example.com"));
    assert_eq!((p.src_port, p.dst_port), (Some(40_000), Some(53)));
    assert_eq!(p.payload_range, None, "not a range of this frame");
    assert_eq!(parser.held_fragment_bytes(), 0);
    // The other order, and a last fragment alone, which never completes.
    let mut parser = Parser::new();
    assert_eq!(parser.parse(&last, 1, last.len() as u32).transport, None);
    let p = parser.parse(&first, 1, first.len() as u32);
    assert_eq!(p.qry_name.as_deref(), Some("example.com"));
    let mut parser = Parser::new();
    let p = parser.parse(&last, 1, last.len() as u32);
    assert_eq!(
        (p.layers.to_string().as_str(), p.transport),
        ("eth:ipv4", None)
    );
    // A first fragment cut by the snaplen cannot complete a datagram: it is read as far
    // as it goes (so prefixes may show more than the whole frame), and never panics.
    let mut parser = Parser::new();
    for n in 0..first.len() {
        let _ = parser.parse(&first[..n], linktype::ETHERNET, first.len() as u32);
    }
    assert_eq!(parser.held_fragment_bytes(), 0);
}

/// A flood of first fragments that never complete stays within the caps.
#[test]
fn a_fragment_flood_stays_within_the_caps() {
    let mut parser = Parser::new();
    let mut f = eth_udp4(40_000, 53, &[0u8; 1400]);
    for id in 0..20_000u16 {
        f[14 + 4..14 + 6].copy_from_slice(&id.to_be_bytes());
        f[14 + 6..14 + 8].copy_from_slice(&0x2000u16.to_be_bytes());
        let _ = parser.parse(&f, linktype::ETHERNET, f.len() as u32);
        assert!(parser.held_fragment_bytes() <= crate::fragments::MAX_BYTES);
    }
    assert!(parser.held_fragment_bytes() > 0);
}

#[test]
fn garbage_never_panics() {
    // A small deterministic generator: no dependency needed.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut parser = Parser::with_quic_flow_cap(8);
    let seeds = [
        eth_udp4(1, 53, &dns_response(b"\x03abc\x00")),
        eth_tcp4(1, 443, &crate::tls::build_client_hello(b"a.b")),
        eth_udp6(5, 443, &quic_long([0, 0, 0, 1])),
    ];
    for seed in &seeds {
        for _ in 0..3000 {
            let mut f = seed.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % f.len();
                f[i] = (x >> 32) as u8;
            }
            for lt in [0, 1, 101, 113, 276] {
                let _ = parser.parse(&f, lt, f.len() as u32);
            }
        }
    }
}

// Tunnels: the inner flow is the packet; the outer addresses are kept apart.

const OUTER_A: [u8; 4] = [198, 51, 100, 1];
const OUTER_B: [u8; 4] = [198, 51, 100, 2];

fn example_query() -> Vec<u8> {
    dns_query(b"\x07example\x03com\x00")
}

/// An Ethernet frame whose IPv4 header carries `proto` with `payload`.
fn eth_ip4_proto(proto: IpNumber, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(OUTER_A, OUTER_B, 64)
        .write(&mut out, proto, payload)
        .unwrap();
    out
}

/// An Ethernet frame with an outer IPv4/UDP to `dport`.
fn eth_outer_udp(dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(OUTER_A, OUTER_B, 64)
        .udp(50_000, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The tunnelled DNS query was read as the flow it is, with the tunnel's ends apart.
fn assert_inner_query(p: &Packet, stack: &str) {
    assert_eq!(p.layers.to_string(), stack);
    assert!(!p.malformed, "{stack}");
    assert_eq!(p.qry_name.as_deref(), Some("example.com"), "{stack}");
    assert_eq!(p.dst_port, Some(53), "{stack}");
    assert_eq!(p.transport, Some(Transport::Udp), "{stack}");
    assert_eq!(p.outer_src, Some(IpAddr::from(OUTER_A)), "{stack}");
    assert_eq!(p.outer_dst, Some(IpAddr::from(OUTER_B)), "{stack}");
    assert_ne!(p.src_addr, p.outer_src, "{stack}: the inner source");
}

#[test]
fn ip_in_ip_all_four_ways() {
    let q = example_query();
    let f = eth_ip4_proto(IpNumber::IPV4, &ip4_udp(40_000, 53, &q));
    assert_inner_query(&parse(&f, linktype::ETHERNET), "eth:ipv4:ipv4:udp:dns");
    let f = eth_ip4_proto(IpNumber::IPV6, &ip6_udp(40_000, 53, &q));
    assert_inner_query(&parse(&f, linktype::ETHERNET), "eth:ipv4:ipv6:udp:dns");
    all_prefixes(&f, linktype::ETHERNET);
    // 4in6: an outer IPv6, so its addresses are the outer ones.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv6(V6_A, V6_B, 64)
        .write(&mut f, IpNumber::IPV4, &ip4_udp(40_000, 53, &q))
        .unwrap();
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv6:ipv4:udp:dns");
    assert_eq!(p.outer_src, Some(IpAddr::from(V6_A)));
    assert_eq!(p.src_addr, Some(IpAddr::from(V4_A)));
    // A packet that is not tunnelled has no outer addresses.
    let plain = parse(&eth_udp4(40_000, 53, &q), linktype::ETHERNET);
    assert_eq!((plain.outer_src, plain.outer_dst), (None, None));
}

#[test]
fn gre_with_options_nvgre_and_erspan() {
    let q = example_query();
    let inner4 = ip4_udp(40_000, 53, &q);
    let inner_eth = eth_udp4(40_000, 53, &q);
    // Plain GRE, then with checksum, key and sequence number (12 more bytes).
    let f = eth_ip4_proto(IpNumber::GRE, &cat(&[&[0, 0, 0x08, 0x00], &inner4]));
    assert_inner_query(&parse(&f, linktype::ETHERNET), "eth:ipv4:gre:ipv4:udp:dns");
    let opts = [0xb0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1];
    let f = eth_ip4_proto(IpNumber::GRE, &cat(&[&opts, &inner4]));
    assert_inner_query(&parse(&f, linktype::ETHERNET), "eth:ipv4:gre:ipv4:udp:dns");
    all_prefixes(&f, linktype::ETHERNET);
    // NVGRE: key present, transparent Ethernet bridging.
    let nvgre = [0x20, 0, 0x65, 0x58, 0, 0x12, 0x34, 0];
    let f = eth_ip4_proto(IpNumber::GRE, &cat(&[&nvgre, &inner_eth]));
    assert_inner_query(
        &parse(&f, linktype::ETHERNET),
        "eth:ipv4:gre:eth:ipv4:udp:dns",
    );
    // ERSPAN type I (no sequence number, no header), II (8 bytes) and III (12, and 8
    // of platform subheader with the O bit).
    let f = eth_ip4_proto(IpNumber::GRE, &cat(&[&[0, 0, 0x88, 0xbe], &inner_eth]));
    let stack = "eth:ipv4:gre:erspan:eth:ipv4:udp:dns";
    assert_inner_query(&parse(&f, linktype::ETHERNET), stack);
    let ii = [0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0];
    assert_inner_query(
        &parse(
            &eth_ip4_proto(IpNumber::GRE, &cat(&[&ii, &inner_eth])),
            linktype::ETHERNET,
        ),
        stack,
    );
    let iii = [0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
    let mut hdr = vec![0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    hdr.extend_from_slice(&[0; 8]);
    let f = eth_ip4_proto(IpNumber::GRE, &cat(&[&iii, &hdr, &inner_eth]));
    assert_inner_query(&parse(&f, linktype::ETHERNET), stack);
    all_prefixes(&f, linktype::ETHERNET);
    // A GRE version other than 0 and 1 is malformed, not read on.
    let f = eth_ip4_proto(IpNumber::GRE, &cat(&[&[0, 2, 0x08, 0x00], &inner4]));
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv4:gre");
    assert!(p.malformed);
}

#[test]
fn vxlan_geneve_gtp_u_and_teredo_over_udp() {
    let q = example_query();
    let inner_eth = eth_udp4(40_000, 53, &q);
    let vxlan = [0x08, 0, 0, 0, 0, 0x01, 0x23, 0];
    let f = eth_outer_udp(4789, &cat(&[&vxlan, &inner_eth]));
    assert_inner_query(
        &parse(&f, linktype::ETHERNET),
        "eth:ipv4:udp:vxlan:eth:ipv4:udp:dns",
    );
    all_prefixes(&f, linktype::ETHERNET);
    // GENEVE with one 8-byte option, carrying Ethernet, and carrying IPv4 directly.
    let geneve = [0x02, 0, 0x65, 0x58, 0, 0, 0x42, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    let f = eth_outer_udp(6081, &cat(&[&geneve, &inner_eth]));
    assert_inner_query(
        &parse(&f, linktype::ETHERNET),
        "eth:ipv4:udp:geneve:eth:ipv4:udp:dns",
    );
    let geneve_ip = [0, 0, 0x08, 0x00, 0, 0, 0x42, 0];
    let f = eth_outer_udp(6081, &cat(&[&geneve_ip, &ip4_udp(40_000, 53, &q)]));
    assert_inner_query(
        &parse(&f, linktype::ETHERNET),
        "eth:ipv4:udp:geneve:ipv4:udp:dns",
    );
    // GTP-U G-PDU, plain and with a sequence number and one extension header (PDU
    // session container, 4 bytes, then none).
    let inner6 = ip6_udp(40_000, 53, &q);
    let gtp = [0x30, 0xff, 0, 0, 0, 0, 0, 1];
    let f = eth_outer_udp(2152, &cat(&[&gtp, &inner6]));
    assert_inner_query(
        &parse(&f, linktype::ETHERNET),
        "eth:ipv4:udp:gtp:ipv6:udp:dns",
    );
    let gtp_ext = [0x36, 0xff, 0, 0, 0, 0, 0, 1, 0, 7, 0, 0x85, 1, 0x10, 9, 0];
    let f = eth_outer_udp(2152, &cat(&[&gtp_ext, &inner6]));
    assert_inner_query(
        &parse(&f, linktype::ETHERNET),
        "eth:ipv4:udp:gtp:ipv6:udp:dns",
    );
    all_prefixes(&f, linktype::ETHERNET);
    // An echo request is GTP without a user packet.
    let echo = parse(
        &eth_outer_udp(2152, &[0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]),
        linktype::ETHERNET,
    );
    assert_eq!(echo.layers.to_string(), "eth:ipv4:udp:gtp");
    assert!(!echo.malformed);
    // Teredo with an origin indication.
    let origin = [0, 0, 0xff, 0xff, 1, 2, 3, 4];
    let f = eth_outer_udp(3544, &cat(&[&origin, &inner6]));
    assert_inner_query(
        &parse(&f, linktype::ETHERNET),
        "eth:ipv4:udp:teredo:ipv6:udp:dns",
    );
    // Not a tunnel after all: a UDP datagram to 4789 without VXLAN's I flag stays UDP.
    let p = parse(&eth_outer_udp(4789, &[0u8; 40]), linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:ipv4:udp");
    assert_eq!(p.outer_src, None);
}

/// An 802.11 data frame (to DS) with frame control `fc` as sent (Cisco swaps it), an
/// optional QoS field, then LLC/SNAP and `inner` with EtherType `et`.
fn wlan_frame(fc: [u8; 2], qos: bool, et: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = fc.to_vec();
    f.extend_from_slice(&[0x2c, 0]);
    for mac in [MAC_A, MAC_B, MAC_A] {
        f.extend_from_slice(&mac);
    }
    f.extend_from_slice(&[0x10, 0]);
    if qos {
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(inner);
    f
}

#[test]
fn capwap_data_carries_802_11_or_ethernet() {
    let q = example_query();
    let inner = ip4_udp(40_000, 53, &q);
    // Header length 4 words (with 8 bytes of wireless information), radio 1, binding
    // 802.11, T set: a native 802.11 frame.
    let capwap = [
        0, 0x20, 0x43, 0x20, 0, 0, 0, 0, 1, 4, 0xee, 0x4f, 0, 0, 0, 0,
    ];
    for (fc, qos) in [
        ([0x08, 0x01], false),
        ([0x01, 0x08], false),
        ([0x88, 0x01], true),
    ] {
        let f = eth_outer_udp(5247, &cat(&[&capwap, &wlan_frame(fc, qos, 0x0800, &inner)]));
        assert_inner_query(
            &parse(&f, linktype::ETHERNET),
            "eth:ipv4:udp:capwap:wlan:llc:ipv4:udp:dns",
        );
        all_prefixes(&f, linktype::ETHERNET);
    }
    // A protected frame is encrypted: the stack ends at wlan.
    let f = eth_outer_udp(
        5247,
        &cat(&[&capwap, &wlan_frame([0x08, 0x41], false, 0x0800, &inner)]),
    );
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv4:udp:capwap:wlan");
    // T clear: an Ethernet frame (binding irrelevant), header of 2 words.
    let plain = [0, 0x10, 0x02, 0, 0, 0, 0, 0];
    let f = eth_outer_udp(5247, &cat(&[&plain, &eth_udp4(40_000, 53, &q)]));
    assert_inner_query(&parse(&f, 1), "eth:ipv4:udp:capwap:eth:ipv4:udp:dns");
    // A keep-alive carries nothing; a later fragment cannot be read.
    let keep_alive = [0, 0x10, 0x02, 0x08, 0, 0, 0, 0];
    let f = eth_outer_udp(5247, &cat(&[&keep_alive, &eth_udp4(40_000, 53, &q)]));
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv4:udp:capwap");
    let later = [0, 0x10, 0x02, 0x80, 0, 9, 0, 0x80];
    let f = eth_outer_udp(5247, &cat(&[&later, &eth_udp4(40_000, 53, &q)]));
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv4:udp:capwap");
    // Not CAPWAP: a version other than 0 stays plain UDP.
    let f = eth_outer_udp(5247, &cat(&[&[0x10, 0x10, 0x02, 0], &[0u8; 40][..]]));
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv4:udp");
}

#[test]
fn an_icmp_error_shows_the_packet_it_quotes_and_stays_icmp() {
    // A port unreachable quoting a DNS query, as a resolver that is down sends it.
    let quoted = ip4_udp(40_000, 53, &example_query());
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_B, V4_A, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut f, &quoted)
        .unwrap();
    let p = parse(&f, 1);
    assert_eq!(p.layers.to_string(), "eth:ipv4:icmp:ipv4:udp");
    assert_eq!(
        p.src_addr,
        Some(IpAddr::from(V4_B)),
        "the error's own addresses"
    );
    assert_eq!((p.src_port, p.dst_port, p.transport), (None, None, None));
    assert_eq!(p.qry_name, None, "nothing read from a quote");
    all_prefixes(&f, 1);
    // An echo reply's data is not a quote.
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_B, V4_A, 64)
        .icmpv4_echo_reply(1, 1)
        .write(&mut f, &quoted)
        .unwrap();
    assert_eq!(parse(&f, 1).layers.to_string(), "eth:ipv4:icmp");
    // ICMPv6: a short-header QUIC packet quoted is QUIC on a flow seen as QUIC, not
    // otherwise; the quote teaches the parser nothing.
    let mut parser = Parser::new();
    let short = [0x52, 0x4e, 0x2f, 0xe3, 0xb9, 0x88, 0x26, 0x31];
    let unreachable = |payload: &[u8]| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(V6_B, V6_A, 64)
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(&mut f, &ip6_udp(784, 47_826, payload))
            .unwrap();
        f
    };
    let before = parser.parse(&unreachable(&short), 1, 0);
    assert_eq!(before.layers.to_string(), "eth:ipv6:icmpv6:ipv6:udp");
    let initial = eth_udp6(784, 47_826, &quic_long([0, 0, 0, 1]));
    assert!(parser.parse(&initial, 1, 0).layers.contains(Layer::Quic));
    let flows = parser.quic_flows();
    let after = parser.parse(&unreachable(&short), 1, 0);
    assert_eq!(after.layers.to_string(), "eth:ipv6:icmpv6:ipv6:udp:quic");
    assert_eq!(after.transport, None);
    assert_eq!(parser.quic_flows(), flows);
    all_prefixes(&unreachable(&quic_long([0, 0, 0, 1])), 1);
}

#[test]
fn pppoe_mpls_and_fabricpath_under_ethernet() {
    let q = example_query();
    let inner4 = ip4_udp(40_000, 53, &q);
    let eth_with = |et: u16, body: &[u8]| cat(&[&MAC_A, &MAC_B, &et.to_be_bytes(), body]);
    // PPPoE session, PPP protocol IPv4: the tunnel has no IP of its own outside.
    let pppoe = [0x11, 0, 0, 7, 0, 0, 0x00, 0x21];
    let p = parse(
        &eth_with(0x8864, &cat(&[&pppoe, &inner4])),
        linktype::ETHERNET,
    );
    assert_eq!(p.layers.to_string(), "eth:pppoes:ppp:ipv4:udp:dns");
    assert_eq!(p.qry_name.as_deref(), Some("example.com"));
    assert_eq!(p.outer_src, None, "no outer IP header");
    // Two MPLS labels, the second with the bottom-of-stack bit.
    let labels = [0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64];
    let f = eth_with(0x8847, &cat(&[&labels, &inner4]));
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:mpls:ipv4:udp:dns");
    assert_eq!(p.dst_port, Some(53));
    all_prefixes(&f, linktype::ETHERNET);
    // FabricPath: its tag, then the frame it carries.
    let f = eth_with(0x8903, &cat(&[&[0, 0x3f], &eth_udp4(40_000, 53, &q)]));
    let p = parse(&f, linktype::ETHERNET);
    assert_eq!(p.layers.to_string(), "eth:cfp:eth:ipv4:udp:dns");
    assert_eq!(p.qry_name.as_deref(), Some("example.com"));
}

/// Thousands of GRE headers inside one another: decoded to the depth limit, then the
/// frame is malformed. No recursion past the limit, so no stack overflow.
#[test]
fn a_gre_nesting_bomb_stops_at_the_depth_limit() {
    let mut payload = ip4_udp(40_000, 53, &example_query());
    for _ in 0..3000 {
        let mut next = Vec::new();
        PacketBuilder::ipv4(OUTER_A, OUTER_B, 64)
            .write(
                &mut next,
                IpNumber::GRE,
                &cat(&[&[0, 0, 0x08, 0x00], &payload]),
            )
            .unwrap_or_else(|_| next.clear());
        if next.is_empty() {
            // The IPv4 length field is full: keep nesting by hand past 64 KiB.
            let mut hdr = next;
            hdr.extend_from_slice(&[0x45, 0, 0xff, 0xff, 0, 0, 0x40, 0, 64, 47, 0, 0]);
            hdr.extend_from_slice(&OUTER_A);
            hdr.extend_from_slice(&OUTER_B);
            hdr.extend_from_slice(&[0, 0, 0x08, 0x00]);
            hdr.extend_from_slice(&payload);
            next = hdr;
        }
        payload = next;
    }
    let f = cat(&[&MAC_A, &MAC_B, &[0x08, 0x00], &payload]);
    let p = parse(&f, linktype::ETHERNET);
    let grs = p.layers.iter().filter(|l| *l == Layer::Gre).count();
    assert_eq!(grs, usize::from(MAX_TUNNELS));
    assert!(p.malformed);
    assert_eq!(p.qry_name, None);
    assert_eq!(p.outer_src, Some(IpAddr::from(OUTER_A)));
    // And a bomb of IP-in-IP headers, which have no header of their own.
    let mut payload = ip4_udp(40_000, 53, &example_query());
    for _ in 0..2000 {
        let mut next = vec![0x45, 0, 0xff, 0xff, 0, 0, 0x40, 0, 64, 4, 0, 0];
        next.extend_from_slice(&OUTER_A);
        next.extend_from_slice(&OUTER_B);
        next.extend_from_slice(&payload);
        payload = next;
    }
    let p = parse(
        &cat(&[&MAC_A, &MAC_B, &[0x08, 0x00], &payload]),
        linktype::ETHERNET,
    );
    let ips = p.layers.iter().filter(|l| *l == Layer::Ipv4).count();
    assert_eq!(ips, usize::from(MAX_TUNNELS) + 1);
    assert!(p.malformed);
}

// A ClientHello split over two segments, as a browser with a post-quantum key share
// sends it: the server name is read from the segment that completes it.

fn tcp_segment(seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(V4_A, V4_B, 64)
        .tcp(50_123, 443, seq, 64_240)
        .ack(1)
        .psh()
        .write(&mut out, payload)
        .unwrap();
    out
}

/// 1.8 KB: a key share of 1,216 bytes and padding before the server name.
fn post_quantum_hello() -> Vec<u8> {
    let hello = tls::build_client_hello_with(b"pq.example", &[(51, 1216), (21, 420)]);
    assert!(hello.len() > 1700, "{}", hello.len());
    hello
}

#[test]
fn a_client_hello_split_over_segments_gives_its_server_name() {
    let hello = post_quantum_hello();
    let (a, b) = hello.split_at(1448);
    let mut parser = Parser::new();
    let first = parser.parse(&tcp_segment(7_000, a), linktype::ETHERNET, 0);
    assert_eq!(first.server_name, None, "the name is in the second segment");
    assert!(first.layers.contains(Layer::Tls));
    assert!(parser.held_hello_bytes() > 0);
    // Another flow's packet in between, and the first segment retransmitted.
    let _ = parser.parse(
        &eth_udp4(40_000, 53, &example_query()),
        linktype::ETHERNET,
        0,
    );
    let again = parser.parse(&tcp_segment(7_000, a), linktype::ETHERNET, 0);
    assert_eq!(again.server_name, None);
    let second = parser.parse(&tcp_segment(7_000 + 1448, b), linktype::ETHERNET, 0);
    assert_eq!(second.server_name.as_deref(), Some("pq.example"));
    assert_eq!(second.layers.to_string(), "eth:ipv4:tcp:tls");
    assert_eq!(parser.held_hello_bytes(), 0, "released once whole");
    // Out of order, the stream is given up: no name, nothing held.
    let mut parser = Parser::new();
    let _ = parser.parse(&tcp_segment(9_000, a), linktype::ETHERNET, 0);
    let late = parser.parse(&tcp_segment(9_000 + 1448 + 10, b), linktype::ETHERNET, 0);
    assert_eq!(late.server_name, None);
    assert_eq!(parser.held_hello_bytes(), 0);
    // In three segments too.
    let mut parser = Parser::new();
    let (b1, b2) = b.split_at(100);
    let _ = parser.parse(&tcp_segment(1, a), linktype::ETHERNET, 0);
    let mid = parser.parse(&tcp_segment(1449, b1), linktype::ETHERNET, 0);
    assert_eq!(mid.server_name, None);
    let last = parser.parse(&tcp_segment(1549, b2), linktype::ETHERNET, 0);
    assert_eq!(last.server_name.as_deref(), Some("pq.example"));
}

/// Half-open ClientHellos from many sources: memory stays within the caps.
#[test]
fn a_flood_of_split_hellos_stays_within_the_caps() {
    let hello = post_quantum_hello();
    let mut parser = Parser::new();
    for i in 0..20_000u32 {
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(i.to_be_bytes(), V4_B, 64)
            .tcp(50_000, 443, i, 64_240)
            .write(&mut out, &hello[..1448])
            .unwrap();
        let _ = parser.parse(&out, linktype::ETHERNET, 0);
        assert!(parser.held_hello_bytes() <= crate::hello::MAX_BYTES);
    }
    assert!(parser.held_hello_bytes() > 0);
}

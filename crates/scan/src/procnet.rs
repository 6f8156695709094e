//! The kernel's text socket tables, `/proc/net/{tcp,tcp6,udp,udp6}`.
//!
//! The parser is a pure function of the table's text, so it is tested on recorded
//! tables; [`ProcNet`] only adds the file reading (under a configurable root, so the
//! same code runs on recorded fixture trees) and the owner lookup of [`crate::owners`].

use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::owners::OwnerMap;
use crate::socket::{Socket, Transport};
use crate::source::SocketSource;

/// The four tables in the order a sample reads them: (file name, transport, family).
pub const TABLES: [(&str, Transport, u8); 4] = [
    ("tcp", Transport::Tcp, 4),
    ("tcp6", Transport::Tcp, 6),
    ("udp", Transport::Udp, 4),
    ("udp6", Transport::Udp, 6),
];

/// The kernel's name of a TCP state (`include/net/tcp_states.h`), with underscores,
/// as the design's `rounds_ports.state` stores it. `UNKNOWN` (as ss prints) for a
/// value this table does not know, so a newer kernel does not fail the sample.
pub fn tcp_state_name(state: u8) -> &'static str {
    match state {
        0x01 => "ESTABLISHED",
        0x02 => "SYN_SENT",
        0x03 => "SYN_RECV",
        0x04 => "FIN_WAIT1",
        0x05 => "FIN_WAIT2",
        0x06 => "TIME_WAIT",
        0x07 => "CLOSE",
        0x08 => "CLOSE_WAIT",
        0x09 => "LAST_ACK",
        0x0A => "LISTEN",
        0x0B => "CLOSING",
        0x0C => "NEW_SYN_RECV",
        0x0D => "BOUND_INACTIVE",
        _ => "UNKNOWN",
    }
}

/// A UDP socket's state name: the kernel reuses TCP's numbers; ss prints the
/// unconnected state (`TCP_CLOSE`, 07) as `UNCONN`, and so do we.
pub fn udp_state_name(state: u8) -> &'static str {
    match state {
        0x07 => "UNCONN",
        other => tcp_state_name(other),
    }
}

/// Parses one table's text (header line included) into sockets without owners.
///
/// `transport` and `family` say which table it is (`tcp6` is `Tcp`, 6). Addresses
/// are in the kernel's byte order — the host's: the kernel prints each 32-bit word of
/// a network-order address as a native integer. IPv4-mapped IPv6 addresses stay
/// family 6, as ss shows them. A malformed line is an [`Error::Parse`] naming the
/// table (`net/tcp6`, which [`ProcNet`] replaces by the full path) and the line.
pub fn parse_table(text: &str, transport: Transport, family: u8) -> Result<Vec<Socket>, Error> {
    let mut out = Vec::new();
    parse_table_into(text, transport, family, &mut out).map_err(|(line, reason)| Error::Parse {
        path: PathBuf::from(format!("net/{}", table_name(transport, family))),
        line,
        reason,
    })?;
    Ok(out)
}

fn table_name(transport: Transport, family: u8) -> &'static str {
    match (transport, family) {
        (Transport::Tcp, 6) => "tcp6",
        (Transport::Tcp, _) => "tcp",
        (Transport::Udp, 6) => "udp6",
        (Transport::Udp, _) => "udp",
    }
}

/// The parser proper, appending to `out`; errors are (line number, reason) so the
/// caller can name the file.
fn parse_table_into(
    text: &str,
    transport: Transport,
    family: u8,
    out: &mut Vec<Socket>,
) -> Result<(), (usize, String)> {
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if i == 0 && line.contains("local_address") {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let socket = parse_line(line, transport, family).map_err(|reason| (number, reason))?;
        out.push(socket);
    }
    Ok(())
}

/// One table line:
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …`
fn parse_line(line: &str, transport: Transport, family: u8) -> Result<Socket, String> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |what: &str| {
        fields
            .next()
            .ok_or_else(|| format!("line ends before the {what} field: {line:?}"))
    };
    let slot = next("sl")?;
    if !slot.ends_with(':') {
        return Err(format!("expected a slot number like `0:`, found {slot:?}"));
    }
    let (local_addr, local_port) = parse_endpoint(next("local_address")?, family)?;
    let (remote_addr, remote_port) = parse_endpoint(next("rem_address")?, family)?;
    let st = next("st")?;
    let state = hex_u32(st.as_bytes())
        .filter(|_| st.len() <= 2)
        .ok_or_else(|| format!("bad state {st:?}: expected two hex digits"))? as u8;
    next("tx_queue:rx_queue")?;
    next("tr:tm->when")?;
    next("retrnsmt")?;
    let uid_text = next("uid")?;
    let uid = uid_text
        .parse::<u32>()
        .map_err(|_| format!("bad uid {uid_text:?}"))?;
    next("timeout")?;
    let inode_text = next("inode")?;
    let inode = inode_text
        .parse::<u64>()
        .map_err(|_| format!("bad inode {inode_text:?}"))?;
    let state = match transport {
        Transport::Tcp => tcp_state_name(state),
        Transport::Udp => udp_state_name(state),
    };
    Ok(Socket {
        transport,
        family,
        local_addr,
        local_port,
        remote_addr,
        remote_port,
        state,
        uid,
        inode,
        pid: None,
        process: None,
        exe: None,
        netns: None,
        container: None,
    })
}

/// `0100007F:0277` → (127.0.0.1, 631); 32 hex digits before the colon for IPv6.
fn parse_endpoint(text: &str, family: u8) -> Result<(IpAddr, u16), String> {
    let (addr, port) = text
        .split_once(':')
        .ok_or_else(|| format!("bad address {text:?}: expected HEXADDR:HEXPORT"))?;
    let port = hex_u32(port.as_bytes())
        .filter(|_| port.len() <= 4)
        .ok_or_else(|| format!("bad port in {text:?}: expected four hex digits"))?
        as u16;
    let addr = addr.as_bytes();
    let addr = match (family, addr.len()) {
        (4, 8) => {
            let word = hex_u32(addr).ok_or_else(|| format!("bad IPv4 address in {text:?}"))?;
            IpAddr::V4(Ipv4Addr::from(word.to_ne_bytes()))
        }
        (6, 32) => {
            let mut bytes = [0u8; 16];
            for (k, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                let word = hex_u32(&addr[k * 8..k * 8 + 8])
                    .ok_or_else(|| format!("bad IPv6 address in {text:?}"))?;
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => {
            let want = if family == 6 { 32 } else { 8 };
            return Err(format!(
                "bad address {text:?}: expected {want} hex digits for IPv{family}"
            ));
        }
    };
    Ok((addr, port))
}

/// Strict hex (no sign, no prefix, 1–8 digits), unlike `from_str_radix`; bytes, so
/// slicing a non-ASCII field can never split a character.
fn hex_u32(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 8 {
        return None;
    }
    let mut value = 0u32;
    for &b in text {
        let digit = (b as char).to_digit(16)?;
        value = (value << 4) | digit;
    }
    Some(value)
}

/// Reads the kernel's `/proc/net` tables under a root directory (default `/proc`)
/// and attributes sockets to processes through `ROOT/PID/fd`.
///
/// The inode → owner map is cached: a sample walks the process table again only
/// when it holds a socket inode that the last walk neither found nor recorded as
/// ownerless (TIME_WAIT and other orphaned sockets have inode 0 and never trigger a
/// walk). A full walk costs ~50 ms with 10,000 sockets over 100 processes.
///
/// With 10,000 sockets the text tables alone cost ~25 ms here (the kernel formats
/// them), over the design's 20 ms per sample: live sampling uses
/// [`crate::SockDiag`], which falls back to this reader table by table (BENCH.md).
#[derive(Debug)]
pub struct ProcNet {
    root: PathBuf,
    buf: Vec<u8>,
    owners: Option<OwnerMap>,
}

impl Default for ProcNet {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcNet {
    /// The live system's tables, `/proc`, with owners.
    pub fn new() -> Self {
        Self::with_root("/proc")
    }

    /// Tables under `root/net/` and processes under `root/PID/` — a recorded tree in
    /// tests.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        ProcNet {
            owners: Some(OwnerMap::new(root.clone())),
            root,
            buf: Vec::new(),
        }
    }

    /// Do not look up owners (pid and process stay `None`): no process walk at all.
    pub fn without_owners(mut self) -> Self {
        self.owners = None;
        self
    }

    /// The root directory read.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walks the process table now, whatever the cache holds.
    pub fn refresh_owners(&mut self) -> Result<(), Error> {
        match &mut self.owners {
            Some(owners) => owners.refresh(),
            None => Ok(()),
        }
    }

    /// How many process-table walks this source has made (for tests and `-v`).
    pub fn owner_refreshes(&self) -> u64 {
        self.owners.as_ref().map_or(0, OwnerMap::refreshes)
    }

    /// Reads and parses the four tables without owner lookup.
    pub fn read_tables(&mut self) -> Result<Vec<Socket>, Error> {
        let mut sockets = Vec::new();
        for (name, transport, family) in TABLES {
            self.read_table(name, transport, family, &mut sockets)?;
        }
        Ok(sockets)
    }

    /// Reads one table (`tcp6`, …) and appends its sockets; an absent table (IPv6
    /// off) appends nothing.
    pub(crate) fn read_table(
        &mut self,
        name: &str,
        transport: Transport,
        family: u8,
        sockets: &mut Vec<Socket>,
    ) -> Result<(), Error> {
        let path = self.root.join("net").join(name);
        self.buf.clear();
        match File::open(&path).and_then(|mut f| f.read_to_end(&mut self.buf)) {
            Ok(_) => {}
            // No tcp6/udp6 when IPv6 is off; no table at all is the same answer.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(Error::Read { path, source }),
        }
        let text = match std::str::from_utf8(&self.buf) {
            Ok(text) => text,
            Err(e) => {
                let valid = &self.buf[..e.valid_up_to()];
                let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
                return Err(Error::Parse {
                    path,
                    line,
                    reason: "not ASCII text".into(),
                });
            }
        };
        parse_table_into(text, transport, family, sockets).map_err(|(line, reason)| Error::Parse {
            path,
            line,
            reason,
        })
    }
}

impl SocketSource for ProcNet {
    fn sample(&mut self) -> Result<Vec<Socket>, Error> {
        // Tables first, then owners: a socket in the table already has its fd, so a
        // walk made after the read finds it.
        let mut sockets = self.read_tables()?;
        if let Some(owners) = &mut self.owners {
            owners.attribute(&mut sockets)?;
        }
        Ok(sockets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A2C4 0100007F:0277 01 00000000:00000000 00:00000000 00000000  1000        0 23457 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:A2C6 0100007F:0277 06 00000000:00000000 03:000016B5 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn ipv4_addresses_ports_states_uid_inode() {
        let s = parse_table(TCP, Transport::Tcp, 4).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].local_addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s[0].local_port, 631);
        assert_eq!(s[0].remote_addr, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(s[0].remote_port, 0);
        assert_eq!(s[0].state, "LISTEN");
        assert_eq!(s[0].inode, 23456);
        assert_eq!((s[0].family, s[0].transport), (4, Transport::Tcp));
        assert_eq!(s[1].state, "ESTABLISHED");
        assert_eq!(s[1].uid, 1000);
        assert_eq!(s[1].local_port, 0xA2C4);
        assert_eq!(s[1].remote_port, 631);
        assert_eq!(s[2].state, "TIME_WAIT");
        assert_eq!(s[2].inode, 0);
        assert!(s.iter().all(|s| s.pid.is_none() && s.process.is_none()));
    }

    #[test]
    fn non_loopback_ipv4_byte_order() {
        // 192.168.1.10:443 as a little-endian kernel prints it.
        let line = "sl local_address\n 0: 0A01A8C0:01BB 0201A8C0:D431 01 0:0 0:0 0 0 0 7 1\n";
        let s = parse_table(line, Transport::Tcp, 4).unwrap();
        assert_eq!(s[0].local_addr, "192.168.1.10".parse::<IpAddr>().unwrap());
        assert_eq!(s[0].remote_addr, "192.168.1.2".parse::<IpAddr>().unwrap());
        assert_eq!((s[0].local_port, s[0].remote_port), (443, 0xD431));
    }

    #[test]
    fn ipv6_loopback_any_and_mapped() {
        let text = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 112 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 113 1 0000000000000000 20 4 30 10 -1
   3: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 114 1 0000000000000000 100 0 0 10 0
";
        let s = parse_table(text, Transport::Tcp, 6).unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert_eq!(s[0].local_addr, ip("::"));
        assert_eq!((s[0].local_port, s[0].state), (22, "LISTEN"));
        assert_eq!(s[1].local_addr, ip("::1"));
        assert_eq!(s[1].remote_port, 50000);
        // IPv4-mapped stays an IPv6 address of family 6, as ss shows it.
        assert_eq!(s[2].local_addr, ip("::ffff:127.0.0.1"));
        assert_eq!(s[2].family, 6);
        assert_eq!(s[3].local_addr, ip("2001:db8::1"));
    }

    #[test]
    fn every_tcp_state_has_the_kernel_name() {
        let names: Vec<_> = (1..=12).map(tcp_state_name).collect();
        assert_eq!(
            names,
            [
                "ESTABLISHED",
                "SYN_SENT",
                "SYN_RECV",
                "FIN_WAIT1",
                "FIN_WAIT2",
                "TIME_WAIT",
                "CLOSE",
                "CLOSE_WAIT",
                "LAST_ACK",
                "LISTEN",
                "CLOSING",
                "NEW_SYN_RECV"
            ]
        );
        assert_eq!(tcp_state_name(0), "UNKNOWN");
        assert_eq!(tcp_state_name(0x42), "UNKNOWN");
        for st in 1..=12u8 {
            let text = format!(
                "h local_address\n0: 00000000:0001 00000000:0000 {st:02X} 0:0 0:0 0 0 0 1\n"
            );
            let s = parse_table(&text, Transport::Tcp, 4).unwrap();
            assert_eq!(s[0].state, tcp_state_name(st));
        }
    }

    #[test]
    fn udp_states_unconn_and_established() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 2001 2 0000000000000000 0
  200: 0100007F:9C40 0100007F:0035 01 00000000:00000000 00:00000000 00000000  1000        0 2002 2 0000000000000000 0
";
        let s = parse_table(text, Transport::Udp, 4).unwrap();
        assert_eq!(s[0].state, "UNCONN");
        assert_eq!(s[0].local_addr, "127.0.0.53".parse::<IpAddr>().unwrap());
        assert_eq!(s[0].local_port, 53);
        assert_eq!(s[0].uid, 991);
        assert_eq!(s[1].state, "ESTABLISHED");
        assert_eq!(s[1].transport, Transport::Udp);
    }

    #[test]
    fn empty_and_header_only_tables() {
        assert!(parse_table("", Transport::Tcp, 4).unwrap().is_empty());
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        assert!(parse_table(header, Transport::Udp, 6).unwrap().is_empty());
    }

    fn parse_err(text: &str, transport: Transport, family: u8) -> (String, usize, String) {
        match parse_table(text, transport, family) {
            Err(Error::Parse { path, line, reason }) => (path.display().to_string(), line, reason),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let good = "0: 0100007F:0277 00000000:0000 0A 0:0 0:0 0 0 0 1";
        let cases: &[(&str, &str)] = &[
            ("0: 0100007F:0277", "rem_address"),
            (
                "0: 0100007F 00000000:0000 0A 0:0 0:0 0 0 0 1",
                "HEXADDR:HEXPORT",
            ),
            ("0: 0100007G:0277 00000000:0000 0A 0:0 0:0 0 0 0 1", "IPv4"),
            ("0: 0100007F:0277 00000000:0000 0A 0:0 0:0 0 0 0 x", "inode"),
            ("0: 0100007F:0277 00000000:0000 0A 0:0 0:0 0 -1 0 1", "uid"),
            ("0: 0100007F:10000 00000000:0000 0A 0:0 0:0 0 0 0 1", "port"),
            ("0: 0100007F:0277 00000000:0000 ZZ 0:0 0:0 0 0 0 1", "state"),
            (
                "0: 0100007F:0277 00000000:0000 100 0:0 0:0 0 0 0 1",
                "state",
            ),
            ("0: 0100007F:+277 00000000:0000 0A 0:0 0:0 0 0 0 1", "port"),
            ("0 0100007F:0277 00000000:0000 0A 0:0 0:0 0 0 0 1", "slot"),
            (
                "0: 00000000000000000000000001000000:0277 00000000:0000 0A 0:0 0:0 0 0 0 1",
                "8 hex digits",
            ),
        ];
        for (bad, why) in cases {
            let text = format!("sl local_address\n{good}\n{bad}\n{good}\n");
            let (path, line, reason) = parse_err(&text, Transport::Tcp, 4);
            assert_eq!((path.as_str(), line), ("net/tcp", 3), "{bad}");
            assert!(reason.contains(why), "{bad}: {reason}");
        }
        // An IPv4 address in an IPv6 table.
        let (path, line, reason) = parse_err(&format!("{good}\n"), Transport::Udp, 6);
        assert_eq!((path.as_str(), line), ("net/udp6", 1));
        assert!(reason.contains("32 hex digits"), "{reason}");
    }

    #[test]
    fn error_message_is_one_clear_line() {
        let err = parse_table("h local_address\n0: nonsense\n", Transport::Tcp, 6).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("net/tcp6:2: "), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: mutate a real line byte by byte.
        let line = TCP.lines().nth(1).unwrap().as_bytes().to_vec();
        let junk = [b' ', b':', b'0', b'F', b'G', b'-', 0xff, b'\n'];
        for i in 0..line.len() {
            for &j in &junk {
                let mut l = line.clone();
                l[i] = j;
                let text = String::from_utf8_lossy(&l);
                let _ = parse_table(&text, Transport::Tcp, 4);
                let _ = parse_table(&text, Transport::Udp, 6);
            }
            let text = String::from_utf8_lossy(&line[..i]);
            let _ = parse_table(&text, Transport::Tcp, 4);
        }
    }
}

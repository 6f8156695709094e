//! The original design's scan method, `--scan-method bind`, kept for hosts where the
//! kernel tables are not readable, and fixed: UDP as well as TCP, IPv6 as well as
//! IPv4, `SO_REUSEADDR` explicitly off, and a refused bind (EACCES/EPERM — ports
//! below `net.ipv4.ip_unprivileged_port_start` for a non-root user) is counted apart
//! rather than reported as occupied.
//!
//! What a bind probe cannot see, by its nature: owners (pid is always `None`),
//! remote ends, and the difference between a listener and any other socket that
//! holds the port (a connected client's ephemeral port, a TIME_WAIT socket), all of
//! which are reported as `LISTEN`/`UNCONN` on the wildcard address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;

use socket2::{Domain, Protocol, Type};

use crate::error::Error;
use crate::socket::{Socket, Transport};
use crate::source::SocketSource;

/// The uid of a socket found by probing: the kernel's "no uid", `(uid_t)-1`.
pub const UNKNOWN_UID: u32 = u32::MAX;

/// The outcome of one bind attempt.
#[derive(Debug)]
pub enum Probe {
    /// The bind succeeded: nothing holds the port.
    Free,
    /// EADDRINUSE: a socket holds the port.
    Occupied,
    /// EACCES or EPERM: we may not bind it (a privileged port as non-root). Says
    /// nothing about whether the port is in use.
    Denied,
    /// Any other error: the probe itself failed.
    Failed(io::Error),
}

/// Classifies a failed bind: the decision the original design got wrong (it
/// counted every error as "occupied").
pub fn classify(err: io::Error) -> Probe {
    match err.raw_os_error() {
        Some(libc::EADDRINUSE) => Probe::Occupied,
        Some(libc::EACCES | libc::EPERM) => Probe::Denied,
        _ => Probe::Failed(err),
    }
}

/// Tries to bind one socket of `transport` to `addr` (IPv6 sockets v6-only, so the
/// IPv4 and IPv6 port spaces are probed separately), then closes it.
pub fn probe(transport: Transport, addr: SocketAddr) -> Probe {
    let (ty, protocol) = match transport {
        Transport::Tcp => (Type::STREAM, Protocol::TCP),
        Transport::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let socket = match socket2::Socket::new(Domain::for_address(addr), ty, Some(protocol)) {
        Ok(s) => s,
        Err(e) => return Probe::Failed(e),
    };
    let setup = socket.set_reuse_address(false).and_then(|()| {
        if addr.is_ipv6() {
            socket.set_only_v6(true)
        } else {
            Ok(())
        }
    });
    if let Err(e) = setup {
        return Probe::Failed(e);
    }
    match socket.bind(&addr.into()) {
        Ok(()) => Probe::Free,
        Err(e) => classify(e),
    }
}

/// Probes every port of a range over TCP and UDP, IPv4 and (where the host has it)
/// IPv6. See the module docs for what it cannot see.
#[derive(Debug, Clone)]
pub struct BindProbe {
    ports: RangeInclusive<u16>,
    ipv6: Option<bool>,
    denied: u32,
}

impl Default for BindProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl BindProbe {
    /// Ports 1–65535, IPv6 if the host supports it.
    pub fn new() -> Self {
        Self::with_ports(1..=65535)
    }

    /// A port range; port 0 is skipped (binding it picks an ephemeral port).
    pub fn with_ports(ports: RangeInclusive<u16>) -> Self {
        BindProbe {
            ports,
            ipv6: None,
            denied: 0,
        }
    }

    /// Force IPv6 probing on or off instead of detecting it.
    pub fn ipv6(mut self, on: bool) -> Self {
        self.ipv6 = Some(on);
        self
    }

    /// How many ports of the last sample could not be probed for lack of privilege
    /// (EACCES/EPERM on at least one of their binds) — not counted as occupied; the
    /// caller should say so (e.g. "412 ports below 1024 not probed: not root").
    pub fn denied_ports(&self) -> u32 {
        self.denied
    }

    fn ipv6_enabled(&mut self) -> bool {
        *self.ipv6.get_or_insert_with(|| {
            // IPv6 compiled out (EAFNOSUPPORT) or disabled (EADDRNOTAVAIL on `::`).
            matches!(
                probe(
                    Transport::Udp,
                    SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
                ),
                Probe::Free
            )
        })
    }
}

impl SocketSource for BindProbe {
    fn sample(&mut self) -> Result<Vec<Socket>, Error> {
        let mut families: Vec<(u8, IpAddr)> = vec![(4, Ipv4Addr::UNSPECIFIED.into())];
        if self.ipv6_enabled() {
            families.push((6, Ipv6Addr::UNSPECIFIED.into()));
        }
        let mut found = Vec::new();
        let mut denied = 0;
        for port in self.ports.clone().filter(|&p| p != 0) {
            let mut port_denied = false;
            for &(family, ip) in &families {
                for transport in [Transport::Tcp, Transport::Udp] {
                    match probe(transport, SocketAddr::new(ip, port)) {
                        Probe::Free => {}
                        Probe::Denied => port_denied = true,
                        Probe::Occupied => found.push(Socket {
                            transport,
                            family,
                            local_addr: ip,
                            local_port: port,
                            remote_addr: ip,
                            remote_port: 0,
                            state: match transport {
                                Transport::Tcp => "LISTEN",
                                Transport::Udp => "UNCONN",
                            },
                            uid: UNKNOWN_UID,
                            inode: 0,
                            pid: None,
                            process: None,
                            exe: None,
                            netns: None,
                            container: None,
                        }),
                        Probe::Failed(source) => {
                            return Err(Error::Probe {
                                protocol: transport.as_str(),
                                family,
                                port,
                                source,
                            });
                        }
                    }
                }
            }
            denied += u32::from(port_denied);
        }
        self.denied = denied;
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_errno() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert!(matches!(classify(e(libc::EADDRINUSE)), Probe::Occupied));
        assert!(matches!(classify(e(libc::EACCES)), Probe::Denied));
        assert!(matches!(classify(e(libc::EPERM)), Probe::Denied));
        assert!(matches!(classify(e(libc::EADDRNOTAVAIL)), Probe::Failed(_)));
        assert!(matches!(classify(e(libc::EMFILE)), Probe::Failed(_)));
        assert!(matches!(
            classify(io::Error::other("not an OS error")),
            Probe::Failed(_)
        ));
    }
}

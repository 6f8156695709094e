//! The one seam between the collector and the OS socket table.
//!
//! bandwhich puts every OS input behind `OsInputOutput` so its UI tests can feed
//! fakes; we do the same with one small trait, and go further: the real reader
//! ([`crate::ProcNet`]) takes a root directory, so the OS layer itself is tested on
//! recorded `/proc` trees rather than only being replaced in tests.

use std::net::IpAddr;

use crate::error::Error;
use crate::socket::Socket;

/// Something that can say, now, which sockets exist.
pub trait SocketSource {
    /// One sample of the socket table. Owners (`pid`, `process`) are filled where
    /// the source can see them.
    fn sample(&mut self) -> Result<Vec<Socket>, Error>;

    /// The addresses of the other network namespaces the last sample read, by
    /// namespace: which of a packet's ends is a container's (the owners' lookup).
    fn namespace_addrs(&self) -> Vec<(u64, IpAddr)> {
        Vec::new()
    }
}

impl<S: SocketSource + ?Sized> SocketSource for Box<S> {
    fn sample(&mut self) -> Result<Vec<Socket>, Error> {
        (**self).sample()
    }
    fn namespace_addrs(&self) -> Vec<(u64, IpAddr)> {
        (**self).namespace_addrs()
    }
}

impl<S: SocketSource + ?Sized> SocketSource for &mut S {
    fn sample(&mut self) -> Result<Vec<Socket>, Error> {
        (**self).sample()
    }
    fn namespace_addrs(&self) -> Vec<(u64, IpAddr)> {
        (**self).namespace_addrs()
    }
}

/// Recorded samples played back in order, the last one repeating — for tests of
/// code that drives a [`SocketSource`] (the collector's scanner thread).
#[derive(Debug, Clone, Default)]
pub struct Replay {
    samples: Vec<Vec<Socket>>,
    next: usize,
}

impl Replay {
    pub fn new(samples: Vec<Vec<Socket>>) -> Self {
        Replay { samples, next: 0 }
    }
}

impl SocketSource for Replay {
    fn sample(&mut self) -> Result<Vec<Socket>, Error> {
        let i = self.next.min(self.samples.len().saturating_sub(1));
        self.next = self.next.saturating_add(1);
        Ok(self.samples.get(i).cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;
    use std::net::Ipv4Addr;

    fn sock(port: u16) -> Socket {
        Socket {
            transport: Transport::Tcp,
            family: 4,
            local_addr: Ipv4Addr::LOCALHOST.into(),
            local_port: port,
            remote_addr: Ipv4Addr::UNSPECIFIED.into(),
            remote_port: 0,
            state: "LISTEN",
            uid: 0,
            inode: 1,
            pid: None,
            process: None,
            exe: None,
            netns: None,
            container: None,
        }
    }

    #[test]
    fn replay_plays_in_order_then_repeats_the_last() {
        let mut r = Replay::new(vec![vec![sock(1)], vec![sock(2), sock(3)]]);
        let mut dynamic: Box<dyn SocketSource> = Box::new(r.clone());
        assert_eq!(r.sample().unwrap()[0].local_port, 1);
        assert_eq!(r.sample().unwrap().len(), 2);
        assert_eq!(r.sample().unwrap().len(), 2);
        assert_eq!(dynamic.sample().unwrap()[0].local_port, 1);
        assert!(Replay::default().sample().unwrap().is_empty());
    }
}

//! Which socket tables of a network namespace hold anything, from the kernel's counts
//! (`/proc/net/sockstat` and `sockstat6`), so that an empty table is not dumped.
//!
//! With one TCP hash table for every namespace (the kernel's default), a namespace's
//! TCP dump walks all of its buckets even when the namespace has no TCP socket at all:
//! 50 namespaces without a socket took 31.5 ms a sample here (BENCHMARKS.md). Sandboxes
//! (a browser's renderers, Flatpak apps, build jails) run in namespaces with nothing but
//! `lo`. The counts are per namespace and cost a read of a few hundred bytes: a TCP
//! dump happens only where `TCP: inuse` or `tw`, or `TCP6: inuse`, is above 0 (every
//! socket in the TCP hash is counted there, a request socket only beside its counted
//! listener), a UDP dump only where its family's `inuse` is. Anything unreadable or
//! unexpected counts as occupied: the dump then happens as before. `tests/netns.rs`
//! reads the counts of a namespace it makes.

use std::fs::File;
use std::os::unix::fs::FileExt;

use portwatch_capture::Transport;

/// Which tables hold sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occupied {
    /// TCP, either family (one dump serves both).
    pub tcp: bool,
    /// UDP over IPv4.
    pub udp4: bool,
    /// UDP over IPv6.
    pub udp6: bool,
}

impl Occupied {
    /// Every table: what is assumed when the counts cannot be read.
    pub const ALL: Occupied = Occupied {
        tcp: true,
        udp4: true,
        udp6: true,
    };

    /// Whether the table of `transport` and `family` (4 or 6) holds anything.
    pub fn holds(self, transport: Transport, family: u8) -> bool {
        match (transport, family) {
            (Transport::Tcp, _) => self.tcp,
            (Transport::Udp, 4) => self.udp4,
            (Transport::Udp, _) => self.udp6,
        }
    }
}

/// A namespace's count files, open: each keeps its namespace from the moment it was
/// opened, whichever thread reads it later.
#[derive(Debug)]
pub struct SockStat {
    v4: File,
    v6: Option<File>,
}

impl SockStat {
    /// The counts of the calling thread's namespace (call it on a thread that entered
    /// the namespace); None where /proc does not give them.
    pub fn open_own() -> Option<SockStat> {
        let v4 = File::open("/proc/thread-self/net/sockstat").ok()?;
        // Absent when IPv6 is off: then nothing is counted there.
        let v6 = File::open("/proc/thread-self/net/sockstat6").ok();
        Some(SockStat { v4, v6 })
    }

    /// Which tables hold sockets now.
    pub fn read(&self) -> Occupied {
        let mut v4 = [0u8; 1024];
        let mut v6 = [0u8; 512];
        let Some(n4) = read_at_start(&self.v4, &mut v4) else {
            return Occupied::ALL;
        };
        let n6 = match &self.v6 {
            Some(f) => match read_at_start(f, &mut v6) {
                Some(n) => n,
                None => return Occupied::ALL,
            },
            None => 0,
        };
        match (
            std::str::from_utf8(&v4[..n4]),
            std::str::from_utf8(&v6[..n6]),
        ) {
            (Ok(a), Ok(b)) => parse(a, b, self.v6.is_some()),
            _ => Occupied::ALL,
        }
    }
}

/// The file from its start, whole (None when it does not fit or cannot be read).
fn read_at_start(f: &File, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    loop {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => return Some(n),
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        if n == buf.len() {
            return None;
        }
    }
}

/// The occupied tables from the text of `sockstat` and `sockstat6` (`has_v6`: whether
/// the second exists; without it no IPv6 socket can exist).
pub fn parse(v4: &str, v6: &str, has_v6: bool) -> Occupied {
    // A count that cannot be found counts as "something there".
    let some = |text: &str, line: &str, key: &str| -> bool {
        count(text, line, key).is_none_or(|n| n > 0)
    };
    let tcp6 = has_v6 && some(v6, "TCP6:", "inuse");
    let udp6 = has_v6 && some(v6, "UDP6:", "inuse");
    Occupied {
        tcp: some(v4, "TCP:", "inuse") || some(v4, "TCP:", "tw") || tcp6,
        udp4: some(v4, "UDP:", "inuse"),
        udp6,
    }
}

/// The number after `key` on the line that starts with `line`.
fn count(text: &str, line: &str, key: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(line))?;
    let mut words = rest.split_ascii_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            return words.next()?.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // As Linux 6.x writes them.
    const EMPTY4: &str = "sockets: used 5\nTCP: inuse 0 orphan 0 tw 0 alloc 0 mem 0\n\
                          UDP: inuse 0 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
    const EMPTY6: &str =
        "TCP6: inuse 0\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n";

    #[test]
    fn counts_say_which_tables_to_dump() {
        let none = Occupied {
            tcp: false,
            udp4: false,
            udp6: false,
        };
        assert_eq!(parse(EMPTY4, EMPTY6, true), none);
        // A TIME_WAIT alone still means a dump.
        let tw = EMPTY4.replace("tw 0", "tw 3");
        assert_eq!(parse(&tw, EMPTY6, true), Occupied { tcp: true, ..none });
        let tcp6 = EMPTY6.replace("TCP6: inuse 0", "TCP6: inuse 2");
        assert_eq!(parse(EMPTY4, &tcp6, true), Occupied { tcp: true, ..none });
        let udp4 = EMPTY4.replace("UDP: inuse 0", "UDP: inuse 1");
        assert_eq!(parse(&udp4, EMPTY6, true), Occupied { udp4: true, ..none });
        let udp6 = EMPTY6.replace("UDP6: inuse 0", "UDP6: inuse 9");
        assert_eq!(parse(EMPTY4, &udp6, true), Occupied { udp6: true, ..none });
        // Without sockstat6 there is no IPv6.
        assert_eq!(parse(EMPTY4, "", false), none);
        // Unexpected text counts as occupied.
        assert_eq!(parse("", "", true), Occupied::ALL);
        assert_eq!(
            parse(
                &EMPTY4.replace("inuse 0 orphan", "inuse x orphan"),
                EMPTY6,
                true
            ),
            Occupied { tcp: true, ..none }
        );
        assert!(Occupied::ALL.holds(Transport::Udp, 6));
        assert!(!none.holds(Transport::Tcp, 4));
    }
}

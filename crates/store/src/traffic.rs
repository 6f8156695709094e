//! Aggregates over part of a round's packets — the actors behind an anomalous step,
//! for its explanation. Each query is bounded by the round's rowid range (the packets
//! table's primary key) before it looks at timestamps.

use crate::{Db, Error, time};

/// Packets of one round within a time interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketSpan {
    /// First packet rowid of the round.
    pub first_id: i64,
    /// Last packet rowid of the round.
    pub last_id: i64,
    /// Interval start (µs, inclusive).
    pub from: i64,
    /// Interval end (µs, exclusive).
    pub until: i64,
}

/// Packets to one destination endpoint from one process.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    /// Destination address.
    pub addr: Option<String>,
    /// Destination port.
    pub port: Option<i64>,
    /// The local process, when attributed.
    pub process: Option<String>,
    /// Packets.
    pub packets: i64,
    /// Bytes on the wire.
    pub bytes: Option<i64>,
}

/// Packets from one source address.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// Source address.
    pub addr: Option<String>,
    /// Packets.
    pub packets: i64,
    /// Distinct destination ports it sent to.
    pub distinct_dest_ports: i64,
}

/// Queries of one DNS name.
#[derive(Clone, Debug, PartialEq)]
pub struct NameCount {
    /// The query name.
    pub name: String,
    /// Packets carrying it.
    pub queries: i64,
}

/// A sender's traffic in a span: who it is and how broadly it reached.
#[derive(Clone, Debug, PartialEq)]
pub struct SenderStats {
    /// Source address.
    pub addr: String,
    /// The local process that sent it, when attributed (`None` for remote senders and
    /// unattributed local ones).
    pub process: Option<String>,
    /// Its pid, when attributed.
    pub pid: Option<i64>,
    /// Packets.
    pub packets: i64,
    /// Bytes on the wire.
    pub bytes: i64,
    /// Distinct destination addresses.
    pub destinations: i64,
    /// Distinct destination ports.
    pub dest_ports: i64,
    /// TCP packets with SYN set and ACK clear (connection attempts, probes).
    pub syns: i64,
    /// Distinct destination ports of those (what a scan reaches).
    pub syn_ports: i64,
    /// Distinct destination addresses of those.
    pub syn_destinations: i64,
    /// First packet (µs).
    pub first: i64,
    /// Last packet (µs).
    pub last: i64,
}

/// The ICMP (or ICMPv6) an address sent in a span, by how many addresses it reached.
#[derive(Clone, Debug, PartialEq)]
pub struct IcmpFanout {
    pub src: String,
    /// Distinct destinations.
    pub destinations: i64,
    pub packets: i64,
    /// First packet (µs).
    pub first: i64,
    /// Last packet (µs).
    pub last: i64,
}

/// An address that answered DNS in a span.
#[derive(Clone, Debug, PartialEq)]
pub struct DnsResponder {
    pub addr: String,
    pub answers: i64,
    /// Distinct names answered.
    pub names: i64,
}

/// ICMP (or ICMPv6) packets from one address to another in a span.
#[derive(Clone, Debug, PartialEq)]
pub struct IcmpPair {
    pub src: String,
    pub dst: String,
    pub packets: i64,
    /// Bytes on the wire.
    pub bytes: i64,
    /// First packet (µs).
    pub first: i64,
    /// Last packet (µs).
    pub last: i64,
}

/// How to rank senders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderOrder {
    /// Most distinct destination ports reached by connection attempts first (scans).
    Breadth,
    /// Most packets first (floods, uploads).
    Packets,
    /// Most bytes first.
    Bytes,
}

/// Connection attempts (SYN without ACK) to one port.
#[derive(Clone, Debug, PartialEq)]
pub struct SynTarget {
    /// The destination port.
    pub port: i64,
    /// Distinct sources.
    pub sources: i64,
    /// Attempts.
    pub syns: i64,
}

/// UDP datagrams to one address, on ports where nothing listens.
#[derive(Clone, Debug, PartialEq)]
pub struct UdpTarget {
    /// The destination address.
    pub addr: String,
    /// Datagrams.
    pub datagrams: i64,
    /// Distinct sources.
    pub sources: i64,
    /// Distinct destination ports.
    pub ports: i64,
    /// Bytes on the wire.
    pub bytes: i64,
    /// First and last datagram (µs).
    pub first: i64,
    pub last: i64,
}

/// One remote address's connections to one port.
#[derive(Clone, Debug, PartialEq)]
pub struct RepeatSource {
    /// The remote address.
    pub addr: String,
    /// Connection attempts: distinct source ports of its SYNs without ACK.
    pub connections: i64,
    /// Its packets to the port, and their bytes.
    pub packets: i64,
    pub bytes: i64,
    /// Its first and last packet to the port (µs).
    pub first: i64,
    pub last: i64,
}

/// Queries of one DNS name by one process.
#[derive(Clone, Debug, PartialEq)]
pub struct NameQueries {
    /// The query name.
    pub name: String,
    /// The local process, when attributed.
    pub process: Option<String>,
    /// Query packets.
    pub queries: i64,
}

/// One process's traffic between two endpoints in one round, as `round_talkers` holds
/// it (either end may be the host's: the caller knows which addresses are local).
#[derive(Clone, Debug, PartialEq)]
pub struct RoundTalk {
    pub round_id: i64,
    pub src: Option<String>,
    pub dst: Option<String>,
    pub packets: i64,
    pub bytes: i64,
}

/// Packets of one local process between two endpoints, as stored (either end may be
/// the host's: the caller knows which addresses are local).
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessFlow {
    pub src: Option<String>,
    pub sport: Option<i64>,
    pub dst: Option<String>,
    pub dport: Option<i64>,
    /// Packets.
    pub packets: i64,
    /// Bytes on the wire.
    pub bytes: i64,
    /// A TLS or QUIC server name seen on the flow.
    pub server_name: Option<String>,
    /// The process's pid on the flow (the highest, if it changed).
    pub pid: Option<i64>,
}

impl PacketSpan {
    /// Every packet of a round's rowid range.
    pub fn whole(first_id: i64, last_id: i64) -> PacketSpan {
        PacketSpan {
            first_id,
            last_id,
            from: i64::MIN / 2,
            until: i64::MAX / 2,
        }
    }
}

impl Db {
    /// The senders of a span (source address, and the local process when attributed),
    /// ranked by `order`.
    pub fn senders(
        &self,
        s: &PacketSpan,
        order: SenderOrder,
        limit: usize,
    ) -> Result<Vec<SenderStats>, Error> {
        let by = match order {
            SenderOrder::Breadth => "syn_ports DESC, packets DESC",
            SenderOrder::Packets => "packets DESC",
            SenderOrder::Bytes => "bytes DESC",
        };
        let sql = format!(
            "SELECT src_addr, process, max(pid), count(*) AS packets, \
                    coalesce(sum(length), 0) AS bytes, count(DISTINCT dst_addr), \
                    count(DISTINCT dest_port) AS dest_ports, \
                    sum(tcp_flags IS NOT NULL AND (tcp_flags & 18) = 2), \
                    min(timestamp), max(timestamp), \
                    count(DISTINCT CASE WHEN (tcp_flags & 18) = 2 THEN dest_port END) \
                        AS syn_ports, \
                    count(DISTINCT CASE WHEN (tcp_flags & 18) = 2 THEN dst_addr END) \
               FROM packets \
              WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
                AND src_addr IS NOT NULL \
              GROUP BY src_addr, process ORDER BY {by} LIMIT ?5"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(SenderStats {
                addr: row.get(0)?,
                process: row.get(1)?,
                pid: row.get(2)?,
                packets: row.get(3)?,
                bytes: row.get(4)?,
                destinations: row.get(5)?,
                dest_ports: row.get(6)?,
                syns: row.get(7)?,
                first: micros(row, 8)?,
                last: micros(row, 9)?,
                syn_ports: row.get(10)?,
                syn_destinations: row.get(11)?,
            })
        })
    }

    /// ICMP and ICMPv6 packets by source and destination address, most packets first
    /// (at most `limit` pairs). ICMP carries no port, so no process is attributed:
    /// this is how a tunnel over pings, or a ping flood, is found by its peer.
    pub fn icmp_pairs(&self, s: &PacketSpan, limit: usize) -> Result<Vec<IcmpPair>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT src_addr, dst_addr, count(*) AS c, coalesce(sum(length), 0), \
                    min(timestamp), max(timestamp) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND protocols LIKE '%:icmp%' AND src_addr IS NOT NULL AND dst_addr IS NOT NULL \
             GROUP BY src_addr, dst_addr ORDER BY c DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(IcmpPair {
                src: row.get(0)?,
                dst: row.get(1)?,
                packets: row.get(2)?,
                bytes: row.get(3)?,
                first: micros(row, 4)?,
                last: micros(row, 5)?,
            })
        })
    }

    /// The sources of ICMP in a span that reached the most distinct addresses, most
    /// first: a ping sweep reaches hundreds, a monitor one or two.
    pub fn icmp_fanout(&self, s: &PacketSpan, limit: usize) -> Result<Vec<IcmpFanout>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT src_addr, count(DISTINCT dst_addr) AS n, count(*), \
                    min(timestamp), max(timestamp) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND protocols LIKE '%:icmp%' AND src_addr IS NOT NULL AND dst_addr IS NOT NULL \
             GROUP BY src_addr ORDER BY n DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(IcmpFanout {
                src: row.get(0)?,
                destinations: row.get(1)?,
                packets: row.get(2)?,
                first: micros(row, 3)?,
                last: micros(row, 4)?,
            })
        })
    }

    /// The addresses `src` sent ICMP to in a span (at most `limit`), and how many
    /// distinct addresses sent ICMP back to it.
    pub fn icmp_reach(
        &self,
        s: &PacketSpan,
        src: &str,
        limit: usize,
    ) -> Result<(Vec<String>, i64), Error> {
        let (a, b, from, to, limit) = span_params(s, limit);
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT dst_addr FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND protocols LIKE '%:icmp%' AND src_addr = ?5 AND dst_addr IS NOT NULL \
             LIMIT ?6",
        )?;
        let reached = st
            .query_map(rusqlite::params![a, b, from, to, src, limit], |row| {
                row.get(0)
            })?
            .collect::<Result<Vec<String>, _>>()?;
        let answered = self
            .conn
            .prepare_cached(
                "SELECT count(DISTINCT src_addr) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND protocols LIKE '%:icmp%' AND dst_addr = ?5 AND src_addr IS NOT NULL",
            )?
            .query_row(rusqlite::params![a, b, from, to, src], |row| row.get(0))?;
        Ok((reached, answered))
    }

    /// The addresses that sent DNS answers in a span, most answers first.
    pub fn dns_responders(&self, s: &PacketSpan, limit: usize) -> Result<Vec<DnsResponder>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT src_addr, count(*) AS c, count(DISTINCT qry_name) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND dns_qr = 1 AND src_addr IS NOT NULL \
             GROUP BY src_addr ORDER BY c DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(DnsResponder {
                addr: row.get(0)?,
                answers: row.get(1)?,
                names: row.get(2)?,
            })
        })
    }

    /// The ports most connection attempts went to, with how many sources tried.
    pub fn syn_targets(&self, s: &PacketSpan, limit: usize) -> Result<Vec<SynTarget>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT dest_port, count(DISTINCT src_addr), count(*) AS c FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND (tcp_flags & 18) = 2 AND dest_port IS NOT NULL \
             GROUP BY dest_port ORDER BY c DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(SynTarget {
                port: row.get(0)?,
                sources: row.get(1)?,
                syns: row.get(2)?,
            })
        })
    }

    /// The addresses that received most UDP datagrams on ports not in `listening` (the
    /// UDP ports something listens on), most first: where a UDP flood at ports nothing
    /// serves lands, without a busy DNS or QUIC service's own clients.
    pub fn udp_targets(
        &self,
        s: &PacketSpan,
        listening: &[u16],
        limit: usize,
    ) -> Result<Vec<UdpTarget>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT dst_addr, count(*) AS c, count(DISTINCT src_addr), count(DISTINCT dest_port), \
                    coalesce(sum(length), 0), min(timestamp), max(timestamp) \
               FROM packets \
              WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
                AND tcp_flags IS NULL AND dest_port IS NOT NULL AND dst_addr IS NOT NULL \
                AND instr(protocols, ':udp') > 0 \
                AND dest_port NOT IN (SELECT value FROM json_each(?6)) \
              GROUP BY dst_addr ORDER BY c DESC, dst_addr LIMIT ?5",
        )?;
        let (a, b, c, d, e) = span_params(s, limit);
        let ports = format!(
            "[{}]",
            listening
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        collect_rows(&mut st, rusqlite::params![a, b, c, d, e, ports], |row| {
            Ok(UdpTarget {
                addr: row.get(0)?,
                datagrams: row.get(1)?,
                sources: row.get(2)?,
                ports: row.get(3)?,
                bytes: row.get(4)?,
                first: micros(row, 5)?,
                last: micros(row, 6)?,
            })
        })
    }

    /// The sources that opened most connections to TCP port `port`, most first.
    pub fn repeat_sources(
        &self,
        s: &PacketSpan,
        port: u16,
        limit: usize,
    ) -> Result<Vec<RepeatSource>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT src_addr, \
                    count(DISTINCT CASE WHEN (tcp_flags & 18) = 2 THEN port_id END) AS c, \
                    count(*), coalesce(sum(length), 0), min(timestamp), max(timestamp) \
               FROM packets \
              WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
                AND dest_port = ?6 AND tcp_flags IS NOT NULL AND src_addr IS NOT NULL \
              GROUP BY src_addr ORDER BY c DESC, src_addr LIMIT ?5",
        )?;
        let (a, b, c, d, e) = span_params(s, limit);
        collect_rows(&mut st, rusqlite::params![a, b, c, d, e, port], |row| {
            Ok(RepeatSource {
                addr: row.get(0)?,
                connections: row.get(1)?,
                packets: row.get(2)?,
                bytes: row.get(3)?,
                first: micros(row, 4)?,
                last: micros(row, 5)?,
            })
        })
    }

    /// The distinct addresses one sender's connection attempts went to (at most
    /// `limit`): its source address and process.
    pub fn syn_destinations(
        &self,
        s: &PacketSpan,
        src: &str,
        process: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        // Per sender as `senders` groups them: the address and its process (or none),
        // so a browser's connections and a scanner's sweep from the same host are
        // told apart.
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT dst_addr FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND (tcp_flags & 18) = 2 AND src_addr = ?5 AND process IS ?7 \
               AND dst_addr IS NOT NULL LIMIT ?6",
        )?;
        let (a, b, c, d, e) = span_params(s, limit);
        let rows = st.query_map(rusqlite::params![a, b, c, d, src, e, process], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// The names whose responses in a span all came back without an answer (NXDOMAIN,
    /// or no record of the type asked), at most `limit`: what a domain-generation
    /// algorithm leaves behind.
    pub fn dns_unanswered(&self, s: &PacketSpan, limit: usize) -> Result<Vec<String>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT qry_name FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND qry_name IS NOT NULL AND dns_qr = 1 \
             GROUP BY qry_name HAVING max(resp_name IS NOT NULL) = 0 LIMIT ?5",
        )?;
        let rows = st.query_map(span_params(s, limit), |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// The DNS names queried in a span, most queried first, with the querying process.
    pub fn dns_queries(&self, s: &PacketSpan, limit: usize) -> Result<Vec<NameQueries>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT qry_name, process, count(*) AS c FROM packets              WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4                AND qry_name IS NOT NULL AND coalesce(dns_qr, 0) = 0              GROUP BY qry_name, process ORDER BY c DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(NameQueries {
                name: row.get(0)?,
                process: row.get(1)?,
                queries: row.get(2)?,
            })
        })
    }

    /// The busiest endpoint pairs of one local process in a span: what a new program
    /// talked to; with `port`, only the flows with that port at either end (a known
    /// program's first connections to a service port); with `addr`, only those with
    /// that address at either end (a channel to one peer).
    pub fn process_flows(
        &self,
        s: &PacketSpan,
        process: &str,
        port: Option<u16>,
        addr: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ProcessFlow>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT src_addr, port_id, dst_addr, dest_port, count(*) AS c, sum(length), \
                    max(server_name), max(pid) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND process = ?6 AND (?7 IS NULL OR dest_port = ?7 OR port_id = ?7) \
               AND (?8 IS NULL OR src_addr = ?8 OR dst_addr = ?8) \
             GROUP BY src_addr, port_id, dst_addr, dest_port ORDER BY c DESC LIMIT ?5",
        )?;
        let (a, b, c, d, e) = span_params(s, limit);
        collect_rows(
            &mut st,
            rusqlite::params![a, b, c, d, e, process, port, addr],
            |row| {
                Ok(ProcessFlow {
                    src: row.get(0)?,
                    sport: row.get(1)?,
                    dst: row.get(2)?,
                    dport: row.get(3)?,
                    packets: row.get(4)?,
                    bytes: row.get::<_, Option<i64>>(5)?.unwrap_or(0),
                    server_name: row.get(6)?,
                    pid: row.get(7)?,
                })
            },
        )
    }

    /// What `process` exchanged with each pair of endpoints in each round with an id in
    /// `first..=last`, from the rounds' totals (`round_talkers`: live and simulated
    /// rounds have them, capture files do not): how long a program has talked to a
    /// peer reads a few rows a round instead of every packet.
    pub fn process_talks(
        &self,
        first: i64,
        last: i64,
        process: &str,
    ) -> Result<Vec<RoundTalk>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT round_id, src_addr, dst_addr, packets, bytes FROM round_talkers \
             WHERE round_id BETWEEN ?1 AND ?2 AND process = ?3 ORDER BY round_id",
        )?;
        collect_rows(&mut st, rusqlite::params![first, last, process], |row| {
            Ok(RoundTalk {
                round_id: row.get(0)?,
                src: row.get(1)?,
                dst: row.get(2)?,
                packets: row.get(3)?,
                bytes: row.get(4)?,
            })
        })
    }

    /// The busiest (destination, port, process) triples of a span.
    pub fn top_destinations(
        &self,
        s: &PacketSpan,
        limit: usize,
    ) -> Result<Vec<Destination>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT dst_addr, dest_port, process, count(*) AS c, sum(length) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
             GROUP BY dst_addr, dest_port, process ORDER BY c DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(Destination {
                addr: row.get(0)?,
                port: row.get(1)?,
                process: row.get(2)?,
                packets: row.get(3)?,
                bytes: row.get(4)?,
            })
        })
    }

    /// The busiest source addresses of a span.
    pub fn top_sources(&self, s: &PacketSpan, limit: usize) -> Result<Vec<Source>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT src_addr, count(*) AS c, count(DISTINCT dest_port) FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
             GROUP BY src_addr ORDER BY c DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(Source {
                addr: row.get(0)?,
                packets: row.get(1)?,
                distinct_dest_ports: row.get(2)?,
            })
        })
    }

    /// The longest DNS query names of a span (long random names are what tunnels and
    /// generated domains look like), with their counts.
    pub fn longest_dns_names(&self, s: &PacketSpan, limit: usize) -> Result<Vec<NameCount>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT qry_name, count(*) AS c FROM packets \
             WHERE id BETWEEN ?1 AND ?2 AND timestamp >= ?3 AND timestamp < ?4 \
               AND qry_name IS NOT NULL \
             GROUP BY qry_name ORDER BY length(qry_name) DESC, c DESC LIMIT ?5",
        )?;
        collect_rows(&mut st, span_params(s, limit), |row| {
            Ok(NameCount {
                name: row.get(0)?,
                queries: row.get(1)?,
            })
        })
    }
}

/// Each row of `st` run with `params`, mapped by `map`: the queries' one loop (their
/// rows' timestamps are parsed with the store's error, which `query_map` cannot carry).
fn collect_rows<T>(
    st: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let mut rows = st.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// Column `i` of `row`, a stored timestamp, in microseconds.
fn micros(row: &rusqlite::Row<'_>, i: usize) -> Result<i64, Error> {
    time::parse_micros(&row.get::<_, String>(i)?)
}

fn span_params(s: &PacketSpan, limit: usize) -> (i64, i64, String, String, i64) {
    (
        s.first_id,
        s.last_id,
        time::format_micros(s.from),
        time::format_micros(s.until),
        limit as i64,
    )
}

//! Time series over rounds, for `detector plot`: each round's score against its
//! threshold, and the packets of the busiest ports round by round.

use rusqlite::params;

use crate::{Db, Error, time};

/// A scored round.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredRound {
    /// Round start (µs).
    pub start: i64,
    /// Round score.
    pub score: f64,
    /// Above the threshold.
    pub anomalous: bool,
    /// The threshold of the evaluation that scored it.
    pub threshold: Option<f64>,
}

/// Packets of one port in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPackets {
    /// Round start (µs).
    pub start: i64,
    /// The port: the lower of a packet's two ports.
    pub port: u16,
    /// Packets.
    pub packets: u64,
}

/// `since` as the text the `start_time` column holds; everything without one.
fn since_text(since: Option<i64>) -> String {
    since.map_or_else(String::new, time::format_micros)
}

impl Db {
    /// Every scored round that started at or after `since` (µs), with its verdict and
    /// threshold, in time order; rounds whose stored start does not parse are skipped.
    pub fn scored_rounds(&self, since: Option<i64>) -> Result<Vec<ScoredRound>, Error> {
        let mut st = self.conn.prepare(
            "SELECT r.start_time, br.score, br.anomalous, b.threshold FROM batches_rounds br \
               JOIN rounds r ON r.id = br.round_id JOIN batches b ON b.id = br.batch_id \
              WHERE br.score IS NOT NULL AND r.start_time >= ?1 ORDER BY r.start_time",
        )?;
        let rows = st.query_map([since_text(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<f64>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (start, score, anomalous, threshold) = row?;
            if let Ok(start) = time::parse_micros(&start) {
                out.push(ScoredRound {
                    start,
                    score,
                    anomalous,
                    threshold,
                });
            }
        }
        Ok(out)
    }

    /// Packets per port per round, for the rounds that started at or after `since`
    /// (µs), in time order. A packet counts for the lower of its two ports — the
    /// service's side of a connection, as flow tools count it, whichever way the packet
    /// goes; packets without ports (ICMP, ARP) count for none. Rounds are selected by
    /// time (indexed), their packets by rowid range.
    pub fn port_packets(&self, since: Option<i64>) -> Result<Vec<PortPackets>, Error> {
        let mut st = self.conn.prepare(
            "SELECT r.start_time, min(p.port_id, p.dest_port) AS port, count(*) \
               FROM rounds r JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id \
              WHERE r.start_time >= ?1 AND p.port_id IS NOT NULL AND p.dest_port IS NOT NULL \
              GROUP BY r.id, port ORDER BY r.start_time",
        )?;
        let rows = st.query_map(params![since_text(since)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (start, port, packets) = row?;
            if let (Ok(start), Ok(port)) = (time::parse_micros(&start), u16::try_from(port)) {
                out.push(PortPackets {
                    start,
                    port,
                    packets: u64::try_from(packets).unwrap_or(0),
                });
            }
        }
        Ok(out)
    }
}

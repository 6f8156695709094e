//! Reading rounds back: the rounds the detector evaluates, their socket samples, and
//! their packets streamed by rowid range.
//!
//! Packets of a round are read through its rowid range (`first_packet_id ..=
//! last_packet_id`): `packets` has no index on `round_id` by design. Rows are handed to
//! a callback one at a time, borrowed from SQLite's buffers, so memory stays flat
//! however busy the round was.

use portwatch_features::{PktRow, SockRow};
use rusqlite::{OptionalExtension, params};

use crate::insert::{RoundSource, RoundStatus};
use crate::{Db, Error, time};

/// The packet columns the features read, of a rowid range (`?1 ..= ?2`).
pub(crate) const PACKETS_OF_RANGE: &str = "SELECT timestamp, protocols, qry_name, \
     resp_name IS NOT NULL, port_id, dest_port, src_addr, dst_addr, length, tcp_flags, \
     dns_qr, process FROM packets WHERE id BETWEEN ?1 AND ?2";

/// A closed round as the detector sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundInfo {
    /// `rounds.id`.
    pub id: i64,
    /// Start (µs).
    pub start: i64,
    /// End (µs).
    pub end: i64,
    /// `rounds.scan_interval` (s).
    pub scan_interval: Option<f64>,
    /// Packet rowid range.
    pub first_packet_id: Option<i64>,
    /// Packet rowid range.
    pub last_packet_id: Option<i64>,
}

/// Who listens on a port, as the scanner saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketOwner {
    /// The owning pid, when visible.
    pub pid: Option<i64>,
    /// The owning process, when visible.
    pub process: Option<String>,
    /// Its executable, when visible.
    pub exe: Option<String>,
    /// The user that opened the socket, when known.
    pub uid: Option<i64>,
    /// The network namespace it lives in, when not the host's (`rounds_ports.netns`).
    pub netns: Option<i64>,
    /// The container of that namespace, when named.
    pub container: Option<String>,
}

impl RoundInfo {
    /// The round's packet rowid range, when it has packets.
    pub fn packet_range(&self) -> Option<(i64, i64)> {
        self.first_packet_id.zip(self.last_packet_id)
    }
}

/// The rounds the detector looks at: live or simulated, closed (`end_time` set), not
/// failed; file ingests are not host history.
fn owner_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SocketOwner> {
    Ok(SocketOwner {
        pid: r.get(0)?,
        process: r.get(1)?,
        exe: r.get(2)?,
        uid: r.get(3)?,
        netns: r.get(4)?,
        container: r.get(5)?,
    })
}

/// A listener's protocol and the state the scanner stores it in: TCP listens, UDP is
/// unconnected. One literal state per query, so that SQLite reads only that state's
/// entries of the partial index `rounds_ports_listen` (with both, a UDP port's lookup
/// read every TCP listener row of the same port first: 138 ms for udp/53 on a
/// simulated workstation day).
fn listening(tcp: bool) -> (&'static str, &'static str) {
    if tcp {
        ("tcp", "LISTEN")
    } else {
        ("udp", "UNCONN")
    }
}

fn eligible() -> String {
    format!(
        "r.end_time IS NOT NULL AND r.status IN ('{}', '{}') \
         AND (r.source = '{}' OR r.source LIKE '{}%')",
        RoundStatus::Complete.as_str(),
        RoundStatus::Partial.as_str(),
        RoundSource::SIMULATED,
        RoundSource::LIVE_PREFIX,
    )
}

const COLUMNS: &str =
    "r.id, r.start_time, r.end_time, r.scan_interval, r.first_packet_id, r.last_packet_id";

/// Rounds (by id) before a round that [`Db::process_owner`] looks back through.
pub const OWNER_LOOKBACK: i64 = 30;

impl Db {
    /// The batch: eligible rounds no evaluation has seen, in time order.
    pub fn unevaluated_rounds(&self) -> Result<Vec<RoundInfo>, Error> {
        self.rounds_where(
            "AND NOT EXISTS (SELECT 1 FROM batches_rounds b WHERE b.round_id = r.id) \
             ORDER BY r.start_time, r.id",
            [],
        )
    }

    /// Every eligible round, evaluated or not, in time order (the cold start's history).
    pub fn history_rounds(&self) -> Result<Vec<RoundInfo>, Error> {
        self.rounds_where("ORDER BY r.start_time, r.id", [])
    }

    /// The names of processes the scanner saw owning sockets in rounds that started in
    /// `[from, until)` (µs): what a model from before programs were tracked takes as
    /// known.
    pub fn socket_processes(&self, from: i64, until: i64) -> Result<Vec<String>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT rp.process FROM rounds r JOIN rounds_ports rp ON rp.round_id = r.id \
             WHERE r.start_time >= ?1 AND r.start_time < ?2 AND rp.process IS NOT NULL",
        )?;
        let rows = st.query_map(
            params![time::format_micros(from), time::format_micros(until)],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Up to `n` eligible rounds that started before `before` (context for a batch's
    /// first windows), in time order.
    pub fn rounds_before(&self, before: &RoundInfo, n: usize) -> Result<Vec<RoundInfo>, Error> {
        let start = time::format_micros(before.start);
        let mut v = self.rounds_where(
            "AND r.start_time < ?1 ORDER BY r.start_time DESC, r.id DESC LIMIT ?2",
            params![start, n as i64],
        )?;
        v.reverse();
        Ok(v)
    }

    fn rounds_where(&self, rest: &str, p: impl rusqlite::Params) -> Result<Vec<RoundInfo>, Error> {
        let sql = format!("SELECT {COLUMNS} FROM rounds r WHERE {} {rest}", eligible());
        let mut st = self.conn.prepare_cached(&sql)?;
        let mut rows = st.query(p)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(RoundInfo {
                id: r.get(0)?,
                start: time::parse_micros(&r.get::<_, String>(1)?)?,
                end: time::parse_micros(&r.get::<_, String>(2)?)?,
                scan_interval: r.get(3)?,
                first_packet_id: r.get(4)?,
                last_packet_id: r.get(5)?,
            });
        }
        Ok(out)
    }

    /// The socket-table rows of a round's samples.
    pub fn round_sockets(&self, round_id: i64) -> Result<Vec<SockRow>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT timestamp, port_id, protocol, state, sockets, process FROM rounds_ports \
             WHERE round_id = ?1",
        )?;
        let mut rows = st.query([round_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let port: i64 = r.get(1)?;
            out.push(SockRow {
                ts: time::parse_micros(&r.get::<_, String>(0)?)?,
                port: port.clamp(0, 65535) as u16,
                tcp: r.get::<_, String>(2)? == "tcp",
                state: r.get(3)?,
                sockets: r.get(4)?,
                process: r.get(5)?,
            });
        }
        Ok(out)
    }

    /// The owner (pid, process) of a listening port in a round, as the scanner saw it
    /// (a row with a visible owner preferred); None when the port did not listen.
    pub fn listener_owner(
        &self,
        round_id: i64,
        port: u16,
        tcp: bool,
    ) -> Result<Option<SocketOwner>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT pid, process, exe, uid, netns, container FROM rounds_ports \
              WHERE round_id = ?1 AND port_id = ?2 AND protocol = ?3 \
                AND state IN ('LISTEN', 'UNCONN') \
              ORDER BY pid IS NULL, exe IS NULL LIMIT 1",
        )?;
        let proto = if tcp { "tcp" } else { "udp" };
        Ok(st
            .query_row(params![round_id, port, proto], owner_row)
            .optional()?)
    }

    /// A round's listeners, one per port, protocol and executable serving it (rows
    /// that show an executable only): `(port, tcp, owner)`.
    pub fn listener_executables(
        &self,
        round_id: i64,
    ) -> Result<Vec<(u16, bool, SocketOwner)>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT max(pid), process, exe, uid, netns, container, port_id, protocol \
               FROM rounds_ports \
              WHERE round_id = ?1 AND state IN ('LISTEN', 'UNCONN') AND exe IS NOT NULL \
              GROUP BY port_id, protocol, exe ORDER BY port_id, protocol, exe",
        )?;
        let rows = st.query_map([round_id], |r| {
            Ok((r.get(6)?, r.get::<_, String>(7)? == "tcp", owner_row(r)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether `exe` served `port` as a listener in a learnt round
    /// (`batches_rounds.trained`). Found through the partial index
    /// `rounds_ports_listen`, oldest rows first, so a known executable is found at its
    /// first learnt row; an unknown one reads the port's listener rows once.
    pub fn listener_executable_learnt(
        &self,
        port: u16,
        tcp: bool,
        exe: &str,
    ) -> Result<bool, Error> {
        let (proto, state) = listening(tcp);
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM rounds_ports rp \
                JOIN batches_rounds b ON b.round_id = rp.round_id \
              WHERE rp.port_id = ?1 AND rp.state = '{state}' AND rp.protocol = '{proto}' \
                AND rp.exe = ?2 AND b.trained = 1)"
        ))?;
        Ok(st.query_row(params![port, exe], |r| r.get(0))?)
    }

    /// The executable that served `port` as a listener in the latest learnt round that
    /// shows one; None when none does.
    pub fn last_learnt_listener_executable(
        &self,
        port: u16,
        tcp: bool,
    ) -> Result<Option<String>, Error> {
        let (proto, state) = listening(tcp);
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT rp.exe FROM rounds_ports rp JOIN batches_rounds b ON b.round_id = rp.round_id \
              WHERE rp.port_id = ?1 AND rp.state = '{state}' AND rp.protocol = '{proto}' \
                AND rp.exe IS NOT NULL AND b.trained = 1 \
              ORDER BY rp.id DESC LIMIT 1"
        ))?;
        Ok(st.query_row([port], |r| r.get(0)).optional()?)
    }

    /// A local process's identity in a round, from its sockets as the scanner saw
    /// them: the pid (`pid`, when the capture attributed one) else any of that name,
    /// with its executable and user; from the latest of the [`OWNER_LOOKBACK`] rounds
    /// before when none of its sockets was sampled in this one (a call home that lasts
    /// a second falls between samples more often than not). None when none was.
    pub fn process_owner(
        &self,
        round_id: i64,
        process: &str,
        pid: Option<i64>,
    ) -> Result<Option<SocketOwner>, Error> {
        let mut st = self.conn.prepare_cached(
            "SELECT pid, process, exe, uid, netns, container FROM rounds_ports \
              WHERE round_id BETWEEN ?1 - ?4 AND ?1 AND process = ?2 \
              ORDER BY pid IS NOT ?3, round_id = ?1 DESC, exe IS NULL, round_id DESC LIMIT 1",
        )?;
        Ok(st
            .query_row(params![round_id, process, pid, OWNER_LOOKBACK], owner_row)
            .optional()?)
    }

    /// Hands each packet of `round` to `f`, in rowid (capture) order.
    pub fn for_each_packet(
        &self,
        round: &RoundInfo,
        mut f: impl FnMut(&PktRow<'_>),
    ) -> Result<(), Error> {
        let Some((lo, hi)) = round.packet_range() else {
            return Ok(());
        };
        let mut st = self.conn.prepare_cached(PACKETS_OF_RANGE)?;
        let mut rows = st.query(params![lo, hi])?;
        while let Some(r) = rows.next()? {
            f(&packet_row(r)?);
        }
        Ok(())
    }
}

/// The columns [`PACKETS_OF_RANGE`] selects, as a [`PktRow`] borrowing the row.
pub(crate) fn packet_row<'r>(r: &'r rusqlite::Row<'_>) -> Result<PktRow<'r>, Error> {
    let port = |i: usize| -> rusqlite::Result<Option<u16>> {
        Ok(r.get::<_, Option<i64>>(i)?
            .map(|p| p.clamp(0, 65535) as u16))
    };
    Ok(PktRow {
        ts: time::parse_micros(r.get_ref(0)?.as_str().unwrap_or(""))?,
        protocols: r.get_ref(1)?.as_str().unwrap_or(""),
        qry_name: r.get_ref(2)?.as_str_or_null().ok().flatten(),
        has_resp: r.get::<_, bool>(3)?,
        sport: port(4)?,
        dport: port(5)?,
        src: r.get_ref(6)?.as_str_or_null().ok().flatten(),
        dst: r.get_ref(7)?.as_str_or_null().ok().flatten(),
        length: r.get(8)?,
        tcp_flags: r.get(9)?,
        dns_qr: r.get(10)?,
        process: r.get_ref(11)?.as_str_or_null().ok().flatten(),
    })
}

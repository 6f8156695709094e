//! Typed inserts with cached statements: the only code that writes rounds, socket
//! samples and packets, used by the collector's writer thread and, through [`Tx`], by
//! the simulator and the collector's round start.
//!
//! Parameters are bound one by one on cached statements; packets go `CHUNK` rows to
//! an execution of a multi-row `VALUES` on held statements that SQLite reads their
//! text from in place (see `PacketInsert` and `raw`).

use std::fmt::Write as _;
use std::net::IpAddr;

use portwatch_capture::{DnsKind, Layers, Packet};
use portwatch_scan::PortUsage;
use rusqlite::{Connection, params};

use crate::raw::RawStmt;
use crate::{Db, Error, Tx, time};

/// Where a round's data came from (`rounds.source`): a live interface, a capture file,
/// or the simulator. The detector learns from live and simulated rounds only.
#[derive(Debug, Clone, Copy)]
pub enum RoundSource<'a> {
    /// `live:<interface>`.
    Live(&'a str),
    /// `file:<path>`.
    File(&'a std::path::Path),
    /// `simulated`.
    Simulated,
}

impl RoundSource<'_> {
    /// `rounds.source` of simulated rounds.
    pub const SIMULATED: &'static str = "simulated";
    /// Prefix of `rounds.source` for live rounds.
    pub const LIVE_PREFIX: &'static str = "live:";
    /// Prefix of `rounds.source` for capture files.
    pub const FILE_PREFIX: &'static str = "file:";
}

impl std::fmt::Display for RoundSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoundSource::Live(iface) => write!(f, "{}{iface}", Self::LIVE_PREFIX),
            RoundSource::File(path) => write!(f, "{}{}", Self::FILE_PREFIX, path.display()),
            RoundSource::Simulated => f.write_str(Self::SIMULATED),
        }
    }
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundStatus {
    Running,
    Complete,
    Partial,
    Failed,
}

impl RoundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RoundStatus::Running => "running",
            RoundStatus::Complete => "complete",
            RoundStatus::Partial => "partial",
            RoundStatus::Failed => "failed",
        }
    }
}

/// The figures written when a round is closed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundClose {
    /// Replaces the start time given to [`Db::begin_round`] (capture files start at their
    /// first packet, known only at the end).
    pub start_micros: Option<i64>,
    pub end_micros: i64,
    pub status: Option<RoundStatus>,
    pub packets_captured: u64,
    pub packets_dropped: u64,
    pub packets_stored: u64,
    pub packets_malformed: u64,
    pub first_packet_id: Option<i64>,
    pub last_packet_id: Option<i64>,
    pub samples: u32,
    pub note: Option<String>,
}

/// Opens a round (status `running`) and returns its id.
pub(crate) fn begin_round(
    conn: &Connection,
    start_micros: i64,
    source: RoundSource<'_>,
    scan_interval_secs: Option<f64>,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO rounds (start_time, source, status, scan_interval) VALUES (?1, ?2, 'running', ?3)",
    )?
    .execute(params![time::format_micros(start_micros), source.to_string(), scan_interval_secs])?;
    Ok(conn.last_insert_rowid())
}

/// Opens the round that follows `prev` (status `running`, the same source and scan
/// interval) and returns its id.
pub(crate) fn continue_round(
    conn: &Connection,
    prev: i64,
    start_micros: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO rounds (start_time, source, status, scan_interval) \
         SELECT ?2, source, 'running', scan_interval FROM rounds WHERE id = ?1",
    )?
    .execute(params![prev, time::format_micros(start_micros)])?;
    Ok(conn.last_insert_rowid())
}

/// Records the round's figures so far without closing it, so a crash leaves a round
/// whose packet range and counts are right up to the last commit.
pub(crate) fn update_round(
    conn: &Connection,
    round_id: i64,
    c: &RoundClose,
) -> rusqlite::Result<()> {
    write_round(conn, round_id, c, None)
}

/// Closes a round: end time, status and figures, and (unless it is a capture file's)
/// its traffic totals per process, source and destination (`round_talkers`).
pub(crate) fn close_round(
    conn: &Connection,
    round_id: i64,
    c: &RoundClose,
) -> rusqlite::Result<()> {
    if let Some(start) = c.start_micros {
        conn.prepare_cached("UPDATE rounds SET start_time = ?2 WHERE id = ?1")?
            .execute(params![round_id, time::format_micros(start)])?;
    }
    write_round(conn, round_id, c, Some(time::format_micros(c.end_micros)))?;
    // A minute's packets (a few ms at 100 packets/s); a capture file's millions would
    // double its ingest, and time-range queries read files by rowid range anyway.
    conn.prepare_cached(
        "INSERT INTO round_talkers
         SELECT r.id, p.process, p.src_addr, p.dst_addr, count(*), sum(p.length),
                count(DISTINCT p.dest_port)
           FROM rounds r
           JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
          WHERE r.id = ?1 AND r.source NOT LIKE 'file:%'
          GROUP BY p.process, p.src_addr, p.dst_addr",
    )?
    .execute([round_id])?;
    Ok(())
}

fn write_round(
    conn: &Connection,
    round_id: i64,
    c: &RoundClose,
    end_time: Option<String>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE rounds SET end_time = coalesce(?2, end_time), status = coalesce(?3, status),
                packets_captured = ?4, packets_dropped = ?5, packets_stored = ?6,
                packets_malformed = ?7, first_packet_id = ?8, last_packet_id = ?9,
                samples = ?10, note = ?11
          WHERE id = ?1",
    )?
    .execute(params![
        round_id,
        end_time,
        c.status.map(RoundStatus::as_str),
        c.packets_captured as i64,
        c.packets_dropped as i64,
        c.packets_stored as i64,
        c.packets_malformed as i64,
        c.first_packet_id,
        c.last_packet_id,
        c.samples,
        c.note,
    ])?;
    Ok(())
}

/// Closes rounds left `running` by a collector that died (killed, or its disk filled
/// up) as `failed`, ending them at their last stored packet. Only call this while
/// holding the collector lock: then no round can really be running.
pub(crate) fn fail_stale_rounds(conn: &Connection) -> rusqlite::Result<usize> {
    let stale: Vec<i64> = conn
        .prepare("SELECT id FROM rounds WHERE status = 'running'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for &id in &stale {
        conn.execute(
            "UPDATE rounds
                SET status = 'failed',
                    end_time = coalesce((SELECT timestamp FROM packets WHERE id = rounds.last_packet_id), start_time),
                    note = coalesce(note || '; ', '') || 'the collector stopped before closing this round'
              WHERE id = ?1",
            [id],
        )?;
        file_round_times(conn, id)?;
    }
    Ok(stale.len())
}

/// A capture file's round spans its packets, as a closed one does: a round that died
/// before its close (begun at the wall clock, its end taken from a packet of 2010)
/// would otherwise end before it starts. Only rounds of files that stored packets.
pub(crate) fn file_round_times(conn: &Connection, round_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE rounds
            SET (start_time, end_time) =
                (SELECT min(p.timestamp), max(p.timestamp) FROM packets p
                  WHERE p.id BETWEEN rounds.first_packet_id AND rounds.last_packet_id)
          WHERE id = ?1 AND source LIKE 'file:%' AND first_packet_id IS NOT NULL",
        [round_id],
    )?;
    Ok(())
}

/// Writes one sample's port usages through one statement (looking it up in the cache
/// hashes its text, once a sample rather than once a row).
pub(crate) fn insert_port_usages<'u>(
    conn: &Connection,
    round_id: i64,
    ts_micros: i64,
    usages: impl IntoIterator<Item = &'u PortUsage>,
) -> rusqlite::Result<()> {
    let mut ts = [0u8; time::LEN];
    let ts = time::format_into(ts_micros, &mut ts);
    let mut stmt = conn.prepare_cached(
        "INSERT INTO rounds_ports (round_id, port_id, timestamp, protocol, family, state, sockets, pid, process, exe, uid,
                                   netns, container)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for u in usages {
        stmt.execute(params![
            round_id,
            u.port,
            ts,
            u.transport.as_str(),
            u.family,
            u.state,
            u.sockets,
            u.pid,
            u.process.as_deref(),
            u.exe.as_deref(),
            u.uid,
            // nsfs inodes are 32-bit in practice; one past i64 would be stored as NULL.
            u.netns.and_then(|n| i64::try_from(n).ok()),
            u.container.as_deref(),
        ])?;
    }
    Ok(())
}

/// Scratch space reused across packet inserts so the hot path does not allocate for
/// the layer stack and addresses. The layer stack's text is kept with the stack it was
/// made from: consecutive packets mostly share one, and formatting it was 4 % of the
/// writer's time (`perf`, BENCHMARKS.md).
#[derive(Default)]
pub struct PacketScratch {
    protocols: String,
    layers: Option<Layers>,
    src: AddrText,
    dst: AddrText,
    stamp: time::Stamp,
}

impl PacketScratch {
    /// The packet's text columns, from the kept text where the packet repeats the last.
    pub(crate) fn text(&mut self, p: &Packet) -> RowText<'_> {
        self.protocols_of(p.layers);
        RowText {
            ts: self.stamp.format(p.ts_micros),
            protocols: &self.protocols,
            src: p.src_addr.map(|a| self.src.of(a)),
            dst: p.dst_addr.map(|a| self.dst.of(a)),
        }
    }

    /// A layer stack's text, made again only when the stack is not the last one's.
    fn protocols_of(&mut self, layers: Layers) -> &str {
        if self.layers != Some(layers) {
            self.protocols.clear();
            let _ = write!(self.protocols, "{layers}");
            self.layers = Some(layers);
        }
        &self.protocols
    }
}

/// A packet's columns that are text made from its fields: time, layer stack, addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowText<'a> {
    ts: &'a str,
    protocols: &'a str,
    src: Option<&'a str>,
    dst: Option<&'a str>,
}

/// Packets with their [`RowText`] already written, made by [`Rows::new`] on the
/// thread that sends them: the writer's one connection is the ingest's bottleneck, so
/// its thread only binds the text. That made the 2 M-packet ingest 4–8 % faster, at
/// 2 MB more peak RSS (BENCHMARKS.md). The writer's own packets (`Vec<Packet>`) or a
/// caller's (`&[Packet]`, [`Tx::insert_packets`]).
pub(crate) struct Rows<P = Vec<Packet>> {
    packets: P,
    text: String,
    spans: Vec<Spans>,
}

/// Where a packet's text is in [`Rows::text`]; a field the packet repeats from the one
/// before points at the same text.
#[derive(Debug, Clone, Copy, Default)]
struct Spans {
    ts: u32,
    protocols: (u32, u32),
    src: (u32, u32),
    dst: (u32, u32),
}

impl<P: std::borrow::Borrow<[Packet]>> Rows<P> {
    pub(crate) fn new(packets: P) -> Rows<P> {
        fn push(text: &mut String, s: &str) -> (u32, u32) {
            let at = text.len() as u32;
            text.push_str(s);
            (at, s.len() as u32)
        }
        let mut scratch = PacketScratch::default();
        let all = packets.borrow();
        let mut text = String::with_capacity(all.len() * (time::LEN + 8));
        let mut spans = Vec::with_capacity(all.len());
        let mut at = Spans::default();
        let mut prev: Option<&Packet> = None;
        // Each text is made only when it is written: a field the last packet had is
        // its span again.
        for p in all {
            at.ts = push(&mut text, scratch.stamp.format(p.ts_micros)).0;
            if prev.is_none_or(|q| q.layers != p.layers) {
                at.protocols = push(&mut text, scratch.protocols_of(p.layers));
            }
            // An end repeats the last packet's same end, or its other one (a reply).
            let before = at;
            at.src = match prev {
                Some(q) if q.src_addr == p.src_addr => before.src,
                Some(q) if q.dst_addr == p.src_addr => before.dst,
                _ => push(&mut text, p.src_addr.map_or("", |a| scratch.src.of(a))),
            };
            at.dst = match prev {
                Some(q) if q.dst_addr == p.dst_addr => before.dst,
                Some(q) if q.src_addr == p.dst_addr => before.src,
                _ => push(&mut text, p.dst_addr.map_or("", |a| scratch.dst.of(a))),
            };
            spans.push(at);
            prev = Some(p);
        }
        Rows {
            packets,
            text,
            spans,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// The packets, without their text.
    pub(crate) fn packets(&self) -> &[Packet] {
        self.packets.borrow()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each packet with its text.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&Packet, RowText<'_>)> {
        let get = |(at, len): (u32, u32)| &self.text[at as usize..(at + len) as usize];
        self.packets
            .borrow()
            .iter()
            .zip(&self.spans)
            .map(move |(p, s)| {
                let text = RowText {
                    ts: get((s.ts, time::LEN as u32)),
                    protocols: get(s.protocols),
                    src: p.src_addr.map(|_| get(s.src)),
                    dst: p.dst_addr.map(|_| get(s.dst)),
                };
                (p, text)
            })
    }
}

/// The text of the last two addresses, kept with the addresses they were made from: a
/// flow's packets repeat their ends, in both directions (a source is the last
/// packet's destination as often as its source), and `core::fmt` formatting both ends
/// of every packet was about 6 % of the writer's time (`perf` of an ingest,
/// 2026-12-04). IPv4 is written by hand.
#[derive(Default)]
struct AddrText {
    kept: [(Option<IpAddr>, String); 2],
    /// The entry used last (the other is replaced on a miss).
    last: usize,
}

impl AddrText {
    fn of(&mut self, a: IpAddr) -> &str {
        let i = match self.kept.iter().position(|(k, _)| *k == Some(a)) {
            Some(i) => i,
            None => {
                let i = 1 - self.last;
                let (k, text) = &mut self.kept[i];
                text.clear();
                match a {
                    IpAddr::V4(v4) => push_ipv4(text, v4),
                    IpAddr::V6(_) => {
                        let _ = write!(text, "{a}");
                    }
                }
                *k = Some(a);
                i
            }
        };
        self.last = i;
        &self.kept[i].1
    }
}

/// Dotted quad, as `Ipv4Addr`'s `Display` writes it.
fn push_ipv4(out: &mut String, a: std::net::Ipv4Addr) {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if o >= 100 {
            out.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            out.push(char::from(b'0' + o / 10 % 10));
        }
        out.push(char::from(b'0' + o % 10));
    }
}

/// The packet insert's columns, numbered from 1 in this order by `Bound::row`, each
/// with the group it belongs to if most packets leave it NULL (0 if not).
const PACKET_COLUMNS: [(&str, u8); 19] = [
    ("timestamp", 0),
    ("protocols", 0),
    ("qry_name", DNS),
    ("resp_name", DNS),
    ("port_id", 0),
    ("dest_port", 0),
    ("payload", PAYLOAD),
    ("round_id", 0),
    ("src_addr", 0),
    ("dst_addr", 0),
    ("length", 0),
    ("tcp_flags", 0),
    ("server_name", SNI),
    ("pid", OWNER),
    ("process", OWNER),
    ("dns_qr", DNS),
    ("malformed", 0),
    ("outer_src_addr", TUNNEL),
    ("outer_dst_addr", TUNNEL),
];

/// Groups of columns that most packets leave NULL (bits of a [`Shape`]'s groups): a
/// chunk whose rows all leave a group NULL is written by a statement without it.
const DNS: u8 = 1;
const SNI: u8 = 2;
const OWNER: u8 = 4;
const TUNNEL: u8 = 8;
const PAYLOAD: u8 = 16;
/// Every group: the statement with every column.
const ALL_GROUPS: u8 = 31;

/// The groups whose columns a packet sets.
fn groups_of(p: &Packet) -> u8 {
    let mut g = 0;
    if p.qry_name.is_some() || p.resp_name.is_some() || p.dns.is_some() {
        g |= DNS;
    }
    if p.server_name.is_some() {
        g |= SNI;
    }
    if p.pid.is_some() || p.process.is_some() {
        g |= OWNER;
    }
    if p.outer_src.is_some() || p.outer_dst.is_some() {
        g |= TUNNEL;
    }
    if !p.payload.is_empty() {
        g |= PAYLOAD;
    }
    g
}

/// Which of the columns a statement writes: for each (numbered as in
/// [`PACKET_COLUMNS`]) its parameter within a row, 0 if the statement leaves it out
/// (NULL, its default).
#[derive(Debug, Clone, Copy)]
struct Shape {
    param: [u8; PACKET_COLUMNS.len() + 1],
    /// Parameters a row binds.
    width: usize,
}

impl Shape {
    /// The columns that are in no group or in one of `groups`.
    fn new(groups: u8) -> Shape {
        let mut param = [0; PACKET_COLUMNS.len() + 1];
        let mut width = 0;
        for (i, &(_, g)) in PACKET_COLUMNS.iter().enumerate() {
            if g == 0 || g & groups != 0 {
                width += 1;
                param[i + 1] = width as u8;
            }
        }
        Shape { param, width }
    }

    /// A row of this shape whose parameters hold nothing known: every column is bound
    /// at its first row, but those left out, which hold NULL for good.
    fn unknown(&self) -> Bound {
        let left_out = (1..self.param.len()).filter(|&i| self.param[i] == 0);
        Bound {
            nulls: left_out.fold(0, |m, i| m | 1 << i),
            ..Bound::default()
        }
    }

    /// `INSERT OR ROLLBACK INTO packets (…) VALUES (?1, …), (…), …` for `rows` rows of
    /// this shape; a plain `INSERT` for one.
    ///
    /// `OR ROLLBACK`: a statement that writes several rows and may stop part-way on a
    /// constraint (`NOT NULL`'s default, `ABORT`, undoes only the statement) makes
    /// SQLite keep a statement journal, a copy of every page the statement changes
    /// before it changes it; at 64 KiB pages that was a write of 64 KiB or more every
    /// 32 rows, and the kernel's copying raised the ingest's system time by half and
    /// took the multi-row form's gain. No row the writer makes breaks a constraint, and
    /// on any error the writer rolls the whole transaction back anyway (as does a
    /// [`Tx`] dropped with its error). A one-row statement needs no statement journal,
    /// so it keeps `ABORT`, which undoes the statement alone.
    fn sql(&self, rows: usize) -> String {
        let verb = if rows > 1 {
            "INSERT OR ROLLBACK"
        } else {
            "INSERT"
        };
        let columns: Vec<&str> = (PACKET_COLUMNS.iter())
            .zip(&self.param[1..])
            .filter(|&(_, &at)| at != 0)
            .map(|(&(name, _), _)| name)
            .collect();
        let mut sql = format!("{verb} INTO packets ({}) VALUES ", columns.join(", "));
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 1..=self.width {
                let sep = if c == 1 { "" } else { ", " };
                let _ = write!(sql, "{sep}?{}", r * self.width + c);
            }
            sql.push(')');
        }
        sql
    }
}

/// Rows one execution of the multi-row insert writes (16 measured the same, 64
/// slower: each row's parameters are compared with the row `CHUNK` packets back).
const CHUNK: usize = 32;

/// The packet inserts, held by the writer for its whole run (and by a [`Tx`] from its
/// first packet to its end): looking one up in the statement cache hashed its text for
/// every packet (3.5 % of the writer's time).
///
/// A batch goes [`CHUNK`] rows to an execution: a statement's own cost (stepping,
/// opening and closing its cursor, halting, resetting) is paid once for 32 rows, and
/// the 2 M-packet ingest took 0.70–0.90 of the time of one row an execution, the
/// writer a fifth less CPU (BENCHMARKS.md). The rows left over go one by one, and so
/// does every row on a connection with foreign keys on (a [`Db`]'s default): there a
/// multi-row insert may stop part-way on a missing parent, so SQLite keeps a statement
/// journal whatever the conflict clause (see [`Shape::sql`]); the writer's
/// connection and the simulator's rounds ([`Db::with_parents_known`]) have them off.
///
/// SQLite keeps a statement's bindings from one execution to the next, so a parameter
/// is bound again only when its value changes: most of a packet's 19 are NULL, and the
/// round, the layer stack and a flow's addresses repeat. Binding all of them was about
/// a tenth of the writer's time (`perf`, 2026-12-04). What is bound is read in place
/// ([`RawStmt`]): rusqlite's binding had SQLite free, allocate and copy each text
/// again, and without that the writer runs 7.7 % fewer instructions (callgrind) and
/// takes 6.6 % less CPU (BENCHMARKS.md).
///
/// A chunk whose rows all leave a group of columns NULL (DNS names, the server name,
/// the owner, the tunnel's ends, the payload: most packets set none of them) goes
/// through a statement without those columns, prepared when first needed: each column
/// left out is a value fewer for SQLite to copy twice, check and encode per row. On the
/// 47,590-packet mix (81 % of its chunks set no group) `sqlite3VdbeExec` ran 15 % and
/// the writer 4.2 % fewer instructions (callgrind; the binding's own cost rose, each
/// shape's slots remembering less of the rows before).
pub(crate) struct PacketInsert<'c> {
    conn: &'c Connection,
    /// Every column, one row.
    one: Held<'c>,
    /// [`CHUNK`] rows, by the groups of columns they write (`None` until first
    /// needed); no chunks with foreign keys on.
    chunks: Option<Vec<Option<Held<'c>>>>,
}

/// A held statement, its shape and what each of its rows' parameters hold.
struct Held<'c> {
    stmt: RawStmt<'c>,
    shape: Shape,
    slots: Vec<Bound>,
}

/// What a row's parameters hold, as far as is known. The default knows
/// nothing, so everything is bound; after a failed bind or insert the state is
/// forgotten.
#[derive(Default)]
struct Bound {
    /// Parameters (bit `i` for the row's `i`th) known to hold NULL.
    nulls: u32,
    round_id: Option<i64>,
    layers: Option<Layers>,
    /// `Some(end)` once parameter 9 (10) holds `end`'s text or NULL.
    src: Option<Option<IpAddr>>,
    dst: Option<Option<IpAddr>>,
    malformed: Option<bool>,
}

/// A value of a packet row's parameter.
trait Param {
    fn bind(self, stmt: &mut RawStmt<'_>, i: usize) -> rusqlite::Result<()>;
}

impl Param for &str {
    fn bind(self, stmt: &mut RawStmt<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.bind_text(i, self)
    }
}

impl Param for String {
    fn bind(self, stmt: &mut RawStmt<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.bind_text(i, &self)
    }
}

impl Param for &[u8] {
    fn bind(self, stmt: &mut RawStmt<'_>, i: usize) -> rusqlite::Result<()> {
        stmt.bind_blob(i, self)
    }
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn bind(self, stmt: &mut RawStmt<'_>, i: usize) -> rusqlite::Result<()> {
                stmt.bind_int(i, i64::from(self))
            }
        }
    )*};
}
int_param!(i64, u32, u16, u8, bool);

/// One row's parameters in a held statement.
struct Slot<'s, 'c> {
    stmt: &'s mut RawStmt<'c>,
    shape: &'s Shape,
    base: usize,
}

impl Slot<'_, '_> {
    /// Binds column `i`'s value; an error if the statement leaves the column out
    /// (its chunk was given the wrong shape: never written as NULL in silence).
    fn bind<T: Param>(&mut self, i: usize, v: T) -> rusqlite::Result<()> {
        match self.shape.param[i] {
            0 => Err(left_out(i)),
            at => v.bind(self.stmt, self.base + usize::from(at)),
        }
    }

    /// Binds NULL to column `i` (a column left out is NULL already).
    fn null(&mut self, i: usize) -> rusqlite::Result<()> {
        match self.shape.param[i] {
            0 => Ok(()),
            at => self.stmt.bind_null(self.base + usize::from(at)),
        }
    }
}

#[cold]
fn left_out(i: usize) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
        Some(format!(
            "packets.{} is not in this insert",
            PACKET_COLUMNS[i - 1].0
        )),
    )
}

impl Bound {
    /// Binds `v` to the row's `i`th parameter unless both it and what that holds are
    /// NULL. Inlined: called 13 times a row, its calls' own cost was a twentieth of
    /// the writer's instructions (callgrind).
    #[inline(always)]
    fn opt<T: Param>(
        &mut self,
        s: &mut Slot<'_, '_>,
        i: usize,
        v: Option<T>,
    ) -> rusqlite::Result<()> {
        let bit = 1u32 << i;
        match v {
            None if self.nulls & bit != 0 => Ok(()),
            None => {
                s.null(i)?;
                self.nulls |= bit;
                Ok(())
            }
            Some(v) => {
                s.bind(i, v)?;
                self.nulls &= !bit;
                Ok(())
            }
        }
    }

    /// Binds a packet's row where it differs from what is bound.
    fn row(
        &mut self,
        s: &mut Slot<'_, '_>,
        round_id: i64,
        p: &Packet,
        t: RowText<'_>,
    ) -> rusqlite::Result<()> {
        s.bind(1, t.ts)?;
        if self.layers != Some(p.layers) {
            s.bind(2, t.protocols)?;
            self.layers = Some(p.layers);
        }
        // A message with several questions (crafted or malformed ones) keeps them all,
        // comma-separated as answer names are.
        match (&p.qry_name, &p.qry_name_more) {
            (Some(first), Some(more)) => self.opt(s, 3, Some(format!("{first},{more}")))?,
            _ => self.opt(s, 3, p.qry_name.as_deref())?,
        }
        self.opt(s, 4, p.resp_name.as_deref())?;
        self.opt(s, 5, p.src_port)?;
        self.opt(s, 6, p.dst_port)?;
        self.opt(
            s,
            7,
            (!p.payload.is_empty()).then_some(p.payload.as_slice()),
        )?;
        if self.round_id != Some(round_id) {
            s.bind(8, round_id)?;
            self.round_id = Some(round_id);
        }
        if self.src != Some(p.src_addr) {
            self.opt(s, 9, t.src)?;
            self.src = Some(p.src_addr);
        }
        if self.dst != Some(p.dst_addr) {
            self.opt(s, 10, t.dst)?;
            self.dst = Some(p.dst_addr);
        }
        s.bind(11, p.length)?;
        self.opt(s, 12, p.tcp_flags)?;
        self.opt(s, 13, p.server_name.as_deref())?;
        self.opt(s, 14, p.pid)?;
        self.opt(s, 15, p.process.as_deref())?;
        let qr = p.dns.map(|k| match k {
            DnsKind::Query => 0i64,
            DnsKind::Response => 1,
        });
        self.opt(s, 16, qr)?;
        if self.malformed != Some(p.malformed) {
            s.bind(17, p.malformed)?;
            self.malformed = Some(p.malformed);
        }
        // Tunnelled packets are few: their outer ends are formatted as they come.
        self.opt(s, 18, p.outer_src.map(|a| a.to_string()))?;
        self.opt(s, 19, p.outer_dst.map(|a| a.to_string()))?;
        Ok(())
    }
}

impl<'c> Held<'c> {
    /// The statement of `rows` rows writing the columns of `groups`.
    fn new(conn: &'c Connection, rows: usize, groups: u8) -> rusqlite::Result<Held<'c>> {
        let shape = Shape::new(groups);
        Ok(Held {
            stmt: RawStmt::prepare(conn, &shape.sql(rows))?,
            shape,
            slots: std::iter::repeat_with(|| shape.unknown())
                .take(rows)
                .collect(),
        })
    }

    /// Binds a packet's row into row `slot`.
    fn bind(
        &mut self,
        slot: usize,
        round_id: i64,
        p: &Packet,
        t: RowText<'_>,
    ) -> rusqlite::Result<()> {
        let mut s = Slot {
            stmt: &mut self.stmt,
            shape: &self.shape,
            base: slot * self.shape.width,
        };
        let result = self.slots[slot].row(&mut s, round_id, p, t);
        if result.is_err() {
            // A failed bind has cleared every binding (`RawStmt`).
            self.forget();
        }
        result
    }

    fn execute(&mut self) -> rusqlite::Result<()> {
        let result = self.stmt.execute();
        if result.is_err() {
            self.forget();
        }
        result
    }

    fn forget(&mut self) {
        let shape = self.shape;
        self.slots.iter_mut().for_each(|b| *b = shape.unknown());
    }
}

impl<'c> PacketInsert<'c> {
    pub(crate) fn new(conn: &'c Connection) -> rusqlite::Result<PacketInsert<'c>> {
        let chunks = if crate::db::foreign_keys_on(conn)? {
            None
        } else {
            Some(
                std::iter::repeat_with(|| None)
                    .take(usize::from(ALL_GROUPS) + 1)
                    .collect(),
            )
        };
        Ok(PacketInsert {
            conn,
            one: Held::new(conn, 1, ALL_GROUPS)?,
            chunks,
        })
    }

    /// Writes one packet with its text and returns its rowid.
    pub(crate) fn insert(
        &mut self,
        round_id: i64,
        p: &Packet,
        t: RowText<'_>,
    ) -> rusqlite::Result<i64> {
        self.one.bind(0, round_id, p, t)?;
        self.one.execute()?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Writes packets in order and returns the first and last rowid, or `None` for
    /// none: [`CHUNK`] rows an execution, the rest one by one.
    pub(crate) fn insert_all<P: std::borrow::Borrow<[Packet]>>(
        &mut self,
        round_id: i64,
        rows: &Rows<P>,
    ) -> rusqlite::Result<Option<(i64, i64)>> {
        let packets = rows.packets();
        let mut rows = rows.iter();
        let mut span: Option<(i64, i64)> = None;
        let mut extend = |first: i64, last: i64| {
            span = Some((span.map_or(first, |(f, _)| f), last));
        };
        if let Some(chunks) = &mut self.chunks {
            for chunk in packets.chunks_exact(CHUNK) {
                let groups = chunk.iter().fold(0, |g, p| g | groups_of(p));
                let held = match &mut chunks[usize::from(groups)] {
                    Some(held) => held,
                    none => none.insert(Held::new(self.conn, CHUNK, groups)?),
                };
                for (slot, (p, t)) in (&mut rows).take(CHUNK).enumerate() {
                    held.bind(slot, round_id, p, t)?;
                }
                held.execute()?;
                // One statement's rows take consecutive rowids: each is one more than
                // the largest, and nothing else writes while it runs.
                let last = self.conn.last_insert_rowid();
                extend(last - (CHUNK as i64 - 1), last);
            }
        }
        for (p, t) in rows {
            let id = self.insert(round_id, p, t)?;
            extend(id, id);
        }
        Ok(span)
    }
}

impl Db {
    /// Opens a round (status `running`) in its own transaction and returns its id.
    pub fn begin_round(
        &self,
        start_micros: i64,
        source: RoundSource<'_>,
        scan_interval_secs: Option<f64>,
    ) -> Result<i64, Error> {
        Ok(begin_round(
            &self.conn,
            start_micros,
            source,
            scan_interval_secs,
        )?)
    }

    /// Closes rounds left `running` by a collector that died (killed, or its disk
    /// filled up) as `failed`, ending them at their last stored packet; returns how
    /// many. Only call this while holding the collector lock: then no round can really
    /// be running.
    pub fn fail_stale_rounds(&self) -> Result<usize, Error> {
        Ok(fail_stale_rounds(&self.conn)?)
    }
}

impl<'a> Tx<'a> {
    /// Opens a round (status `running`) and returns its id.
    pub fn begin_round(
        &self,
        start_micros: i64,
        source: RoundSource<'_>,
        scan_interval_secs: Option<f64>,
    ) -> Result<i64, Error> {
        Ok(begin_round(
            &self.tx,
            start_micros,
            source,
            scan_interval_secs,
        )?)
    }

    /// Writes one sample's port usages, all taken at `ts_micros`.
    pub fn insert_port_usages<'u>(
        &self,
        round_id: i64,
        ts_micros: i64,
        usages: impl IntoIterator<Item = &'u PortUsage>,
    ) -> Result<(), Error> {
        Ok(insert_port_usages(&self.tx, round_id, ts_micros, usages)?)
    }

    /// Writes one packet and returns its rowid.
    pub fn insert_packet(
        &self,
        round_id: i64,
        p: &Packet,
        scratch: &mut PacketScratch,
    ) -> Result<i64, Error> {
        Ok(self.packet_insert()?.insert(round_id, p, scratch.text(p))?)
    }

    /// Writes packets in order as the collector's writer does (their text made first,
    /// binding only what changed; 32 rows an execution when foreign keys are off, see
    /// [`Db::with_parents_known`]) and returns the first and last rowid, or `None` for
    /// none.
    pub fn insert_packets(
        &self,
        round_id: i64,
        packets: &[Packet],
    ) -> Result<Option<(i64, i64)>, Error> {
        let rows = Rows::new(packets);
        Ok(self.packet_insert()?.insert_all(round_id, &rows)?)
    }

    /// The transaction's packet inserts, prepared at its first packet.
    fn packet_insert(&self) -> rusqlite::Result<std::cell::RefMut<'_, PacketInsert<'a>>> {
        let mut held = self.packets.borrow_mut();
        let insert = match held.take() {
            Some(insert) => insert,
            None => PacketInsert::new(self.conn)?,
        };
        Ok(std::cell::RefMut::map(held, |h| h.insert(insert)))
    }

    /// Closes a round: end time, status and figures.
    pub fn close_round(&self, round_id: i64, c: &RoundClose) -> Result<(), Error> {
        Ok(close_round(&self.tx, round_id, c)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_text_is_displays_and_follows_the_address() {
        let mut t = AddrText::default();
        let mut n = 0u32;
        // Every octet value in every position, and IPv6 through `Display`.
        for o in 0..=255u8 {
            for a in [
                [o, 0, 0, 0],
                [1, o, 2, 0],
                [10, 20, o, 99],
                [255, 100, 9, o],
            ] {
                let a = IpAddr::from(a);
                assert_eq!(t.of(a), a.to_string());
                n += 1;
            }
        }
        for a in ["::1", "2001:db8::2", "::ffff:192.0.2.1", "fe80::1:2:3:4"] {
            let a: IpAddr = a.parse().unwrap();
            assert_eq!(t.of(a), a.to_string());
        }
        // The same address twice, then others by turns: the text follows each.
        let (x, y, z) = (
            IpAddr::from([192, 0, 2, 1]),
            IpAddr::from([192, 0, 2, 10]),
            IpAddr::from([198, 51, 100, 7]),
        );
        for (a, text) in [
            (x, "192.0.2.1"),
            (x, "192.0.2.1"),
            (y, "192.0.2.10"),
            (x, "192.0.2.1"),
            (y, "192.0.2.10"),
            (z, "198.51.100.7"),
            (x, "192.0.2.1"),
            (y, "192.0.2.10"),
            (z, "198.51.100.7"),
        ] {
            assert_eq!(t.of(a), text, "{a}");
        }
        assert_eq!(n, 1024);
    }

    /// A packet whose every field that can be NULL is NULL or not by turns, the
    /// addresses and the layer stack repeating in runs, as a flow's packets do.
    fn varied(i: u32) -> Packet {
        use portwatch_capture::Layer;
        let on = |k: u32| (i / k) % 2 == 1;
        let mut p = Packet {
            ts_micros: 1_764_000_000_000_000 + i64::from(i) * 997,
            length: 60 + i,
            src_addr: on(3).then(|| IpAddr::from([10, 0, 0, (i / 5 % 3) as u8])),
            dst_addr: on(2)
                .then(|| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, (i / 7 % 2) as u16])),
            outer_src: on(11).then(|| IpAddr::from([192, 0, 2, 1])),
            outer_dst: on(13).then(|| IpAddr::from([192, 0, 2, 2])),
            src_port: on(2).then_some(40_000 + (i % 4) as u16),
            dst_port: on(5).then_some(53),
            tcp_flags: on(3).then_some((i % 64) as u8),
            dns: on(4).then_some(if on(8) {
                DnsKind::Query
            } else {
                DnsKind::Response
            }),
            qry_name: on(4).then(|| format!("q{}.example", i % 3)),
            qry_name_more: on(9).then(|| "more.example".to_string()),
            resp_name: on(6).then(|| "a.example".to_string()),
            server_name: on(7).then(|| "sni.example".to_string()),
            payload: if on(10) { vec![i as u8; 3] } else { Vec::new() },
            malformed: on(12),
            pid: on(5).then_some(i / 5),
            process: on(5).then(|| std::sync::Arc::from("nginx")),
            ..Packet::default()
        };
        p.layers.push(Layer::Eth);
        p.layers.push(if on(3) { Layer::Ipv4 } else { Layer::Ipv6 });
        // Runs of a flow's two directions by turns: one packet's source is the last
        // one's destination.
        if on(17) && i % 2 == 1 {
            std::mem::swap(&mut p.src_addr, &mut p.dst_addr);
        }
        p
    }

    /// Writes a packet's row the plain way, every column bound by rusqlite: what the
    /// held inserts must store.
    fn insert_plain(conn: &Connection, round_id: i64, p: &Packet) {
        let qry = match (&p.qry_name, &p.qry_name_more) {
            (Some(first), Some(more)) => Some(format!("{first},{more}")),
            (first, _) => first.clone(),
        };
        conn.execute(
            "INSERT INTO packets (timestamp, protocols, qry_name, resp_name, port_id, dest_port,
                                  payload, round_id, src_addr, dst_addr, length, tcp_flags,
                                  server_name, pid, process, dns_qr, malformed, outer_src_addr,
                                  outer_dst_addr)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            params![
                time::format_micros(p.ts_micros),
                p.layers.to_string(),
                qry,
                p.resp_name,
                p.src_port,
                p.dst_port,
                (!p.payload.is_empty()).then_some(&p.payload),
                round_id,
                p.src_addr.map(|a| a.to_string()),
                p.dst_addr.map(|a| a.to_string()),
                p.length,
                p.tcp_flags,
                p.server_name,
                p.pid,
                p.process.as_deref(),
                p.dns.map(|k| matches!(k, DnsKind::Response)),
                p.malformed,
                p.outer_src.map(|a| a.to_string()),
                p.outer_dst.map(|a| a.to_string()),
            ],
        )
        .unwrap();
    }

    /// Every column of every packet row, in rowid order.
    fn rows(db: &Db) -> Vec<Vec<rusqlite::types::Value>> {
        let mut stmt = db
            .conn
            .prepare("SELECT * FROM packets ORDER BY id")
            .unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|c| r.get(c)).collect())
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// A database for the held inserts, without foreign keys as the writer's
    /// connection (rows go 32 to an execution), and one for the rows bound the plain
    /// way.
    fn held_and_plain() -> (tempfile::TempDir, Db, Db) {
        let tmp = tempfile::tempdir().unwrap();
        let held = Db::open(&tmp.path().join("held.db")).unwrap();
        let plain = Db::open(&tmp.path().join("plain.db")).unwrap();
        held.conn
            .pragma_update(None, "foreign_keys", false)
            .unwrap();
        (tmp, held, plain)
    }

    #[test]
    fn a_held_insert_of_written_rows_stores_what_binding_every_parameter_stores() {
        let (_tmp, held, fresh) = held_and_plain();
        let mut insert = PacketInsert::new(&held.conn).unwrap();
        assert!(insert.chunks.is_some());
        // Batches of 250 in one round, then another: each batch's text starts afresh,
        // and each is seven multi-row executions and 26 rows one by one (the last, of
        // 263, eight and 7).
        let end_of = |start: u32| if start == 1_750 { 2_013 } else { start + 250 };
        let mut ids = Vec::new();
        for start in (0..2_000).step_by(250) {
            let end = end_of(start);
            let round = 1 + i64::from(start / 1_000);
            let batch = Rows::new((start..end).map(varied).collect::<Vec<_>>());
            assert_eq!(batch.len(), (end - start) as usize);
            ids.push(insert.insert_all(round, &batch).unwrap());
            for p in (start..end).map(varied) {
                insert_plain(&fresh.conn, round, &p);
            }
        }
        drop(insert);
        let expected: Vec<_> = (0..2_000)
            .step_by(250)
            .map(|s| Some((i64::from(s) + 1, i64::from(end_of(s)))))
            .collect();
        assert_eq!(ids, expected);
        let (a, b) = (rows(&held), rows(&fresh));
        assert_eq!(a.len(), 2_013);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "row {i}");
        }
        // And the reference itself holds the packets' values: packet 15, row 16.
        let q: (Option<String>, Option<String>, Option<String>, i64) = fresh
            .conn
            .query_row(
                "SELECT src_addr, dst_addr, qry_name, round_id FROM packets WHERE id = 16",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            q,
            (
                Some("10.0.0.0".into()),
                Some("2001:db8::".into()),
                Some("q0.example,more.example".into()),
                1
            )
        );
    }

    #[test]
    fn a_transactions_packets_through_one_statement_are_the_rows_one_by_one() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut many, mut single, one) = (
            Db::open(&tmp.path().join("many.db")).unwrap(),
            Db::open(&tmp.path().join("single.db")).unwrap(),
            Db::open(&tmp.path().join("one.db")).unwrap(),
        );
        let packets: Vec<Packet> = (0..700).map(varied).collect();
        // With foreign keys on, one row an execution; off, 32 (ids 701..).
        let write = |db: &mut Db| -> Result<_, Error> {
            let tx = db.transaction()?;
            assert_eq!(tx.insert_packets(1, &[])?, None);
            let first = tx.insert_packets(1, &packets[..400])?;
            let second = tx.insert_packets(2, &packets[400..])?;
            tx.commit()?;
            Ok((first, second))
        };
        assert_eq!(
            write(&mut many).unwrap(),
            (Some((1, 400)), Some((401, 700)))
        );
        assert_eq!(
            many.with_parents_known(write).unwrap(),
            (Some((701, 1_100)), Some((1_101, 1_400)))
        );
        // Packet by packet in one transaction: the held one-row insert binds only what
        // changed from the packet before.
        let tx = single.transaction().unwrap();
        let mut scratch = PacketScratch::default();
        for (i, p) in (0..).zip(packets.iter().chain(&packets)) {
            let round = 1 + i64::from(i % 700 >= 400);
            insert_plain(&one.conn, round, p);
            assert_eq!(
                tx.insert_packet(round, p, &mut scratch).unwrap(),
                i64::from(i) + 1
            );
        }
        tx.commit().unwrap();
        assert_eq!(rows(&many), rows(&one));
        assert_eq!(rows(&single), rows(&one));
    }

    /// Every shape of chunk: chunk `c` sets the groups of `c % 32` in one of its rows
    /// (a row that sets a group's columns among rows that leave them NULL), so the
    /// statements without some groups write the same rows as binding every column, and
    /// the chunks after the 32nd reuse statements that hold an earlier chunk's values.
    #[test]
    fn chunks_of_every_shape_store_what_binding_every_parameter_stores() {
        let (_tmp, held, plain) = held_and_plain();
        let bare = |i: u32| Packet {
            ts_micros: 1_764_000_000_000_000 + i64::from(i),
            length: 60 + i % 7,
            src_addr: Some(IpAddr::from([10, 0, 0, (i % 3) as u8])),
            src_port: Some(443),
            ..Packet::default()
        };
        let full = varied(9 * 10 * 11 * 13);
        let packets: Vec<Packet> = (0..40 * CHUNK as u32)
            .map(|i| {
                let (c, row) = (i / CHUNK as u32, i % CHUNK as u32);
                let mut p = bare(i);
                // From the 33rd chunk on, at another row: a slot that held a value
                // goes back to NULL in a statement that leaves some groups out.
                let at = if c < 32 { c } else { c * 7 } % CHUNK as u32;
                if row != at {
                    return p;
                }
                let g = (c % 32) as u8;
                if g & DNS != 0 {
                    (p.qry_name, p.resp_name, p.dns) = ((Some("q.example".into())), None, full.dns);
                }
                if g & SNI != 0 {
                    p.server_name = Some("sni.example".into());
                }
                if g & OWNER != 0 {
                    (p.pid, p.process) = (Some(7), Some(std::sync::Arc::from("sshd")));
                }
                if g & TUNNEL != 0 {
                    (p.outer_src, p.outer_dst) =
                        (full.outer_src, Some(IpAddr::from([192, 0, 2, 9])));
                }
                if g & PAYLOAD != 0 {
                    p.payload = vec![1, 2, 3];
                }
                assert_eq!(groups_of(&p), g);
                p
            })
            .collect();
        let mut insert = PacketInsert::new(&held.conn).unwrap();
        let batch = Rows::new(&packets[..]);
        assert_eq!(insert.insert_all(5, &batch).unwrap(), Some((1, 1_280)));
        let prepared = insert.chunks.as_ref().unwrap().iter().flatten().count();
        assert_eq!(prepared, 32, "a statement for each shape");
        drop(insert);
        for p in &packets {
            insert_plain(&plain.conn, 5, p);
        }
        let (a, b) = (rows(&held), rows(&plain));
        assert_eq!(a.len(), 1_280);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert_eq!(x, y, "row {i}");
        }
    }

    /// After a bind SQLite refuses part-way through a chunk (every binding is then
    /// cleared), the same insert goes on writing the rows binding every column would.
    #[test]
    fn after_a_refused_bind_the_insert_binds_everything_again() {
        let (_tmp, held, plain) = held_and_plain();
        let mut insert = PacketInsert::new(&held.conn).unwrap();
        let first: Vec<Packet> = (0..100).map(varied).collect();
        assert_eq!(
            insert.insert_all(1, &Rows::new(&first[..])).unwrap(),
            Some((1, 100))
        );
        let mut long = varied(100);
        long.server_name = Some("x".repeat(1_000));
        let refused: Vec<Packet> = (101..150).map(varied).chain([long]).collect();
        // SAFETY: the test's own connection; a limit, not its state.
        unsafe {
            rusqlite::ffi::sqlite3_limit(
                held.conn.handle(),
                rusqlite::ffi::SQLITE_LIMIT_LENGTH,
                200,
            )
        };
        let e = insert.insert_all(1, &Rows::new(&refused[..])).unwrap_err();
        assert!(e.to_string().contains("too big"), "{e}");
        // SAFETY: as above.
        unsafe {
            rusqlite::ffi::sqlite3_limit(
                held.conn.handle(),
                rusqlite::ffi::SQLITE_LIMIT_LENGTH,
                1_000_000_000,
            )
        };
        // Autocommit: the rows before the refused one are in (a chunk of 32, then 17
        // one by one), the refused one not.
        let after: Vec<Packet> = (150..300).map(varied).collect();
        assert_eq!(
            insert.insert_all(1, &Rows::new(&after[..])).unwrap(),
            Some((150, 299))
        );
        drop(insert);
        for p in first.iter().chain(&refused[..49]).chain(&after) {
            insert_plain(&plain.conn, 1, p);
        }
        assert_eq!(rows(&held), rows(&plain));
    }

    /// A value for a column its statement leaves out is an error, never a NULL.
    #[test]
    fn a_value_for_a_column_left_out_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::open(&tmp.path().join("t.db")).unwrap();
        let mut held = Held::new(&db.conn, 1, 0).unwrap();
        let mut p = varied(0);
        p.server_name = Some("sni.example".into());
        let mut scratch = PacketScratch::default();
        let e = held.bind(0, 1, &p, scratch.text(&p)).unwrap_err();
        assert!(
            e.to_string()
                .contains("packets.server_name is not in this insert"),
            "{e}"
        );
    }
}

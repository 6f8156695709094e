//! The writer thread: the one owner of the collector's connection.
//!
//! The sniffer and the scanner send rows over a bounded channel (back-pressure instead
//! of unbounded memory when the disk is slow); the writer inserts them with cached
//! statements and commits by count and by time, so a crash loses at most the last
//! second. Checkpoints run on a second thread after each commit rather than inside the
//! writer's commits (+15–40 % ingest when measured), and only when there was a commit,
//! so an idle round costs no wake-ups.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use portwatch_capture::Packet;
use portwatch_scan::PortUsage;
use rusqlite::Connection;

use crate::insert::{self, RoundClose, RoundStatus, Rows};
use crate::{Db, Error};

/// Rows per transaction at most (10k and 50k measured the same).
pub const COMMIT_ROWS: usize = 20_000;
/// Longest time rows wait uncommitted.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// Rows written between attempts to let the WAL start over (about 10 MB at a packet's
/// 100 bytes). See `Checkpointer::catch_up`.
pub const WAL_RESTART_ROWS: usize = 100_000;
/// Bound of the channel, in messages (each message is a batch of rows).
pub const CHANNEL_BOUND: usize = 8;

/// What producers send to the writer.
#[derive(Debug)]
pub enum Msg {
    /// A batch of parsed packets, in capture order.
    Packets(Vec<Packet>),
    /// One scanner sample: its time and its grouped rows.
    Sample {
        ts_micros: i64,
        rows: Vec<PortUsage>,
    },
    /// libpcap's counters so far (cumulative for the round).
    Stats { captured: u64, dropped: u64 },
    /// Appends a line to the round's note.
    Note(String),
}

/// How the round ends.
#[derive(Debug, Clone)]
pub struct Finish {
    pub end_micros: i64,
    pub status: RoundStatus,
    /// For capture files: the round spans its first to its last packet (an empty file
    /// keeps the times it was opened with).
    pub times_from_packets: bool,
}

/// The round's figures as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub close: RoundClose,
    pub sample_rows: u64,
}

/// A running writer: clone [`Writer::sender`] into producers, then [`Writer::finish`].
pub struct Writer {
    tx: SyncSender<Control>,
    join: JoinHandle<Result<Totals, Error>>,
}

enum Control {
    Msg(Msg),
    /// [`Msg::Packets`], with their text written by the sender.
    Rows(Rows),
    Finish(Finish),
    /// Close the round, open the next one starting at the given time, and reply with
    /// the closed round's totals and the new round's id.
    Rotate(Finish, i64, SyncSender<(Totals, i64)>),
}

/// A producer's handle: sends rows to the writer.
#[derive(Clone)]
pub struct Sender(SyncSender<Control>);

impl Sender {
    /// Sends a message; fails only when the writer has stopped (after an error, which
    /// [`Writer::finish`] then reports).
    /// Packets' text is written here, on the sender's thread (see `Rows`).
    pub fn send(&self, msg: Msg) -> Result<(), Error> {
        let ctl = match msg {
            Msg::Packets(p) => Control::Rows(Rows::new(p)),
            m => Control::Msg(m),
        };
        self.0.send(ctl).map_err(|_| Error::WriterGone)
    }
}

impl Writer {
    /// Starts the writer thread for `round_id`; it owns `db` from now on. A second
    /// connection to the same file does the checkpoints.
    pub fn spawn(db: Db, round_id: i64) -> Result<Writer, Error> {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_BOUND);
        let (conn, path) = db.into_connection();
        // Opened here, on the caller's thread, so that it exists before the caller
        // drops privileges (`collector --user`).
        let checkpointer = Checkpointer::spawn(&path);
        let join = thread::Builder::new()
            .name("writer".into())
            .spawn(move || run(conn, checkpointer, round_id, rx))
            .map_err(|source| Error::Io {
                path: PathBuf::from("writer thread"),
                source,
            })?;
        Ok(Writer { tx, join })
    }

    pub fn sender(&self) -> Sender {
        Sender(self.tx.clone())
    }

    /// Closes the round with `finish` after every message sent before this call and
    /// opens the next one (the same source and scan interval) starting at
    /// `next_start_micros`: what a long-running collector does on the minute. Returns
    /// the closed round's figures and the new round's id; messages sent after this call
    /// belong to the new round. After an error the writer has stopped:
    /// [`Writer::finish`] then reports it.
    pub fn rotate(&self, finish: Finish, next_start_micros: i64) -> Result<(Totals, i64), Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Control::Rotate(finish, next_start_micros, reply))
            .map_err(|_| Error::WriterGone)?;
        answer.recv().map_err(|_| Error::WriterGone)
    }

    /// Closes the round with `finish` after every message sent before this call, and
    /// returns what was written.
    pub fn finish(self, finish: Finish) -> Result<Totals, Error> {
        // If the thread already stopped with an error, the send fails and join reports it.
        let _ = self.tx.send(Control::Finish(finish));
        drop(self.tx);
        self.join.join().map_err(|_| Error::WriterGone)?
    }
}

struct State {
    round_id: i64,
    totals: Totals,
    in_tx: bool,
    pending: usize,
    /// The figures as of the last commit: what a failed round really holds.
    committed: RoundClose,
    /// Earliest and latest packet time seen.
    span: Option<(i64, i64)>,
    since: Instant,
    /// Rows in the last commit, and since the WAL last started over.
    committed_now: usize,
    since_restart: usize,
}

impl State {
    fn new(round_id: i64) -> State {
        State {
            round_id,
            totals: Totals::default(),
            in_tx: false,
            pending: 0,
            span: None,
            committed: RoundClose::default(),
            since: Instant::now(),
            committed_now: 0,
            since_restart: 0,
        }
    }
}

fn run(
    conn: Connection,
    checkpointer: Option<Checkpointer>,
    round_id: i64,
    rx: Receiver<Control>,
) -> Result<Totals, Error> {
    // Checkpoints move to their own thread so the writer never stalls on one; without
    // that thread, SQLite's automatic checkpoints keep the WAL bounded.
    if checkpointer.is_some() {
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    }
    // Every row this connection writes references its own running round (which prune
    // never deletes) or a `ports` row (all 65,536 exist from the first migration), so
    // the parent lookups foreign keys cost on each packet could never fail; they were
    // a fifth of ingest (BENCHMARKS.md). A test runs `foreign_key_check` after rounds.
    conn.pragma_update(None, "foreign_keys", false)?;
    let mut st = State::new(round_id);
    let result = (|| {
        // Held for the whole run: each of its rows remembers what it holds bound from
        // one batch to the next.
        let mut packets = insert::PacketInsert::new(&conn)?;
        let finish = loop {
            let ctl = if st.in_tx {
                let left = COMMIT_EVERY.saturating_sub(st.since.elapsed());
                match rx.recv_timeout(left) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break None,
                }
            } else {
                match rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => break None,
                }
            };
            match ctl {
                Some(Control::Msg(m)) => apply(&conn, &mut st, &mut packets, m)?,
                Some(Control::Rows(rows)) => insert_rows(&conn, &mut st, &mut packets, &rows)?,
                Some(Control::Finish(f)) => break Some(f),
                Some(Control::Rotate(f, next_start, reply)) => {
                    close(&conn, &mut st, &f)?;
                    let next = insert::continue_round(&conn, st.round_id, next_start)?;
                    let closed = std::mem::replace(&mut st, State::new(next));
                    // The caller waits for the answer; if it is gone, so is the round's
                    // caller, and the next message (or none) decides.
                    let _ = reply.send((closed.totals, next));
                    continue;
                }
                None => {}
            }
            if st.in_tx && (st.pending >= COMMIT_ROWS || st.since.elapsed() >= COMMIT_EVERY) {
                commit(&conn, &mut st, None)?;
                if let Some(c) = &checkpointer {
                    st.since_restart += st.committed_now;
                    if st.since_restart < WAL_RESTART_ROWS {
                        c.poke();
                    } else if c.catch_up() {
                        st.since_restart = 0;
                    }
                }
            }
        };
        // Producers gone without a Finish: close as failed so the round is not left
        // `running` forever.
        let finish = finish.unwrap_or(Finish {
            end_micros: crate::time::now_micros(),
            status: RoundStatus::Failed,
            times_from_packets: false,
        });
        close(&conn, &mut st, &finish)
    })();
    drop(checkpointer);
    match result {
        Ok(()) => {
            checkpoint(&conn);
            Ok(st.totals)
        }
        Err(e) => {
            if st.in_tx {
                let _ = conn.execute_batch("ROLLBACK");
            }
            // Best effort (the disk may still be full): close the round as failed with
            // the reason and the figures of what was committed, rather than leave it
            // `running`.
            let c = &mut st.committed;
            c.status = Some(RoundStatus::Failed);
            c.end_micros = crate::time::now_micros();
            let note = c.note.get_or_insert_with(String::new);
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&format!("writer failed: {e}"));
            if insert::close_round(&conn, st.round_id, c).is_ok() {
                let _ = insert::file_round_times(&conn, st.round_id);
            }
            Err(e)
        }
    }
}

/// Attempts at `BEGIN IMMEDIATE`, each waiting up to the busy timeout: a long prune
/// or a detector's write makes the round wait (producers block on the bounded channel,
/// libpcap counts what the kernel then drops) rather than fail.
const BEGIN_ATTEMPTS: u32 = 4;

fn begin(conn: &Connection, st: &mut State) -> Result<(), Error> {
    if !st.in_tx {
        let mut attempt = 1;
        loop {
            match conn.execute_batch("BEGIN IMMEDIATE").map_err(Error::from) {
                Ok(()) => break,
                Err(e) if e.is_busy() && attempt < BEGIN_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
        st.in_tx = true;
        st.pending = 0;
        st.since = Instant::now();
    }
    Ok(())
}

fn insert_rows(
    conn: &Connection,
    st: &mut State,
    packets: &mut insert::PacketInsert<'_>,
    rows: &Rows,
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    begin(conn, st)?;
    let ids = packets.insert_all(st.round_id, rows)?;
    let c = &mut st.totals.close;
    if let Some((first, last)) = ids {
        c.first_packet_id.get_or_insert(first);
        c.last_packet_id = Some(last);
    }
    for p in rows.packets() {
        c.packets_stored += 1;
        c.packets_malformed += u64::from(p.malformed);
        st.span = Some(match st.span {
            None => (p.ts_micros, p.ts_micros),
            Some((a, b)) => (a.min(p.ts_micros), b.max(p.ts_micros)),
        });
    }
    st.pending += rows.len();
    Ok(())
}

fn apply(
    conn: &Connection,
    st: &mut State,
    packets: &mut insert::PacketInsert<'_>,
    m: Msg,
) -> Result<(), Error> {
    match m {
        // `Sender::send` sends these as `Control::Rows`.
        Msg::Packets(pkts) => insert_rows(conn, st, packets, &Rows::new(pkts))?,
        Msg::Sample { ts_micros, rows } => {
            begin(conn, st)?;
            insert::insert_port_usages(conn, st.round_id, ts_micros, &rows)?;
            st.totals.close.samples += 1;
            st.totals.sample_rows += rows.len() as u64;
            st.pending += rows.len().max(1);
        }
        Msg::Stats { captured, dropped } => {
            st.totals.close.packets_captured = captured;
            st.totals.close.packets_dropped = dropped;
        }
        Msg::Note(line) => {
            let note = st.totals.close.note.get_or_insert_with(String::new);
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&line);
        }
    }
    Ok(())
}

/// Closes the round as `finish` says, committing what is pending.
fn close(conn: &Connection, st: &mut State, finish: &Finish) -> Result<(), Error> {
    st.totals.close.end_micros = finish.end_micros;
    if let (true, Some((first, last))) = (finish.times_from_packets, st.span) {
        st.totals.close.start_micros = Some(first);
        st.totals.close.end_micros = last;
    }
    commit(conn, st, Some(finish.status))
}

/// Commits the open transaction (opening one if needed) with the round's figures so
/// far; with `status`, also closes the round.
fn commit(conn: &Connection, st: &mut State, status: Option<RoundStatus>) -> Result<(), Error> {
    begin(conn, st)?;
    let c = &mut st.totals.close;
    // File rounds have no libpcap "received" counter beyond what was read.
    c.packets_captured = c.packets_captured.max(c.packets_stored);
    match status {
        Some(s) => {
            c.status = Some(s);
            insert::close_round(conn, st.round_id, c)?;
        }
        None => insert::update_round(conn, st.round_id, c)?,
    }
    conn.execute_batch("COMMIT")?;
    st.committed = st.totals.close.clone();
    st.in_tx = false;
    st.committed_now = st.pending;
    st.pending = 0;
    Ok(())
}

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection when asked: after each
/// commit without waiting ([`Checkpointer::poke`]), or with the writer waiting for it
/// ([`Checkpointer::catch_up`]).
struct Checkpointer {
    tx: Option<SyncSender<Ask>>,
    join: Option<JoinHandle<()>>,
}

enum Ask {
    Poke,
    /// Checkpoint, and reply whether the whole WAL is now in the database.
    CatchUp(SyncSender<bool>),
}

impl Checkpointer {
    /// `None` when the second connection cannot be opened; the writer then leaves
    /// checkpoints to SQLite.
    fn spawn(db: &Path) -> Option<Checkpointer> {
        let conn = Connection::open(db).ok()?;
        let _ = conn.busy_timeout(Duration::from_millis(100));
        let (tx, rx) = mpsc::sync_channel::<Ask>(1);
        let join = thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Ok(ask) = rx.recv() {
                    let whole = checkpoint(&conn);
                    if let Ask::CatchUp(reply) = ask {
                        let _ = reply.send(whole);
                    }
                }
            })
            .ok()?;
        Some(Checkpointer {
            tx: Some(tx),
            join: Some(join),
        })
    }

    fn poke(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Ask::Poke);
        }
    }

    /// Waits for a checkpoint to copy what is left (the thread is at most a commit or
    /// two behind, so a few milliseconds) and says whether the whole WAL is now in the
    /// database. If so, the writer's next transaction writes the WAL from its start
    /// again: a writer that never pauses would otherwise grow it by every row it writes
    /// (200 MB for the 2 M-packet mix), each frame a new page of a new file for the
    /// kernel to allocate and write back. Keeping it near 10–20 MB cut that ingest's
    /// system time by a fifth to a half (BENCHMARKS.md). A reader holding an
    /// older snapshot makes the answer no; the writer asks again after its next commit.
    fn catch_up(&self) -> bool {
        let Some(tx) = &self.tx else { return false };
        let (reply, answer) = mpsc::sync_channel(1);
        tx.send(Ask::CatchUp(reply)).is_ok() && answer.recv().unwrap_or(false)
    }
}

/// A passive checkpoint (it never blocks readers or the writer; when busy, the next one
/// does the work); whether the whole WAL is now in the database.
fn checkpoint(conn: &Connection) -> bool {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok(r.get::<_, i64>(0)? == 0 && r.get::<_, i64>(1)? == r.get::<_, i64>(2)?)
    })
    .unwrap_or(false)
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

-- portwatch: the whole current schema in one file, for the sqlite3 console:
--     sqlite3 -init init.sql ports.db ""
-- The binaries create the same schema by applying migrations/ in order; a test proves
-- both paths give the same tables, columns, indexes, foreign keys and pragmas.
-- Keep it in step with the last migration (and bump user_version with it).

-- Only accepted before the first table exists.
PRAGMA page_size = 65536;
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;

BEGIN;
-- One row per port so that `port_id` reads as the port number in the console
-- (id = value), as the original design had it.
CREATE TABLE ports (
    id    INTEGER PRIMARY KEY,
    value INTEGER NOT NULL UNIQUE CHECK (value BETWEEN 0 AND 65535)
) STRICT;

WITH RECURSIVE n(v) AS (SELECT 0 UNION ALL SELECT v + 1 FROM n WHERE v < 65535)
INSERT INTO ports (id, value) SELECT v, v FROM n;

-- One collector run. A round's packets occupy the contiguous rowid range
-- first_packet_id..last_packet_id of `packets` (one collector writes at a time), which
-- the detector and prune use instead of an index on the hot table.
CREATE TABLE rounds (
    id                INTEGER PRIMARY KEY,
    start_time        TEXT NOT NULL,
    end_time          TEXT,
    source            TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'complete', 'partial', 'failed')),
    packets_captured  INTEGER NOT NULL DEFAULT 0,
    packets_dropped   INTEGER NOT NULL DEFAULT 0,
    packets_stored    INTEGER NOT NULL DEFAULT 0,
    packets_malformed INTEGER NOT NULL DEFAULT 0,
    first_packet_id   INTEGER,
    last_packet_id    INTEGER,
    note              TEXT,
    -- Seconds between scanner samples in this round (NULL when it had no scanner).
    scan_interval     REAL,
    samples           INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX rounds_start_time ON rounds (start_time);
-- Rounds left `running` by a collector that died are closed by the next run; this
-- keeps finding them from scanning the table.
CREATE INDEX rounds_running ON rounds (id) WHERE status = 'running';

-- Socket-table samples: one row per sample per (port, protocol, family, state, pid).
CREATE TABLE rounds_ports (
    id        INTEGER PRIMARY KEY,
    round_id  INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    port_id   INTEGER NOT NULL REFERENCES ports (id),
    timestamp TEXT NOT NULL,
    protocol  TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
    family    INTEGER NOT NULL CHECK (family IN (4, 6)),
    state     TEXT NOT NULL,
    sockets   INTEGER NOT NULL CHECK (sockets > 0),
    pid       INTEGER,
    process   TEXT
) STRICT;
CREATE INDEX rounds_ports_round ON rounds_ports (round_id, timestamp);
CREATE INDEX rounds_ports_port ON rounds_ports (port_id, state);

-- The hot table: no secondary index (each one measurably costs ingest speed) and
-- no foreign key on round_id (deleting a round would then scan this table); a round's
-- rows are found through its rowid range in `rounds`.
CREATE TABLE packets (
    id          INTEGER PRIMARY KEY,
    timestamp   TEXT NOT NULL,
    protocols   TEXT NOT NULL,
    qry_name    TEXT,
    resp_name   TEXT,
    port_id     INTEGER REFERENCES ports (id),
    dest_port   INTEGER,
    payload     BLOB,
    round_id    INTEGER NOT NULL,
    src_addr    TEXT,
    dst_addr    TEXT,
    length      INTEGER NOT NULL,
    tcp_flags   INTEGER,
    server_name TEXT,
    pid         INTEGER,
    process     TEXT,
    -- 0 for a DNS query, 1 for a response, NULL when not DNS.
    dns_qr      INTEGER,
    -- 1 when a layer failed to parse part-way (what parsed is kept).
    malformed   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One detector evaluation.
CREATE TABLE batches (
    id             INTEGER PRIMARY KEY,
    timestamp      TEXT NOT NULL,
    alg            TEXT NOT NULL,
    finished_at    TEXT,
    first_round_id INTEGER,
    last_round_id  INTEGER,
    windows        INTEGER NOT NULL DEFAULT 0,
    anomalies      INTEGER NOT NULL DEFAULT 0,
    threshold      REAL,
    loss_before    REAL,
    loss_after     REAL,
    model_version  TEXT,
    -- `warming up`, `scored`, …: what this evaluation did.
    status         TEXT
) STRICT;

CREATE TABLE batches_rounds (
    id        INTEGER PRIMARY KEY,
    batch_id  INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    round_id  INTEGER NOT NULL UNIQUE REFERENCES rounds (id) ON DELETE CASCADE,
    score     REAL,
    anomalous INTEGER NOT NULL DEFAULT 0 CHECK (anomalous IN (0, 1)),
    trained   INTEGER NOT NULL DEFAULT 0 CHECK (trained IN (0, 1))
) STRICT;
CREATE INDEX batches_rounds_batch ON batches_rounds (batch_id);

CREATE TABLE anomalies (
    id           INTEGER PRIMARY KEY,
    batch_id     INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    round_id     INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    window_start TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    score        REAL NOT NULL,
    threshold    REAL NOT NULL,
    explanation  TEXT NOT NULL CHECK (json_valid(explanation))
) STRICT;
CREATE INDEX anomalies_round ON anomalies (round_id);
CREATE INDEX anomalies_batch ON anomalies (batch_id);

-- Ground truth written by `collector simulate`; `event` groups one injected event's rounds.
CREATE TABLE labels (
    id       INTEGER PRIMARY KEY,
    round_id INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    event    INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    note     TEXT
) STRICT;
CREATE INDEX labels_round ON labels (round_id);
CREATE INDEX labels_event ON labels (event);

-- Console views.
CREATE VIEW round_summary AS
SELECT r.id,
       r.start_time,
       r.end_time,
       r.source,
       r.status,
       r.packets_captured,
       r.packets_dropped,
       r.packets_stored,
       r.packets_malformed,
       (SELECT count(DISTINCT rp.port_id) FROM rounds_ports rp
         WHERE rp.round_id = r.id AND rp.state = 'LISTEN') AS listening_ports,
       (SELECT count(DISTINCT rp.timestamp) FROM rounds_ports rp
         WHERE rp.round_id = r.id) AS samples,
       br.score,
       br.anomalous,
       r.note
  FROM rounds r
  LEFT JOIN batches_rounds br ON br.round_id = r.id;

CREATE VIEW anomaly_list AS
SELECT a.id,
       a.round_id,
       r.start_time AS round_start,
       r.end_time AS round_end,
       a.window_start,
       a.window_end,
       round(a.score, 4) AS score,
       round(a.threshold, 4) AS threshold,
       a.batch_id,
       a.explanation
  FROM anomalies a
  JOIN rounds r ON r.id = a.round_id;

CREATE VIEW round_packets AS
SELECT r.id AS round_id, p.*
  FROM rounds r
  JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id;

PRAGMA user_version = 1;
COMMIT;

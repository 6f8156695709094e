-- Migration 5: per-round traffic totals, and views that answer in milliseconds on a
-- day of history.

-- Each live or simulated round's traffic per (process, source, destination), written
-- in the transaction that closes the round: "who talked most in the last hour" then
-- reads 60 rounds' totals rather than every packet (1.4 s at 100 packets/s before).
-- Capture-file rounds (bulk ingest of millions of packets, where a GROUP BY would
-- double the time) have none: query their packets by rowid range.
CREATE TABLE round_talkers (
    round_id  INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    process   TEXT,
    src_addr  TEXT,
    dst_addr  TEXT,
    packets   INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    -- Distinct destination ports within the round.
    dst_ports INTEGER NOT NULL
) STRICT;
CREATE INDEX round_talkers_round ON round_talkers (round_id);

-- The rounds of the last two days get their totals now; older ones are only ever read
-- by time-range queries over packets.
INSERT INTO round_talkers
SELECT r.id, p.process, p.src_addr, p.dst_addr, count(*), sum(p.length),
       count(DISTINCT p.dest_port)
  FROM rounds r
  JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
 WHERE r.start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-2 days')
   AND r.status != 'running' AND r.source NOT LIKE 'file:%'
 GROUP BY r.id, p.process, p.src_addr, p.dst_addr;

DROP VIEW top_talkers_last_hour;
CREATE VIEW top_talkers_last_hour AS
SELECT t.process,
       t.src_addr,
       t.dst_addr,
       sum(t.packets) AS packets,
       sum(t.bytes) AS bytes,
       max(t.dst_ports) AS dst_ports_per_round
  FROM rounds r
  JOIN round_talkers t ON t.round_id = r.id
 WHERE r.start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 hour')
 GROUP BY t.process, t.src_addr, t.dst_addr
 ORDER BY bytes DESC;

-- `since` was the minimum over every listening sample of the port (275 ms on a day);
-- rowids grow with time, so the port's first sample in that state is its first row
-- through the (port_id, state) index.
DROP VIEW listening_new_today;
DROP VIEW listening_now;
CREATE VIEW listening_now AS
WITH last AS (
    SELECT round_id, max(timestamp) AS ts FROM rounds_ports
     WHERE round_id = (SELECT max(id) FROM rounds WHERE samples > 0)
)
SELECT rp.port_id AS port,
       rp.protocol,
       rp.family,
       rp.process,
       rp.pid,
       rp.exe,
       rp.uid,
       (SELECT o.timestamp FROM rounds_ports o
         WHERE o.port_id = rp.port_id AND o.state = rp.state AND o.protocol = rp.protocol
         ORDER BY o.id LIMIT 1) AS since
  FROM rounds_ports rp, last
 WHERE rp.round_id = last.round_id AND rp.timestamp = last.ts
   AND rp.state IN ('LISTEN', 'UNCONN')
 ORDER BY rp.protocol, rp.port_id;

CREATE VIEW listening_new_today AS
SELECT * FROM listening_now WHERE since >= strftime('%Y-%m-%dT00:00:00', 'now');

-- `p.dns_qr = 0` made SQLite build a temporary index over the whole packets table
-- (47 s on a day); `+` keeps it a filter on the rows of the rounds' ranges.
DROP VIEW dns_names_last_day;
CREATE VIEW dns_names_last_day AS
SELECT p.process,
       p.qry_name AS name,
       count(*) AS queries,
       min(p.timestamp) AS first,
       max(p.timestamp) AS last
  FROM rounds r
  JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
 WHERE r.start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 day')
   AND p.qry_name IS NOT NULL AND +p.dns_qr = 0
 GROUP BY p.process, p.qry_name
 ORDER BY p.process, queries DESC;

-- 0004: console views for the questions people ask first — what listens now and since
-- when, what is new today, who talked most in the last hour, which names each process
-- looked up — and a cleaner `round_packets`: no second `round_id` column (the old one
-- showed as `round_id:1`), ports named for their direction, TCP flags as tcpdump
-- prints them. Every view that reads packets goes through rounds' time index and
-- rowid ranges: `packets` has no index of its own.

DROP VIEW round_packets;
CREATE VIEW round_packets AS
SELECT r.id AS round_id,
       p.id,
       p.timestamp,
       p.protocols,
       p.src_addr,
       p.port_id AS src_port,
       p.dst_addr,
       p.dest_port AS dst_port,
       p.length,
       p.tcp_flags,
       -- tcpdump's notation: S F P R U E W, and . for ACK (`S.` is a SYN-ACK).
       CASE WHEN p.tcp_flags IS NULL THEN NULL ELSE
            (CASE WHEN p.tcp_flags & 2 THEN 'S' ELSE '' END) ||
            (CASE WHEN p.tcp_flags & 1 THEN 'F' ELSE '' END) ||
            (CASE WHEN p.tcp_flags & 8 THEN 'P' ELSE '' END) ||
            (CASE WHEN p.tcp_flags & 4 THEN 'R' ELSE '' END) ||
            (CASE WHEN p.tcp_flags & 32 THEN 'U' ELSE '' END) ||
            (CASE WHEN p.tcp_flags & 64 THEN 'E' ELSE '' END) ||
            (CASE WHEN p.tcp_flags & 128 THEN 'W' ELSE '' END) ||
            (CASE WHEN p.tcp_flags & 16 THEN '.' ELSE '' END)
       END AS flags,
       p.qry_name,
       p.resp_name,
       p.dns_qr,
       p.server_name,
       p.pid,
       p.process,
       p.malformed,
       p.payload
  FROM rounds r
  JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id;

-- The listeners of the newest round's last sample, each with the first time the
-- database saw that port listen (within the history prune kept).
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
       (SELECT min(o.timestamp) FROM rounds_ports o
         WHERE o.port_id = rp.port_id AND o.protocol = rp.protocol
           AND o.state IN ('LISTEN', 'UNCONN')) AS since
  FROM rounds_ports rp, last
 WHERE rp.round_id = last.round_id AND rp.timestamp = last.ts
   AND rp.state IN ('LISTEN', 'UNCONN')
 ORDER BY rp.protocol, rp.port_id;

-- Of those, the ones first seen today (UTC).
CREATE VIEW listening_new_today AS
SELECT * FROM listening_now WHERE since >= strftime('%Y-%m-%dT00:00:00', 'now');

-- Packets and bytes per (process, source, destination) over the rounds that started in
-- the last hour, busiest first.
CREATE VIEW top_talkers_last_hour AS
SELECT p.process,
       p.src_addr,
       p.dst_addr,
       count(*) AS packets,
       sum(p.length) AS bytes,
       count(DISTINCT p.dest_port) AS dst_ports
  FROM rounds r
  JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
 WHERE r.start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 hour')
 GROUP BY p.process, p.src_addr, p.dst_addr
 ORDER BY bytes DESC;

-- DNS names each process asked for over the rounds of the last day (a query's
-- process is the one that sent it; NULL where none was attributed).
CREATE VIEW dns_names_last_day AS
SELECT p.process,
       p.qry_name AS name,
       count(*) AS queries,
       min(p.timestamp) AS first,
       max(p.timestamp) AS last
  FROM rounds r
  JOIN packets p ON p.id BETWEEN r.first_packet_id AND r.last_packet_id
 WHERE r.start_time >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-1 day')
   AND p.qry_name IS NOT NULL AND p.dns_qr = 0
 GROUP BY p.process, p.qry_name
 ORDER BY p.process, queries DESC;

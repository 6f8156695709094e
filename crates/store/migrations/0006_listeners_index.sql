-- Migration 6: the ports index holds listeners only.
--
-- `rounds_ports_port` indexed every socket row by (port, state), yet only listeners
-- (`LISTEN`, `UNCONN`: about a fifth of the rows) are ever looked up by port: when a
-- port first listened (`listening_now.since`, cookbook question 4). Every other row
-- only cost an index entry to write and, on prune, one to find and delete: deleting a
-- day at 100 packets/s took 10.0 s with it and 5.5 s with this one. The condition is
-- an OR of equalities, not an IN list, so that SQLite can prove a query's
-- `state = 'LISTEN'` implies it and use the index.
DROP INDEX rounds_ports_port;
CREATE INDEX rounds_ports_listen ON rounds_ports (port_id, state)
 WHERE state = 'LISTEN' OR state = 'UNCONN';

-- `since` compared `o.state = rp.state`, which no partial index can serve: one
-- subquery per listening state, each with its literal.
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
       CASE rp.state
         WHEN 'LISTEN' THEN
           (SELECT o.timestamp FROM rounds_ports o
             WHERE o.port_id = rp.port_id AND o.state = 'LISTEN' AND o.protocol = rp.protocol
             ORDER BY o.id LIMIT 1)
         ELSE
           (SELECT o.timestamp FROM rounds_ports o
             WHERE o.port_id = rp.port_id AND o.state = 'UNCONN' AND o.protocol = rp.protocol
             ORDER BY o.id LIMIT 1)
       END AS since
  FROM rounds_ports rp, last
 WHERE rp.round_id = last.round_id AND rp.timestamp = last.ts
   AND rp.state IN ('LISTEN', 'UNCONN')
 ORDER BY rp.protocol, rp.port_id;

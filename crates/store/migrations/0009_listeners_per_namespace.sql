-- Migration 9: `listening_now` shows where each listener lives.
--
-- Since migration 8 the scanner samples every network namespace: a container's
-- listener is a row like the host's, with `netns` and `container` set. The view gains
-- both columns (after `since`, so queries that name the earlier ones are unchanged),
-- and `since` is the first sample of that port listening in that namespace: a
-- container that starts to listen on 80 is new though the host has listened on 80 all
-- along. `listening_new_today` selects `*` from it, so it shows them too.
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
               AND o.netns IS rp.netns
             ORDER BY o.id LIMIT 1)
         ELSE
           (SELECT o.timestamp FROM rounds_ports o
             WHERE o.port_id = rp.port_id AND o.state = 'UNCONN' AND o.protocol = rp.protocol
               AND o.netns IS rp.netns
             ORDER BY o.id LIMIT 1)
       END AS since,
       rp.netns,
       rp.container
  FROM rounds_ports rp, last
 WHERE rp.round_id = last.round_id AND rp.timestamp = last.ts
   AND rp.state IN ('LISTEN', 'UNCONN')
 ORDER BY rp.protocol, rp.port_id, rp.netns IS NOT NULL, rp.netns;

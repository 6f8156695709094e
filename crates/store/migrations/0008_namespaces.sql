-- Migration 8: sockets of every network namespace.
--
-- The scanner reads the socket tables of each network namespace on the host (a
-- container's, an `ip netns`'s), not only its own. `netns` is the namespace's nsfs
-- inode (`ls -iL /proc/PID/ns/net`), NULL for the host's own namespace, so every row
-- written before this migration reads as the host's; `container` names the container
-- whose processes are in it (`docker:3f4e1c2a9b8d/web-1`), NULL when none is known.
ALTER TABLE rounds_ports ADD COLUMN netns INTEGER;
ALTER TABLE rounds_ports ADD COLUMN container TEXT;

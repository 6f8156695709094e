-- 0003: who runs a port — the owning process's executable and the socket's user, so
-- that an incident about a new listener names them (a process name is whatever the
-- process chose to call itself; the executable path and the uid are what an operator
-- checks). NULL where the scanner could not see them (the bind probe, another user's
-- process as non-root, rows written before this step).
ALTER TABLE rounds_ports ADD COLUMN exe TEXT;
ALTER TABLE rounds_ports ADD COLUMN uid INTEGER;

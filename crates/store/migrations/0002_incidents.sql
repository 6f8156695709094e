-- 0002: incidents — anomalous rounds grouped by cause, the unit an operator reads,
-- acknowledges or accepts — and the allow rules that say what is normal.
--
-- An incident is one cause (a new listener, a remote network, a local process, a DNS
-- domain, or a group of features when nothing more specific explains it) seen in one or
-- more anomalous rounds. `status`: `open` while the cause is still seen and nobody has
-- looked; `acknowledged` once someone has (its rounds are still never trained on);
-- `closed` once the cause has been absent for `--close-after` rounds; `accepted` when
-- someone (or the drift rule) said it is normal: its rounds become trainable and the
-- same cause opens no incident again.

-- Rounds judged normal enough to learn from, and not learnt yet: the detector scores
-- every minute but fine-tunes every `--train-every`, on the rounds marked here since
-- the last fine-tune (and on those of incidents accepted meanwhile).
ALTER TABLE batches_rounds ADD COLUMN trainable INTEGER NOT NULL DEFAULT 0 CHECK (trainable IN (0, 1));
-- Trained on with the actors of its incidents left out (their listener's sockets, their
-- network's or process's packets, their domain's queries): learning goes on while an
-- incident is open, without learning the incident.
ALTER TABLE batches_rounds ADD COLUMN masked INTEGER NOT NULL DEFAULT 0 CHECK (masked IN (0, 1));
CREATE INDEX batches_rounds_pending ON batches_rounds (round_id) WHERE trainable = 1 AND trained = 0;

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY,
    -- `new_listener`, `vanished_listener`, `remote_source`, `local_process`, `dns`,
    -- `features`, `sustained`.
    kind             TEXT NOT NULL,
    -- The cause's key, the same in every round it explains: `tcp/4444`,
    -- `203.0.113.0/24`, `curl`, `example.net`, `dns`, ...
    cause            TEXT NOT NULL,
    first_round_id   INTEGER NOT NULL,
    last_round_id    INTEGER NOT NULL,
    start_time       TEXT NOT NULL,
    -- End of the last round in which the cause was seen.
    end_time         TEXT NOT NULL,
    peak_score       REAL NOT NULL,
    status           TEXT NOT NULL DEFAULT 'open'
                     CHECK (status IN ('open', 'acknowledged', 'closed', 'accepted')),
    -- Evaluated rounds since the cause was last seen (closes at `--close-after`).
    quiet_rounds     INTEGER NOT NULL DEFAULT 0,
    -- Rounds in which the cause was seen.
    rounds           INTEGER NOT NULL DEFAULT 1,
    summary          TEXT NOT NULL,
    details          TEXT NOT NULL CHECK (json_valid(details)),
    opened_at        TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    acknowledged_at  TEXT,
    accepted_at      TEXT,
    -- Set when accepted: `operator` or `drift` (stable for `--adapt-after`).
    accepted_by      TEXT,
    -- The closing time (when it closed, not when the cause was last seen).
    closed_at        TEXT,
    -- Notes given with `ack` and `accept`, `; `-separated.
    note             TEXT
) STRICT;
CREATE INDEX incidents_active ON incidents (status) WHERE status IN ('open', 'acknowledged');
CREATE INDEX incidents_cause ON incidents (kind, cause);
CREATE INDEX incidents_start ON incidents (start_time);

-- Which rounds an incident covers (its cause was seen in them).
CREATE TABLE incidents_rounds (
    incident_id INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    round_id    INTEGER NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    score       REAL,
    PRIMARY KEY (incident_id, round_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX incidents_rounds_round ON incidents_rounds (round_id);

-- What an operator said is normal: matching activity opens no incident and counts as
-- normal for training. `port`: `tcp/8080`, `udp/53` or `8080` (both protocols);
-- `process`: a process name as stored; `dns`: a domain suffix (`example.com` matches
-- it and its subdomains); `cidr`: `203.0.113.0/24`, `2001:db8::/32` or an address.
CREATE TABLE allow_rules (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('port', 'process', 'dns', 'cidr')),
    value      TEXT NOT NULL,
    note       TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (kind, value)
) STRICT;

CREATE VIEW incident_list AS
SELECT i.id,
       i.status,
       i.kind,
       i.cause,
       i.start_time,
       i.end_time,
       i.rounds,
       round(i.peak_score, 4) AS peak_score,
       i.summary,
       i.acknowledged_at,
       i.accepted_at,
       i.accepted_by,
       i.note
  FROM incidents i;

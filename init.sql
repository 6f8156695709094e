-- portwatch: the whole current schema, for the sqlite3 console. From the repository's
-- top directory:
--     sqlite3 -init init.sql ports.db ""
-- It applies the binaries' own migrations (crates/store/migrations/) in order, so the
-- console and the binaries cannot disagree; a test checks that both paths give the
-- same tables, columns, indexes, foreign keys and pragmas. Add each new migration here
-- and bump user_version with it.

-- Only accepted before the first table exists.
PRAGMA page_size = 65536;
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;

BEGIN;
.read crates/store/migrations/0001_initial.sql
.read crates/store/migrations/0002_incidents.sql
.read crates/store/migrations/0003_owners.sql
.read crates/store/migrations/0004_views.sql
.read crates/store/migrations/0005_talkers.sql
.read crates/store/migrations/0006_listeners_index.sql
.read crates/store/migrations/0007_tunnel_ends.sql
.read crates/store/migrations/0008_namespaces.sql
.read crates/store/migrations/0009_listeners_per_namespace.sql
PRAGMA user_version = 9;
COMMIT;

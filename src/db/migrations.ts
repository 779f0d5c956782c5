/**
 * The schema as an ordered list of migrations. A database records how many it
 * has applied in `PRAGMA user_version`; on open the rest run in order, each in
 * its own transaction. Never edit a migration that has shipped: append one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );

  -- The append-only log of commands that changed the desired state. Each row
  -- is applied to the tables below in the same transaction that appends it,
  -- so the tables always equal the log replayed up to meta.applied_index.
  CREATE TABLE command_log (
    idx        INTEGER PRIMARY KEY,
    term       INTEGER NOT NULL,
    command    TEXT    NOT NULL,
    created_at TEXT    NOT NULL
  );

  -- Every API object (Deployment, ReplicaSet, Service, Pod, Node) in its
  -- Kubernetes JSON shape. resource_version is the log index that last
  -- changed the row.
  CREATE TABLE objects (
    kind             TEXT    NOT NULL,
    namespace        TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    uid              TEXT    NOT NULL,
    resource_version INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    PRIMARY KEY (kind, namespace, name)
  );
  CREATE INDEX objects_by_uid ON objects (uid);

  -- Persisted XState snapshots, so that a restarted agent resumes each actor
  -- where it was instead of starting over.
  CREATE TABLE actor_snapshots (
    actor_id   TEXT PRIMARY KEY,
    machine    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    snapshot   TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  `,
];

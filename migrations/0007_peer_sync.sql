-- Peer sync (src/control/replication.rs). Which director made each revision: a director finds its
-- own tip in a peer's recent lineage to tell a fast-forward from a split edit. Revisions made
-- before this table existed have no row (their origin is unknown).
CREATE TABLE revisions (
    revision      INTEGER PRIMARY KEY CHECK (revision >= 1),
    origin        TEXT NOT NULL,
    time_unix_ms  INTEGER NOT NULL
);

-- Split edits that lost by the documented rule (higher revision wins, then the node name that
-- sorts first): the losing configuration, whole, until an operator re-applies or dismisses it.
CREATE TABLE conflicts (
    id               INTEGER PRIMARY KEY,
    time_unix_ms     INTEGER NOT NULL,
    revision         INTEGER NOT NULL,
    origin           TEXT NOT NULL,
    winner_revision  INTEGER NOT NULL,
    winner_origin    TEXT NOT NULL,
    -- the losing configuration, as the peer protocol carries it (ids and VRRP passwords kept)
    config           TEXT NOT NULL CHECK (json_valid(config))
);

-- lbd's configuration store. The in-memory model is the authority for validation (one writer);
-- these constraints are a second line that keeps a hand-edited or corrupted file from loading
-- nonsense. Natural-key uniqueness is checked in memory, not here: a whole-config replace may swap
-- two entities' keys, which per-statement UNIQUE checks would refuse halfway.

CREATE TABLE meta (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    -- bumped by one on every committed change; served as the ETag
    revision  INTEGER NOT NULL CHECK (revision >= 0),
    -- next entity id; ids are never reused
    next_id   INTEGER NOT NULL CHECK (next_id >= 1)
);
INSERT INTO meta (id, revision, next_id) VALUES (1, 0, 1);

CREATE TABLE virtual_servers (
    id                        INTEGER PRIMARY KEY,
    name                      TEXT,
    address                   TEXT,
    port                      INTEGER CHECK (port BETWEEN 0 AND 65535),
    protocol                  TEXT CHECK (protocol IN ('tcp', 'udp', 'sctp')),
    fwmark                    INTEGER CHECK (fwmark BETWEEN 1 AND 4294967295),
    family                    TEXT NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
    scheduler                 TEXT NOT NULL,
    forwarding                TEXT NOT NULL CHECK (forwarding IN ('dr', 'nat', 'tun')),
    persistence_timeout_secs  INTEGER,
    persistence_granularity   INTEGER,
    delay_loop_ms             INTEGER NOT NULL,
    sorry_address             TEXT,
    sorry_port                INTEGER,
    quorum                    INTEGER,
    CHECK ((address IS NULL) <> (fwmark IS NULL))
);

CREATE TABLE real_servers (
    id                  INTEGER PRIMARY KEY,
    virtual_server_id   INTEGER NOT NULL REFERENCES virtual_servers (id) ON DELETE CASCADE,
    address             TEXT NOT NULL,
    port                INTEGER CHECK (port BETWEEN 0 AND 65535),
    weight              INTEGER NOT NULL CHECK (weight BETWEEN 0 AND 65535),
    forwarding          TEXT CHECK (forwarding IN ('dr', 'nat', 'tun')),
    inhibit_on_failure  INTEGER NOT NULL CHECK (inhibit_on_failure IN (0, 1)),
    upper_threshold     INTEGER,
    lower_threshold     INTEGER
);
CREATE INDEX real_servers_by_virtual_server ON real_servers (virtual_server_id);

CREATE TABLE health_checks (
    real_server_id         INTEGER PRIMARY KEY REFERENCES real_servers (id) ON DELETE CASCADE,
    type                   TEXT NOT NULL CHECK (type IN ('tcp', 'http')),
    connect_port           INTEGER,
    connect_timeout_ms     INTEGER NOT NULL,
    retry                  INTEGER NOT NULL,
    delay_before_retry_ms  INTEGER NOT NULL,
    rise                   INTEGER,
    fall                   INTEGER,
    path                   TEXT,
    expected_status        INTEGER,
    body_contains          TEXT
);

CREATE TABLE vrrp_groups (
    id                        INTEGER PRIMARY KEY,
    name                      TEXT NOT NULL,
    vrid                      INTEGER NOT NULL CHECK (vrid BETWEEN 1 AND 255),
    version                   INTEGER NOT NULL CHECK (version IN (2, 3)),
    advert_interval_ms        INTEGER NOT NULL,
    auth_pass                 TEXT,
    preempt                   INTEGER NOT NULL CHECK (preempt IN (0, 1)),
    preempt_delay_ms          INTEGER NOT NULL,
    -- JSON arrays of strings: small lists read and written whole with their group
    unicast_peers             TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(unicast_peers)),
    track_interfaces          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(track_interfaces)),
    garp_count                INTEGER NOT NULL,
    garp_repeat_delay_ms      INTEGER NOT NULL,
    garp_refresh_interval_ms  INTEGER
);

-- The VIPs.
CREATE TABLE vrrp_virtual_addresses (
    group_id    INTEGER NOT NULL REFERENCES vrrp_groups (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    address     TEXT NOT NULL,
    prefix_len  INTEGER NOT NULL,
    PRIMARY KEY (group_id, position)
);

-- Per-director values of a group (keepalived's @node lines).
CREATE TABLE vrrp_nodes (
    group_id       INTEGER NOT NULL REFERENCES vrrp_groups (id) ON DELETE CASCADE,
    node           TEXT NOT NULL,
    position       INTEGER NOT NULL,
    priority       INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 255),
    interface      TEXT NOT NULL,
    initial_state  TEXT NOT NULL CHECK (initial_state IN ('master', 'backup')),
    unicast_src    TEXT,
    PRIMARY KEY (group_id, node)
);

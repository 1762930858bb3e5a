-- VRRP sync groups, strict mode and gratuitous ARP / NA spacing (issue #25).
-- The settings that span VRRP groups (src/model/vrrp_settings.rs): one row, or none (the
-- defaults: not strict, no sync groups). sync_groups is a JSON document of the model's
-- Vec<VrrpSyncGroup>.
CREATE TABLE vrrp_settings (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    strict      INTEGER NOT NULL CHECK (strict IN (0, 1)),
    sync_groups TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(sync_groups))
);
-- keepalived's garp_interval / gna_interval per group (0: back to back).
ALTER TABLE vrrp_groups ADD COLUMN garp_interval_ms INTEGER NOT NULL DEFAULT 0
    CHECK (garp_interval_ms BETWEEN 0 AND 60000);
ALTER TABLE vrrp_groups ADD COLUMN gna_interval_ms INTEGER NOT NULL DEFAULT 0
    CHECK (gna_interval_ms BETWEEN 0 AND 60000);

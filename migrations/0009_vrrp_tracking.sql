-- VRRP tracking (issue #25): weighted interfaces, tracked virtual servers, track scripts and
-- notify commands of each group, as JSON documents of the model's types
-- (src/model/vrrp_group.rs: TrackedInterface, TrackedVirtualServer, TrackScript, Notify).
ALTER TABLE vrrp_groups ADD COLUMN track_interfaces_weighted TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(track_interfaces_weighted));
ALTER TABLE vrrp_groups ADD COLUMN track_virtual_servers TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(track_virtual_servers));
ALTER TABLE vrrp_groups ADD COLUMN track_scripts TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(track_scripts));
ALTER TABLE vrrp_groups ADD COLUMN notify TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(notify));

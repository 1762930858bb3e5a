-- VRRP virtual address options, virtual routes and rules (issue #25): keepalived's
-- `virtual_ipaddress { ADDR dev IF scope S label L brd B }`, `virtual_routes` and
-- `virtual_rules`. The options are columns of the address (NULL: not set); the routes and
-- rules JSON documents of the model's types (src/model/vrrp_routes.rs: VirtualRoute,
-- VirtualRule), as 0009 keeps the tracking.
ALTER TABLE vrrp_virtual_addresses ADD COLUMN dev TEXT;
ALTER TABLE vrrp_virtual_addresses ADD COLUMN scope INTEGER CHECK (scope BETWEEN 0 AND 255);
ALTER TABLE vrrp_virtual_addresses ADD COLUMN label TEXT;
ALTER TABLE vrrp_virtual_addresses ADD COLUMN broadcast TEXT;
ALTER TABLE vrrp_groups ADD COLUMN virtual_routes TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(virtual_routes));
ALTER TABLE vrrp_groups ADD COLUMN virtual_rules TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(virtual_rules));

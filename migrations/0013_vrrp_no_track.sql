-- keepalived's `no_track` on a virtual address (issue #25): a master does not leave master
-- when the address is deleted from the kernel, and adds it again only on its next transition
-- to master. Virtual routes and rules carry it in their JSON documents (0011).
ALTER TABLE vrrp_virtual_addresses ADD COLUMN no_track INTEGER NOT NULL DEFAULT 0
    CHECK (no_track IN (0, 1));

-- VRRP virtual MAC (issue #25, keepalived use_vmac / vmac_xmit_base): whether a group's
-- virtual addresses live on a macvlan with the RFC 5798 virtual MAC, its name (NULL: the
-- default vrrp.VRID) and whether adverts still go out of the base interface.
ALTER TABLE vrrp_groups ADD COLUMN use_vmac INTEGER NOT NULL DEFAULT 0 CHECK (use_vmac IN (0, 1));
ALTER TABLE vrrp_groups ADD COLUMN vmac_name TEXT;
ALTER TABLE vrrp_groups ADD COLUMN vmac_xmit_base INTEGER NOT NULL DEFAULT 0
    CHECK (vmac_xmit_base IN (0, 1));

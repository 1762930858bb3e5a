-- IPVS connection synchronisation (ipvsadm --start-daemon, keepalived's `lvs_sync_daemon`) when
-- lbd manages it: one row, or none (lbd leaves the kernel's sync daemons alone). lbd runs a
-- master and a backup daemon with these settings; NULL options are the kernel's defaults
-- (maxlen from the interface's MTU, group 224.0.0.81, port 8848, ttl 1).
CREATE TABLE connection_sync (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    interface         TEXT    NOT NULL CHECK (length(interface) BETWEEN 1 AND 15),
    sync_id           INTEGER NOT NULL CHECK (sync_id BETWEEN 0 AND 255),
    maxlen            INTEGER CHECK (maxlen BETWEEN 1 AND 65507),
    port              INTEGER CHECK (port BETWEEN 1 AND 65535),
    ttl               INTEGER CHECK (ttl BETWEEN 1 AND 255),
    mcast_group       TEXT,
    vrrp_group        TEXT,
    failback_hold_ms  INTEGER NOT NULL CHECK (failback_hold_ms BETWEEN 0 AND 600000)
);

-- keepalived's quorum commands and real-server start-up of a virtual server: `hysteresis`
-- around the quorum, the `quorum_up` / `quorum_down` commands (argv as one string, split as
-- keepalived splits it), `alpha` (checked real servers start as down) and `omega`
-- (`quorum_down` on removal and at shutdown).
ALTER TABLE virtual_servers ADD COLUMN hysteresis INTEGER NOT NULL DEFAULT 0
    CHECK (hysteresis >= 0);
ALTER TABLE virtual_servers ADD COLUMN quorum_up TEXT;
ALTER TABLE virtual_servers ADD COLUMN quorum_down TEXT;
ALTER TABLE virtual_servers ADD COLUMN alpha INTEGER NOT NULL DEFAULT 0 CHECK (alpha IN (0, 1));
ALTER TABLE virtual_servers ADD COLUMN omega INTEGER NOT NULL DEFAULT 0 CHECK (omega IN (0, 1));

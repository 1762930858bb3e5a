-- keepalived fidelity: one-packet scheduling (`ops`, IP_VS_SVC_F_ONEPACKET) and the sh/mh
-- scheduler flags (IP_VS_SVC_F_SCHED1/2) of a virtual server.
ALTER TABLE virtual_servers ADD COLUMN one_packet INTEGER NOT NULL DEFAULT 0
    CHECK (one_packet IN (0, 1));
-- JSON array of flag names ("sh-fallback", "sh-port", "mh-fallback", "mh-port")
ALTER TABLE virtual_servers ADD COLUMN scheduler_flags TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(scheduler_flags));

-- HTTP checks with several urls, status code ranges and digests (keepalived's HTTP_GET `url`
-- blocks): a JSON array of {"path", "status_codes", "digest"}; empty for the single-url form
-- (path, expected_status).
ALTER TABLE health_checks ADD COLUMN urls TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(urls));

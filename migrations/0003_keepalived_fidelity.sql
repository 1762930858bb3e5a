-- keepalived fidelity: one-packet scheduling (`ops`, IP_VS_SVC_F_ONEPACKET) and the sh/mh
-- scheduler flags (IP_VS_SVC_F_SCHED1/2) of a virtual server.
ALTER TABLE virtual_servers ADD COLUMN one_packet INTEGER NOT NULL DEFAULT 0
    CHECK (one_packet IN (0, 1));
-- JSON array of flag names ("sh-fallback", "sh-port", "mh-fallback", "mh-port")
ALTER TABLE virtual_servers ADD COLUMN scheduler_flags TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(scheduler_flags));

-- health_checks gains MISC_CHECK ('misc') and SSL_GET ('https', with its CA file and server
-- name): types the old CHECK refuses, so the table is rebuilt),
-- HTTP checks with several urls, status code ranges and digests (keepalived's HTTP_GET `url`
-- blocks: a JSON array of {"path", "status_codes", "digest"}; empty for the single-url form of
-- path and expected_status), and the misc check's command, timeout, dynamic weight and user.
CREATE TABLE health_checks_new (
    real_server_id         INTEGER PRIMARY KEY REFERENCES real_servers (id) ON DELETE CASCADE,
    type                   TEXT NOT NULL CHECK (type IN ('tcp', 'http', 'misc', 'https')),
    connect_port           INTEGER,
    connect_timeout_ms     INTEGER NOT NULL,
    retry                  INTEGER NOT NULL,
    delay_before_retry_ms  INTEGER NOT NULL,
    rise                   INTEGER,
    fall                   INTEGER,
    path                   TEXT,
    expected_status        INTEGER,
    body_contains          TEXT,
    urls                   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(urls)),
    misc_path              TEXT,
    misc_timeout_ms        INTEGER,
    misc_dynamic           INTEGER NOT NULL DEFAULT 0 CHECK (misc_dynamic IN (0, 1)),
    run_as_user            TEXT,
    tls_ca_file            TEXT,
    tls_server_name        TEXT,
    virtualhost            TEXT
);
INSERT INTO health_checks_new (real_server_id, type, connect_port, connect_timeout_ms, retry,
    delay_before_retry_ms, rise, fall, path, expected_status, body_contains)
SELECT real_server_id, type, connect_port, connect_timeout_ms, retry, delay_before_retry_ms,
    rise, fall, path, expected_status, body_contains FROM health_checks;
DROP TABLE health_checks;
ALTER TABLE health_checks_new RENAME TO health_checks;

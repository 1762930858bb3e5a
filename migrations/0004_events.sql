-- The event history (GET /api/v1/events, the SSE stream and gRPC WatchEvents replay from it):
-- the last events, kept bounded by the one task that writes them. `seq` goes on from the
-- largest stored one after a restart.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY CHECK (seq >= 1),
    time_unix_ms  INTEGER NOT NULL,
    -- the event as GET /api/v1/events shows it
    body          TEXT NOT NULL CHECK (json_valid(body))
);

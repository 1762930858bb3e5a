//! The live event stream end to end: SSE (`GET /api/v1/events/stream`) and gRPC `WatchEvents`
//! against a real server on 127.0.0.1, with resume, restart and a reader that falls behind.

#[path = "support/server.rs"]
mod support;

use std::time::Duration;

use lbd::control::events::EventKind;
use lbd::dataplane::health::state::HealthState;
use lbd::grpc::pb;
use pb::lbd_client::LbdClient;
use serde_json::{json, Value};
use support::TestServer;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);

/// One parsed Server-Sent Event.
#[derive(Debug, Default)]
struct Sse {
    id: Option<u64>,
    event: Option<String>,
    data: String,
}

/// A minimal SSE reader over a streaming response (RFC-less, per the WHATWG SSE format:
/// `field: value` lines, a blank line ends an event, `:` lines are comments).
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    async fn open(s: &TestServer, last_event_id: Option<u64>) -> SseReader {
        let mut rb = reqwest::Client::new().get(s.url("/api/v1/events/stream"));
        if let Some(id) = last_event_id {
            rb = rb.header("Last-Event-ID", id.to_string());
        }
        let resp = rb.send().await.expect("open the stream");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, or None at the end of the stream. Comments are skipped.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut ev = Sse::default();
                let mut any = false;
                for line in block.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (k, v) = line.split_once(':').unwrap_or((line, ""));
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    any = true;
                    match k {
                        "id" => ev.id = v.parse().ok(),
                        "event" => ev.event = Some(v.to_string()),
                        "data" => ev.data.push_str(v),
                        _ => {}
                    }
                }
                if any {
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("the stream stalled")
                .expect("read the stream")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        }
    }

    /// The next event's JSON data, checking that its `id` is its `seq`.
    async fn next_json(&mut self) -> Value {
        let ev = self.next().await.expect("an event");
        assert_eq!(ev.event, None, "a plain event: {ev:?}");
        let v: Value = serde_json::from_str(&ev.data).expect("JSON data");
        assert_eq!(Some(v["seq"].as_u64().unwrap()), ev.id, "id is seq: {v}");
        v
    }

    /// Reads until an event of `type` comes.
    async fn until_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.next_json().await;
            if v["type"] == ty {
                return v;
            }
        }
    }
}

async fn create_vs(s: &TestServer, port: u16) -> u64 {
    let r = reqwest::Client::new()
        .post(s.url("/api/v1/virtual-servers"))
        .body(
            json!({"address": "192.168.10.100", "port": port, "protocol": "tcp",
                   "scheduler": "rr", "forwarding": "dr"})
            .to_string(),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let etag = r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_string();
    etag.parse().expect("revision")
}

async fn events_since(s: &TestServer, since: u64) -> Vec<Value> {
    let r = reqwest::get(s.url(&format!("/api/v1/events?since={since}")))
        .await
        .expect("events");
    assert_eq!(r.status(), 200);
    serde_json::from_value(r.json::<Value>().await.expect("json")).expect("list")
}

fn bus(s: &TestServer) -> &lbd::control::events::EventBus {
    s.running.as_ref().expect("running").service.events()
}

/// A health change with a long error text: a few thousand of them are more than the sockets
/// between a server and a reader that does not read can hold.
fn bulky_event(i: i64) -> EventKind {
    EventKind::HealthChanged {
        virtual_server_id: 1,
        real_server_id: i,
        target: "127.0.0.1:9".into(),
        state: HealthState::Down,
        error: Some("x".repeat(3000)),
    }
}

#[tokio::test]
async fn sse_delivers_live_events_and_resumes_after_last_event_id() {
    let s = TestServer::start().await;
    // Something in the history already: a stream opened without an id starts after it.
    let rev0 = create_vs(&s, 79).await;
    let before = bus(&s).last_seq();
    let mut sse = SseReader::open(&s, None).await;
    let rev = create_vs(&s, 80).await;
    let next = sse.next_json().await;
    assert!(next["seq"].as_u64().unwrap() > before, "no replay: {next}");
    let first = if next["type"] == "config_committed" {
        next
    } else {
        sse.until_type("config_committed").await
    };
    assert_ne!(first["revision"], rev0);
    assert_eq!(first["revision"], rev);
    let first_seq = first["seq"].as_u64().unwrap();
    drop(sse);

    // Two commits while nobody listens; a reconnect with Last-Event-ID gets them, in order,
    // from the history, and then live ones.
    let rev2 = create_vs(&s, 81).await;
    let rev3 = create_vs(&s, 82).await;
    let mut sse = SseReader::open(&s, Some(first_seq)).await;
    let mut seen = Vec::new();
    let mut last = first_seq;
    while seen.len() < 2 {
        let v = sse.next_json().await;
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(seq, last + 1, "no gap, no repeat: {v}");
        last = seq;
        if v["type"] == "config_committed" {
            seen.push(v["revision"].as_u64().unwrap());
        }
    }
    assert_eq!(seen, vec![rev2, rev3]);
    let rev4 = create_vs(&s, 83).await;
    let live = sse.until_type("config_committed").await;
    assert_eq!(live["revision"], rev4);
    assert!(live["seq"].as_u64().unwrap() > last);

    // `?since=` does the same as the header; a bad Last-Event-ID is a 400 naming it.
    let r = reqwest::Client::new()
        .get(s.url("/api/v1/events/stream"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "last-event-id");
}

#[tokio::test]
async fn events_survive_a_restart_and_seq_goes_on() {
    let mut s = TestServer::start().await;
    let rev = create_vs(&s, 80).await;
    let before = events_since(&s, 0).await;
    let committed = before
        .iter()
        .find(|e| e["type"] == "config_committed" && e["revision"] == rev)
        .expect("the commit's event")
        .clone();
    let last_before = before.last().unwrap()["seq"].as_u64().unwrap();

    // A stream open across the shutdown ends (it does not hold the shutdown up).
    let mut sse = SseReader::open(&s, Some(last_before)).await;
    tokio::time::timeout(WAIT, s.restart())
        .await
        .expect("shutdown with an open stream");
    let mut ended = false;
    for _ in 0..100 {
        if sse.next().await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the stream ended at shutdown");

    let after = events_since(&s, 0).await;
    assert!(
        after.contains(&committed),
        "the event is still there after the restart: {after:?}"
    );
    let rev2 = create_vs(&s, 81).await;
    let mut sse = SseReader::open(&s, Some(0)).await;
    let replayed = sse.next_json().await;
    assert_eq!(
        replayed["seq"], before[0]["seq"],
        "replay starts at the oldest"
    );
    let new = sse.until_type("config_committed").await;
    let new = if new["revision"] == rev {
        sse.until_type("config_committed").await
    } else {
        new
    };
    assert_eq!(new["revision"], rev2);
    assert!(
        new["seq"].as_u64().unwrap() > last_before,
        "seq goes on after the restart: {new} vs {last_before}"
    );
}

// Multi-threaded: the server's tasks run while the test publishes, as in the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_sse_reader_gets_lagged_and_can_resume() {
    let s = TestServer::start().await;
    let mut sse = SseReader::open(&s, None).await;
    let start = bus(&s).last_seq();
    // The reader reads nothing while 8,000 events (24 MB) are published: the sockets fill,
    // the server stops taking from the channel, and more than 1,024 events pass it by. The
    // publisher is not held up.
    let t = std::time::Instant::now();
    for i in 0..8_000 {
        bus(&s).publish(bulky_event(i));
    }
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "publishing took {took:?}");

    let mut last_id = start;
    let lagged = loop {
        let ev = sse.next().await.expect("the lagged event before the end");
        if ev.event.as_deref() == Some("lagged") {
            break ev;
        }
        last_id = ev.id.expect("id");
    };
    let body: Value = serde_json::from_str(&lagged.data).expect("json");
    assert_eq!(body["last_seq"], last_id);
    assert!(body["missed"].as_u64().unwrap() > 0);
    assert!(body["message"].as_str().unwrap().starts_with("lagged"));
    assert!(sse.next().await.is_none(), "the stream ends after lagged");

    // Resuming from there replays the rest from the history (it holds 10,000).
    let mut sse = SseReader::open(&s, Some(last_id)).await;
    let next = sse.next_json().await;
    assert_eq!(next["seq"], last_id + 1);
}

async fn grpc(s: &TestServer) -> LbdClient<tonic::transport::Channel> {
    let addr = s.running.as_ref().unwrap().grpc_addr;
    LbdClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

async fn next_msg(st: &mut tonic::Streaming<pb::WatchedEvent>) -> pb::WatchedEvent {
    tokio::time::timeout(WAIT, st.message())
        .await
        .expect("the stream stalled")
        .expect("a message")
        .expect("not the end")
}

async fn until_commit(st: &mut tonic::Streaming<pb::WatchedEvent>) -> (u64, pb::ConfigCommitted) {
    loop {
        let m = next_msg(st).await;
        if let Some(pb::watched_event::Kind::ConfigCommitted(c)) = m.kind {
            return (m.seq, c);
        }
    }
}

#[tokio::test]
async fn grpc_watch_events_is_typed_live_and_resumable() {
    let s = TestServer::start().await;
    let mut c = grpc(&s).await;
    let mut st = c
        .watch_events(pb::WatchEventsRequest { since: None })
        .await
        .expect("watch")
        .into_inner();
    let rev = create_vs(&s, 80).await;
    let (seq, commit) = until_commit(&mut st).await;
    assert_eq!(commit.revision, rev);
    assert_eq!(commit.changes, 1);

    // Typed health and VRRP events, as published by the data plane.
    bus(&s).publish(EventKind::HealthChanged {
        virtual_server_id: 7,
        real_server_id: 8,
        target: "127.0.0.1:9".into(),
        state: HealthState::Down,
        error: Some("connection refused".into()),
    });
    bus(&s).publish(EventKind::VrrpStateChanged {
        group: "VI_1".into(),
        vrid: 1,
        from: lbd::control::events::VrrpState::Backup,
        to: lbd::control::events::VrrpState::Master,
        reason: lbd::control::events::VrrpReason::MasterDown,
        detail: None,
    });
    let mut health = None;
    let mut vrrp = None;
    while health.is_none() || vrrp.is_none() {
        match next_msg(&mut st).await.kind {
            Some(pb::watched_event::Kind::HealthChanged(h)) => health = Some(h),
            Some(pb::watched_event::Kind::VrrpStateChanged(v)) => vrrp = Some(v),
            _ => {}
        }
    }
    let (health, vrrp) = (health.unwrap(), vrrp.unwrap());
    assert_eq!(health.state(), pb::HealthState::Down);
    assert_eq!(health.error.as_deref(), Some("connection refused"));
    assert_eq!(vrrp.from(), pb::VrrpState::Backup);
    assert_eq!(vrrp.to(), pb::VrrpState::Master);
    assert_eq!(vrrp.reason(), pb::VrrpReason::MasterDown);
    drop(st);

    // Resume: `since` replays what came after it.
    let rev2 = create_vs(&s, 81).await;
    let mut st = c
        .watch_events(pb::WatchEventsRequest { since: Some(seq) })
        .await
        .expect("watch")
        .into_inner();
    let first = next_msg(&mut st).await;
    assert_eq!(first.seq, seq + 1);
    let (_, commit) = until_commit(&mut st).await;
    assert_eq!(commit.revision, rev2);
}

// Multi-threaded: the server's tasks run while the test publishes, as in the daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_grpc_reader_is_ended_with_aborted() {
    let s = TestServer::start().await;
    let mut c = grpc(&s).await;
    let mut st = c
        .watch_events(pb::WatchEventsRequest { since: None })
        .await
        .expect("watch")
        .into_inner();
    // HTTP/2 flow control stops the server after a window's worth the reader did not take.
    for i in 0..5_000 {
        bus(&s).publish(bulky_event(i));
    }
    let mut got = 0u64;
    let status = loop {
        match tokio::time::timeout(WAIT, st.message())
            .await
            .expect("stalled")
        {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("ended without a status after {got} events"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert!(status.message().starts_with("lagged"), "{status:?}");
    assert!(got < 5_000);
}

#[tokio::test]
async fn the_stored_history_is_bounded_to_the_newest_events() {
    let mut s = TestServer::start().await;
    for i in 0..(lbd::control::events::HISTORY as i64 + 50) {
        bus(&s).publish(EventKind::HealthChanged {
            virtual_server_id: 1,
            real_server_id: i,
            target: "127.0.0.1:9".into(),
            state: HealthState::Up,
            error: None,
        });
    }
    let last = bus(&s).last_seq();
    s.restart().await;
    // The restarted server may have published its own (the data plane's state) since.
    let now = bus(&s).last_seq();
    assert!(now >= last, "numbering goes on from the stored history");
    let all = events_since(&s, 0).await;
    assert_eq!(all.len(), lbd::control::events::HISTORY);
    let newest = all.last().unwrap()["seq"].as_u64().unwrap();
    assert!(newest >= now);
    assert_eq!(
        all[0]["seq"].as_u64().unwrap(),
        newest - lbd::control::events::HISTORY as u64 + 1
    );
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "no gaps");
    assert!(seqs.contains(&last));
    assert!(seqs
        .iter()
        .filter(|&&q| q <= last)
        .all(|&q| { all[(q - seqs[0]) as usize]["type"] == "health_changed" }));
}

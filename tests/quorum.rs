//! keepalived's `alpha`, `hysteresis`, `quorum_up`/`quorum_down` and `omega` through the
//! data-plane actor (in-memory kernel) with real TCP checks of listeners on 127.0.0.1: the
//! quorum commands are real processes that leave marker files.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lbd::control::events::{EventBus, EventKind};
use lbd::control::status::{DataplaneStatus, StatusBoard};
use lbd::dataplane::actor::{spawn, ActorConfig, DataplaneHandle};
use lbd::dataplane::health::state::HealthState;
use lbd::dataplane::quorum::{QuorumCause, QuorumCommandKind};
use lbd::kernel::memory::MemoryKernel;
use lbd::model::{Config, Snapshot};
use serde_json::{json, Value};
use tokio::sync::watch;

fn config(v: Value) -> Config {
    let mut c: Config = serde_json::from_value(json!({ "virtual_servers": [v] })).unwrap();
    for v in &mut c.virtual_servers {
        Arc::make_mut(v).normalize();
    }
    lbd::model::validate::config(&c, None).unwrap();
    c
}

fn tcp_rs(id: i64, port: u16, weight: u32) -> Value {
    json!({"id": id, "address": "127.0.0.1", "port": port, "weight": weight,
           "health_check": {"type": "tcp", "connect_timeout_ms": 100, "retry": 0,
                            "delay_before_retry_ms": 10}})
}

struct Rig {
    kernel: MemoryKernel,
    board: StatusBoard,
    events: EventBus,
    tx: watch::Sender<Arc<Snapshot>>,
    handle: DataplaneHandle,
    _task: tokio::task::JoinHandle<()>,
}

fn start(cfg: Config) -> Rig {
    let kernel = MemoryKernel::default();
    let (tx, rx) = watch::channel(Arc::new(Snapshot {
        revision: 1,
        config: cfg,
    }));
    let board = StatusBoard::new(DataplaneStatus::default());
    let events = EventBus::default();
    let (handle, task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        events.clone(),
        ActorConfig::default(),
    );
    Rig {
        kernel,
        board,
        events,
        tx,
        handle,
        _task: task,
    }
}

/// The destinations of every service: "address:port weight".
fn dests(k: &MemoryKernel) -> Vec<String> {
    k.with(|s| {
        s.table
            .services
            .values()
            .flat_map(|svc| {
                svc.dests
                    .iter()
                    .map(|(d, spec)| format!("{}:{} {}", d.address, d.port, spec.weight))
            })
            .collect()
    })
}

fn services(k: &MemoryKernel) -> usize {
    k.with(|s| s.table.services.len())
}

async fn wait_until(what: &str, limit: Duration, f: impl Fn() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The quorum command events so far: (command, cause, ok, result).
fn command_events(e: &EventBus) -> Vec<(QuorumCommandKind, QuorumCause, bool, String)> {
    e.recent(0)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::QuorumCommand {
                command,
                cause,
                ok,
                result,
                ..
            } => Some((command, cause, ok, result)),
            _ => None,
        })
        .collect()
}

fn quorum_changes(e: &EventBus) -> Vec<bool> {
    e.recent(0)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::QuorumChanged { up, .. } => Some(up),
            _ => None,
        })
        .collect()
}

/// A real-server id whose first check falls late in `period` (checks are spread by id), so the
/// state before it can be observed.
fn late_id(period: Duration) -> i64 {
    (2..1000)
        .find(|id| lbd::dataplane::health::first_offset(*id, period) >= period / 2)
        .unwrap()
}

/// `alpha`: a checked real server starts as down (out of the table, though it would pass) and
/// joins with its first successful check; without `alpha` it is in the table from the start.
#[tokio::test]
async fn alpha_keeps_a_server_out_until_its_first_successful_check() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let period = Duration::from_millis(600);
    let rs = late_id(period);
    let rig = start(config(json!({"id": 1, "address": "10.0.0.1", "port": 80,
        "forwarding": "nat", "delay_loop_ms": 600, "alpha": true,
        "real_servers": [tcp_rs(rs, port, 3)]})));
    let target = format!("127.0.0.1:{port} 3");
    wait_until("the service", Duration::from_secs(2), || {
        services(&rig.kernel) == 1
    })
    .await;
    let h = rig.board.health_list();
    assert_eq!(h[0].state, HealthState::Down);
    assert_eq!(h[0].checks, 0, "the first check is not due yet");
    assert!(
        !dests(&rig.kernel).contains(&target),
        "{:?}",
        dests(&rig.kernel)
    );
    wait_until("the first check", Duration::from_secs(3), || {
        dests(&rig.kernel).contains(&target)
    })
    .await;
    let h = rig.board.health_list();
    assert!(h[0].checks >= 1);
    assert_eq!(h[0].state, HealthState::Up);
    assert_eq!(h[0].transitions, 1);

    // The same without alpha: in the table before any check.
    let rig = start(config(json!({"id": 1, "address": "10.0.0.1", "port": 80,
        "forwarding": "nat", "delay_loop_ms": 600,
        "real_servers": [tcp_rs(rs, port, 3)]})));
    wait_until("the server", Duration::from_secs(2), || {
        dests(&rig.kernel).contains(&target)
    })
    .await;
    assert_eq!(rig.board.health_list()[0].checks, 0);
    drop(l);
}

/// quorum_down runs (no shell: argv split with its quotes) when the only real server's listener
/// stops, and quorum_up when it is back; the sorry server follows the quorum. No command runs
/// at start-up (keepalived runs none either).
#[tokio::test]
async fn quorum_commands_run_when_a_listener_stops_and_starts() {
    let dir = tempfile::tempdir().unwrap();
    let up = dir.path().join("up marker");
    let down = dir.path().join("down");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let rig = start(config(json!({"id": 1, "address": "10.0.0.1", "port": 80,
        "forwarding": "nat", "delay_loop_ms": 150,
        "sorry_server": {"address": "127.0.0.9", "port": 8080},
        "quorum_up": format!("/usr/bin/touch '{}'", up.display()),
        "quorum_down": format!("/bin/sh -c 'echo lost >> $0' {}", down.display()),
        "real_servers": [tcp_rs(2, port, 1)]})));
    let target = format!("127.0.0.1:{port} 1");
    wait_until("the first check", Duration::from_secs(2), || {
        rig.board
            .health_list()
            .first()
            .is_some_and(|h| h.checks >= 1)
    })
    .await;
    assert_eq!(dests(&rig.kernel), vec![target.clone()]);
    assert!(!up.exists() && !down.exists(), "nothing runs at start-up");

    drop(l);
    wait_until("quorum_down's marker", Duration::from_secs(3), || {
        read(&down) == "lost\n"
    })
    .await;
    assert_eq!(dests(&rig.kernel), vec!["127.0.0.9:8080 1".to_string()]);
    assert!(!up.exists());

    let _l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    wait_until("quorum_up's marker", Duration::from_secs(3), || up.exists()).await;
    wait_until("the server back", Duration::from_secs(1), || {
        dests(&rig.kernel) == vec![target.clone()]
    })
    .await;
    assert_eq!(read(&down), "lost\n", "quorum_down ran once");
    wait_until("both command events", Duration::from_secs(2), || {
        command_events(&rig.events).len() == 2
    })
    .await;
    assert_eq!(
        command_events(&rig.events),
        vec![
            (
                QuorumCommandKind::QuorumDown,
                QuorumCause::Health,
                true,
                "exit 0".to_string()
            ),
            (
                QuorumCommandKind::QuorumUp,
                QuorumCause::Health,
                true,
                "exit 0".to_string()
            ),
        ]
    );
    assert_eq!(quorum_changes(&rig.events), vec![false, true]);
}

/// `hysteresis`: with quorum 2 and hysteresis 1 the quorum is lost only below 1 and gained
/// only at 3, so losing one of two servers (weights 2 and 1) changes nothing.
#[tokio::test]
async fn hysteresis_keeps_the_quorum_between_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let la = TcpListener::bind("127.0.0.1:0").unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    let cmd = |word: &str| format!("/bin/sh -c 'echo {word} >> $0' {}", log.display());
    let rig = start(config(json!({"id": 1, "address": "10.0.0.1", "port": 80,
        "forwarding": "nat", "delay_loop_ms": 100, "quorum": 2, "hysteresis": 1,
        "sorry_server": {"address": "127.0.0.9"},
        "quorum_up": cmd("up"), "quorum_down": cmd("down"),
        "real_servers": [tcp_rs(2, pa, 2), tcp_rs(3, pb, 1)]})));
    let checked = |n: u64| {
        let b = rig.board.clone();
        move || b.health_list().iter().all(|h| h.checks >= n)
    };
    let down_count = |rig: &Rig| {
        rig.board
            .health_list()
            .iter()
            .filter(|h| h.state == HealthState::Down)
            .count()
    };
    wait_until("first checks", Duration::from_secs(2), checked(1)).await;

    // A (weight 2) goes: 1 left, below the quorum but not below quorum - hysteresis.
    drop(la);
    wait_until("A down", Duration::from_secs(2), || down_count(&rig) == 1).await;
    let after = rig
        .board
        .health_list()
        .iter()
        .map(|h| h.checks)
        .max()
        .unwrap();
    wait_until("more checks", Duration::from_secs(2), checked(after + 2)).await;
    assert_eq!(read(&log), "", "the quorum holds");
    assert_eq!(dests(&rig.kernel), vec![format!("127.0.0.1:{pb} 1")]);

    // B goes too: 0 < 1, lost.
    drop(lb);
    wait_until("quorum lost", Duration::from_secs(3), || {
        read(&log) == "down\n"
    })
    .await;
    assert!(dests(&rig.kernel).contains(&"127.0.0.9:80 1".to_string()));

    // B back: 1 < 3, still lost; A back too: 3, gained.
    let _lb = TcpListener::bind(("127.0.0.1", pb)).unwrap();
    wait_until("B up", Duration::from_secs(2), || down_count(&rig) == 1).await;
    let after = rig
        .board
        .health_list()
        .iter()
        .map(|h| h.checks)
        .max()
        .unwrap();
    wait_until("more checks", Duration::from_secs(2), checked(after + 2)).await;
    assert_eq!(read(&log), "down\n");
    assert!(dests(&rig.kernel).contains(&"127.0.0.9:80 1".to_string()));
    let _la = TcpListener::bind(("127.0.0.1", pa)).unwrap();
    wait_until("quorum gained", Duration::from_secs(3), || {
        read(&log) == "down\nup\n"
    })
    .await;
    wait_until("sorry server gone", Duration::from_secs(1), || {
        !dests(&rig.kernel)
            .iter()
            .any(|d| d.starts_with("127.0.0.9"))
    })
    .await;
    assert_eq!(quorum_changes(&rig.events), vec![false, true]);
}

fn gone(pid: i32) -> bool {
    // Gone, or a zombie waiting to be reaped: either way it runs no more.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

/// A quorum command that hangs is killed (with what it started) at its timeout (the virtual
/// server's delay_loop); meanwhile checks keep their schedule and the actor answers at once.
#[tokio::test]
async fn a_hanging_quorum_command_is_killed_at_its_timeout_without_delaying_checks() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let la = TcpListener::bind("127.0.0.1:0").unwrap();
    let lb = TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    let rig = start(config(json!({"id": 1, "address": "10.0.0.1", "port": 80,
        "forwarding": "nat", "delay_loop_ms": 400, "quorum": 3,
        "quorum_down": format!(
            "/bin/sh -c 'echo $$ > $0; sleep 30 & echo $! >> $0; wait' {}",
            pids.display()
        ),
        "real_servers": [tcp_rs(2, pa, 3), tcp_rs(3, pb, 1)]})));
    let b_checks = |rig: &Rig| {
        rig.board
            .health_list()
            .iter()
            .find(|h| h.real_server_id == 3)
            .map_or(0, |h| h.checks)
    };
    wait_until("first checks", Duration::from_secs(2), || {
        rig.board.health_list().iter().all(|h| h.checks >= 1)
    })
    .await;
    drop(la);
    wait_until("the command started", Duration::from_secs(3), || {
        read(&pids).lines().count() == 2
    })
    .await;
    let started = Instant::now();
    let checks_at_start = b_checks(&rig);
    // The actor is not waiting for the command.
    let t = Instant::now();
    rig.handle.kernel_table().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    wait_until("the command's end", Duration::from_secs(3), || {
        !command_events(&rig.events).is_empty()
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(400 + 1000), "{took:?}");
    assert_eq!(
        command_events(&rig.events),
        vec![(
            QuorumCommandKind::QuorumDown,
            QuorumCause::Health,
            false,
            "timed out after 400ms".to_string()
        )]
    );
    let ids: Vec<i32> = read(&pids)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !ids.iter().all(|p| gone(*p)) {
        assert!(Instant::now() < deadline, "{ids:?} still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // B was checked on its schedule (every 400 ms) while the command hung.
    wait_until("B's next checks", Duration::from_millis(800 + 500), || {
        b_checks(&rig) >= checks_at_start + 2
    })
    .await;
    assert!(started.elapsed() < Duration::from_millis(1400 + 400));
    drop(lb);
}

/// `omega`: removing the virtual server, and stopping lbd, run quorum_down when the quorum was
/// up; without omega nothing runs.
#[tokio::test]
async fn omega_runs_quorum_down_on_removal_and_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let vs = |id: i64, addr: &str, omega: bool| {
        json!({"id": id, "address": addr, "port": 80, "forwarding": "nat",
            "delay_loop_ms": 1000, "omega": omega,
            "quorum_down": format!("/bin/sh -c 'echo {id} >> $0' {}", log.display()),
            "real_servers": [tcp_rs(id * 10, port, 1)]})
    };
    let both = |a: bool, b: bool, c: bool| {
        let mut v = Vec::new();
        if a {
            v.push(vs(1, "10.0.0.1", true));
        }
        if b {
            v.push(vs(2, "10.0.0.2", true));
        }
        if c {
            v.push(vs(3, "10.0.0.3", false));
        }
        let mut cfg: Config = serde_json::from_value(json!({ "virtual_servers": v })).unwrap();
        for v in &mut cfg.virtual_servers {
            Arc::make_mut(v).normalize();
        }
        cfg
    };
    let rig = start(both(true, true, true));
    wait_until("programmed", Duration::from_secs(2), || {
        services(&rig.kernel) == 3
    })
    .await;
    // Removal of an omega virtual server with its quorum up: its quorum_down runs.
    rig.tx
        .send(Arc::new(Snapshot {
            revision: 2,
            config: both(false, true, true),
        }))
        .unwrap();
    wait_until(
        "quorum_down of the removed one",
        Duration::from_secs(2),
        || read(&log) == "1\n",
    )
    .await;
    // Removal without omega: nothing.
    rig.tx
        .send(Arc::new(Snapshot {
            revision: 3,
            config: both(false, true, false),
        }))
        .unwrap();
    wait_until("removed", Duration::from_secs(2), || {
        services(&rig.kernel) == 1
    })
    .await;
    // Shutdown: the omega one left runs its quorum_down, and the answer waits for it.
    rig.handle.omega().await.unwrap();
    assert_eq!(read(&log), "1\n2\n");
    // A second shutdown request runs nothing again (the quorum is down now).
    rig.handle.omega().await.unwrap();
    assert_eq!(read(&log), "1\n2\n");
    let causes: Vec<QuorumCause> = command_events(&rig.events)
        .into_iter()
        .map(|c| c.1)
        .collect();
    assert_eq!(causes, vec![QuorumCause::Removed, QuorumCause::Shutdown]);
    drop(l);
}

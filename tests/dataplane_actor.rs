//! The data-plane actor against the in-memory kernel: convergence, idempotent restart, drift
//! repair, foreign services, degraded mode. (The netlink kernel is tested in the guest.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use lbd::control::events::EventBus;
use lbd::control::status::{DataplaneState, DataplaneStatus, StatusBoard};
use lbd::dataplane::actor::{spawn, ActorConfig};
use lbd::ipvs::table::IpvsOp;
use lbd::kernel::memory::MemoryKernel;
use lbd::model::{Config, Snapshot};
use serde_json::json;
use tokio::sync::watch;

fn config(weight: u32) -> Config {
    let mut c: Config = serde_json::from_value(json!({"virtual_servers": [
        {"id": 1, "address": "192.168.10.100", "port": 80, "real_servers": [
            {"id": 2, "address": "192.168.10.103", "port": 80},
            {"id": 3, "address": "192.168.10.104", "port": 80, "weight": weight}]},
        {"id": 4, "fwmark": 7, "family": "ipv4", "scheduler": "wlc", "persistence_timeout_secs": 300,
         "real_servers": [{"id": 5, "address": "10.0.0.5"}]}
    ]}))
    .unwrap();
    for v in &mut c.virtual_servers {
        std::sync::Arc::make_mut(v).normalize();
    }
    c
}

fn snap(revision: u64, config: Config) -> Arc<Snapshot> {
    Arc::new(Snapshot { revision, config })
}

fn fast() -> ActorConfig {
    ActorConfig {
        resync_interval: Duration::from_millis(50),
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..ActorConfig::default()
    }
}

async fn wait_for(
    board: &StatusBoard,
    what: &str,
    f: impl Fn(&DataplaneStatus) -> bool,
) -> DataplaneStatus {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = board.dataplane();
        if f(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn converges_then_restart_sends_nothing_then_edits_are_minimal() {
    let kernel = MemoryKernel::default();
    let (tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (h, task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
    );
    let s = wait_for(&board, "running", |s| s.state == DataplaneState::Running).await;
    assert_eq!(s.applied_revision, Some(1));
    assert_eq!((s.services, s.destinations), (2, 3));
    assert_eq!(
        kernel.with(|k| k.log.len()),
        5,
        "2 services + 3 destinations"
    );
    let table = h.kernel_table().await.unwrap();
    assert_eq!(table.dest_count(), 3);

    // "Restart": a new actor over the same kernel and config sends no operation.
    drop(h);
    drop(tx);
    task.await.unwrap();
    let (tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
    );
    wait_for(&board, "running", |s| s.state == DataplaneState::Running).await;
    assert_eq!(h.resync().await.unwrap(), 0);
    assert_eq!(kernel.with(|k| k.log.len()), 5, "restart sent nothing");

    // One weight change: one operation.
    tx.send(snap(2, config(9))).unwrap();
    wait_for(&board, "revision 2", |s| s.applied_revision == Some(2)).await;
    let log = kernel.with(|k| k.log.clone());
    assert_eq!(log.len(), 6);
    assert!(
        matches!(&log[5], IpvsOp::EditDest(_, d, s) if d.address.to_string() == "192.168.10.104" && s.weight == 9)
    );

    // Deleting a virtual server deletes its service, and only it.
    let mut c = config(9);
    c.virtual_servers.remove(1);
    tx.send(snap(3, c)).unwrap();
    wait_for(&board, "revision 3", |s| s.applied_revision == Some(3)).await;
    let log = kernel.with(|k| k.log.clone());
    assert_eq!(log.len(), 7);
    assert!(matches!(&log[6], IpvsOp::DelService(_)));
}

#[tokio::test]
async fn drift_is_found_and_repaired_and_foreign_services_left_alone() {
    let kernel = MemoryKernel::default();
    // A service someone made by hand before lbd started.
    let foreign = lbd::dataplane::desired::desired_table(
        &serde_json::from_value(
            json!({"virtual_servers": [{"address": "10.9.9.9", "port": 22, "family": "ipv4",
            "protocol": "tcp", "real_servers": [{"address": "10.9.9.10", "port": 22}]}]}),
        )
        .unwrap(),
        &Default::default(),
    );
    kernel.with(|k| k.table = foreign.clone());
    let (_tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (_h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        fast(),
    );
    wait_for(&board, "running", |s| s.state == DataplaneState::Running).await;

    // `ipvsadm -d` behind lbd's back.
    kernel.with(|k| {
        let svc = k
            .table
            .services
            .values_mut()
            .find(|s| s.dests.len() == 2)
            .unwrap();
        let first = *svc.dests.keys().next().unwrap();
        svc.dests.remove(&first);
    });
    let s = wait_for(&board, "drift repair", |s| s.drift_repairs == 1).await;
    assert_eq!(s.state, DataplaneState::Running);
    kernel.with(|k| {
        assert_eq!(k.table.dest_count(), 4, "3 of lbd's + 1 foreign");
        for (key, svc) in &foreign.services {
            assert_eq!(
                k.table.services.get(key),
                Some(svc),
                "the foreign service is untouched"
            );
        }
    });
}

#[tokio::test]
async fn unavailable_kernel_degrades_without_busy_looping_then_recovers() {
    let kernel = MemoryKernel::default();
    kernel.with(|k| k.unavailable = Some("no ip_vs in this kernel".into()));
    let (_tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let events = EventBus::default();
    let (h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        events.clone(),
        fast(),
    );
    let s = wait_for(&board, "degraded", |s| s.state == DataplaneState::Degraded).await;
    assert!(s.reason.as_deref().unwrap().contains("no ip_vs"), "{s:?}");
    assert!(h.resync().await.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let errors = board.dataplane().errors;
    // Back-off 20, 40, 80, 160, 200, 200 ms...: a handful of tries in half a second, not thousands.
    assert!((2..=12).contains(&errors), "{errors} errors in 0.5 s");
    let degraded_events = events
        .recent(0)
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                lbd::control::events::EventKind::DataplaneDegraded { .. }
            )
        })
        .count();
    assert_eq!(degraded_events, 1, "one event per distinct failure");

    kernel.with(|k| k.unavailable = None);
    let s = wait_for(&board, "recovered", |s| s.state == DataplaneState::Running).await;
    assert_eq!(s.applied_revision, Some(1));
    assert_eq!(kernel.with(|k| k.table.dest_count()), 3);
}

#[tokio::test]
async fn a_refused_service_does_not_hold_back_the_others() {
    let kernel = MemoryKernel::default();
    // This "kernel" lacks wlc (a real 6.1 kernel lacks twos, say).
    kernel.with(|k| k.missing_schedulers = vec!["wlc".into()]);
    let (_tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (_h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        fast(),
    );
    let s = wait_for(&board, "degraded", |s| s.state == DataplaneState::Degraded).await;
    assert!(
        s.reason.as_deref().unwrap().contains("refused 2 of 5"),
        "{s:?}"
    );
    // The rr service and its two destinations are in; the wlc one could not be.
    assert_eq!(
        kernel.with(|k| (k.table.services.len(), k.table.dest_count())),
        (1, 2)
    );
    kernel.with(|k| k.missing_schedulers.clear());
    let s = wait_for(&board, "running", |s| s.state == DataplaneState::Running).await;
    assert_eq!((s.services, s.destinations), (2, 3));
}

#[tokio::test]
async fn ownership_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = lbd::control::store::Store::open(&dir.path().join("lbd.db"))
        .await
        .unwrap();
    let kernel = MemoryKernel::default();
    let (tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (h, task) = lbd::dataplane::actor::spawn_with_owned(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
        Box::new(store.clone()),
    );
    wait_for(&board, "running", |s| s.state == DataplaneState::Running).await;
    assert_eq!(
        store.load_owned().await.unwrap(),
        vec!["fwm|ipv4|7", "tcp|192.168.10.100|80"]
    );
    drop((h, tx));
    task.await.unwrap();

    // lbd stopped after the removal of the fwmark service was committed, before it reached the
    // kernel. The next start must still delete it: lbd created it.
    let mut c = config(1);
    c.virtual_servers.remove(1);
    let (_tx, rx) = watch::channel(snap(2, c));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (_h, _task) = lbd::dataplane::actor::spawn_with_owned(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
        Box::new(store.clone()),
    );
    wait_for(&board, "revision 2", |s| s.applied_revision == Some(2)).await;
    assert_eq!(kernel.with(|k| k.table.services.len()), 1);
    assert!(matches!(
        kernel.with(|k| k.log.last().cloned()),
        Some(IpvsOp::DelService(_))
    ));
    assert_eq!(
        store.load_owned().await.unwrap(),
        vec!["tcp|192.168.10.100|80"]
    );
}

/// The actor only knows the `OwnedServices` trait: the in-memory record does what the store
/// does across a restart of the actor.
#[tokio::test]
async fn ownership_survives_a_restart_in_any_record() {
    use lbd::dataplane::owned::MemoryOwned;
    let record = MemoryOwned::default();
    let kernel = MemoryKernel::default();
    let (tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (h, task) = lbd::dataplane::actor::spawn_with_owned(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
        Box::new(record.clone()),
    );
    wait_for(&board, "running", |s| s.state == DataplaneState::Running).await;
    assert_eq!(record.get().len(), 2);
    drop((h, tx));
    task.await.unwrap();

    let mut c = config(1);
    c.virtual_servers.remove(1);
    let (_tx, rx) = watch::channel(snap(2, c));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (_h, _task) = lbd::dataplane::actor::spawn_with_owned(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
        Box::new(record.clone()),
    );
    wait_for(&board, "revision 2", |s| s.applied_revision == Some(2)).await;
    assert_eq!(kernel.with(|k| k.table.services.len()), 1);
    let owned: Vec<String> = record.get().iter().map(|k| k.to_token()).collect();
    assert_eq!(owned, vec!["tcp|192.168.10.100|80"]);
}

/// The incremental path (only virtual servers that are new `Arc`s are recomputed, only their
/// services reconciled) ends where a full pass would: after a random sequence of edits that
/// share untouched virtual servers the way the service does, the kernel equals the desired
/// table of the final config, and a full resync finds nothing to do.
#[tokio::test]
async fn incremental_changes_end_where_a_full_pass_would() {
    use lbd::dataplane::desired::{desired_table, Health};
    let kernel = MemoryKernel::default();
    let mk = |id: i64, port: u16, rs: &[(i64, u8, u32)]| -> Arc<lbd::model::VirtualServer> {
        let mut v: lbd::model::VirtualServer = serde_json::from_value(json!({
            "id": id, "address": "10.1.0.1", "port": port,
            "real_servers": rs.iter().map(|(rid, last, w)| json!({
                "id": rid, "address": format!("10.2.0.{last}"), "weight": w})).collect::<Vec<_>>()
        }))
        .unwrap();
        v.normalize();
        Arc::new(v)
    };
    let mut cfg = Config::default();
    for i in 0..40i64 {
        cfg.virtual_servers.push(mk(
            i + 1,
            1000 + i as u16,
            &[(100 + i, 1, 1), (200 + i, 2, 2)],
        ));
    }
    let (tx, rx) = watch::channel(snap(1, cfg.clone()));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig::default(),
    );
    wait_for(&board, "running", |s| s.applied_revision == Some(1)).await;
    // A small deterministic generator (xorshift), so a failure repeats.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut next_id = 1000i64;
    for rev in 2..200u64 {
        let n = cfg.virtual_servers.len() as u64;
        match next(5) {
            // Change a weight.
            0 | 1 if n > 0 => {
                let v = Arc::make_mut(&mut cfg.virtual_servers[next(n) as usize]);
                if let Some(r) = v.real_servers.first_mut() {
                    r.weight = lbd::model::Weight::new(1 + next(50)).unwrap();
                }
            }
            // Move a virtual server to another port (its service key changes).
            2 if n > 0 => {
                let v = Arc::make_mut(&mut cfg.virtual_servers[next(n) as usize]);
                v.port = Some(2000 + next(3000) as u16);
            }
            // Remove one.
            3 if n > 0 => {
                cfg.virtual_servers.remove(next(n) as usize);
            }
            // Add one on a port no other uses.
            _ => {
                next_id += 3;
                let port = 6000 + next_id as u16;
                cfg.virtual_servers.push(mk(
                    next_id,
                    port,
                    &[(next_id + 1, 3, 1), (next_id + 2, 4, 1)],
                ));
            }
        }
        // Ports must stay unique, as validation would demand.
        let mut seen = std::collections::HashSet::new();
        cfg.virtual_servers.retain(|v| seen.insert(v.port));
        tx.send(snap(rev, cfg.clone())).unwrap();
        if rev % 7 == 0 {
            wait_for(&board, "applied", |s| s.applied_revision == Some(rev)).await;
        }
    }
    wait_for(&board, "applied", |s| s.applied_revision == Some(199)).await;
    let want = desired_table(&cfg, &Health::default());
    let have = kernel.with(|k| k.table.clone());
    assert_eq!(have.services, want.services);
    assert_eq!(
        h.resync().await.unwrap(),
        0,
        "a full pass finds nothing left to do"
    );
}

/// Peer sync's health rule, as the actor carries it out: a peer's verdicts, while the link
/// hands them in, decide which real servers are in; `None` gives the table back to this
/// director's own checks (here: none, so every real server is in).
#[tokio::test]
async fn a_peers_verdicts_take_real_servers_out_and_back() {
    use lbd::dataplane::actor::PeerVerdicts;
    let kernel = MemoryKernel::default();
    let (_tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        fast(),
    );
    wait_for(&board, "running", |s| s.state == DataplaneState::Running).await;
    let dests = |k: &MemoryKernel| k.with(|k| k.table.dest_count());
    assert_eq!(dests(&kernel), 3);
    // The master peer says .104 (id 3) is down and .103 (id 2) is up.
    h.peer_verdicts(PeerVerdicts {
        peer: "127.0.0.1:7946".into(),
        verdicts: Some(vec![(1, 2, false), (1, 3, true)]),
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while dests(&kernel) != 2 {
        assert!(
            Instant::now() < deadline,
            "the peer's down verdict was not applied"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = h.kernel_table().await.unwrap();
    let text = format!("{t:?}");
    assert!(!text.contains("192.168.10.104"), "{text}");
    assert!(text.contains("192.168.10.103"), "{text}");
    // The link is gone (or this director became master): its own verdicts again.
    h.peer_verdicts(PeerVerdicts {
        peer: "127.0.0.1:7946".into(),
        verdicts: None,
    })
    .await
    .unwrap();
    while dests(&kernel) != 3 {
        assert!(Instant::now() < deadline, "own verdicts were not restored");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Peer sync's start-up hold: nothing reaches the kernel until it is released, and then the
/// newest snapshot does, not the one the actor started with.
#[tokio::test]
async fn the_start_up_hold_keeps_a_stale_snapshot_out_of_the_kernel() {
    let kernel = MemoryKernel::default();
    let (tx, rx) = watch::channel(snap(1, config(1)));
    let board = StatusBoard::new(DataplaneStatus::default());
    let (hold_tx, hold_rx) = watch::channel(true);
    let (_h, _task) = spawn(
        Box::new(kernel.clone()),
        rx,
        board.clone(),
        EventBus::default(),
        ActorConfig {
            hold: Some(hold_rx),
            ..fast()
        },
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        kernel.with(|k| k.log.is_empty()),
        "nothing before the release"
    );
    assert_ne!(board.dataplane().state, DataplaneState::Running);
    // The peer's newer configuration arrives, then the hold is released.
    tx.send(snap(7, config(5))).unwrap();
    hold_tx.send(false).unwrap();
    wait_for(&board, "revision 7", |s| s.applied_revision == Some(7)).await;
    let log = kernel.with(|k| k.log.clone());
    // Weight 5 went in directly: the stale weight 1 was never programmed.
    assert!(
        log.iter()
            .all(|op| !format!("{op:?}").contains("weight: 1,")
                || !format!("{op:?}").contains("192.168.10.104")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|op| format!("{op:?}").contains("weight: 5")),
        "{log:?}"
    );
}

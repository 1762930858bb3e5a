//! The gRPC API end to end: a real tonic client against the real server on 127.0.0.1, checked
//! against the HTTP API for parity.

#[path = "support/server.rs"]
mod support;

use lbd::grpc::pb;
use pb::lbd_client::LbdClient;
use support::TestServer;
use tonic::transport::Channel;
use tonic::Code;

async fn client(s: &TestServer) -> LbdClient<Channel> {
    let addr = s.running.as_ref().unwrap().grpc_addr;
    LbdClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

fn tcp_check() -> pb::HealthCheck {
    pb::HealthCheck {
        r#type: pb::CheckKind::Tcp as i32,
        connect_port: Some(80),
        connect_timeout_ms: Some(3000),
        retry: Some(3),
        delay_before_retry_ms: Some(4000),
        ..Default::default()
    }
}

fn seed_vs() -> pb::VirtualServer {
    pb::VirtualServer {
        address: Some("192.168.10.100".into()),
        port: Some(80),
        protocol: pb::Protocol::Tcp as i32,
        scheduler: pb::Scheduler::Rr as i32,
        forwarding: pb::Forwarding::Dr as i32,
        delay_loop_ms: Some(15000),
        real_servers: ["192.168.10.103", "192.168.10.104"]
            .iter()
            .map(|a| pb::RealServer {
                address: a.to_string(),
                port: Some(80),
                weight: Some(1),
                health_check: Some(tcp_check()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn seed_group() -> pb::VrrpGroup {
    pb::VrrpGroup {
        name: "VI_1".into(),
        vrid: 1,
        version: Some(2),
        advert_interval_ms: Some(1000),
        auth_pass: Some("1234567".into()),
        virtual_addresses: vec!["192.168.10.100".into()],
        nodes: vec![
            pb::VrrpNode {
                node: "lk01".into(),
                priority: 100,
                interface: "eth0".into(),
                initial_state: pb::InitialState::Master as i32,
                unicast_src: None,
            },
            pb::VrrpNode {
                node: "lk02".into(),
                priority: 90,
                interface: "eth0".into(),
                initial_state: pb::InitialState::Backup as i32,
                unicast_src: None,
            },
        ],
        ..Default::default()
    }
}

fn write(expected_revision: Option<u64>, dry_run: bool) -> Option<pb::WriteOptions> {
    Some(pb::WriteOptions {
        expected_revision,
        dry_run,
    })
}

#[tokio::test]
async fn seed_round_trip_and_parity_with_http() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;

    let r = c
        .create_virtual_server(pb::CreateVirtualServerRequest {
            virtual_server: Some(seed_vs()),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.result.as_ref().unwrap().revision, 1);
    let vs = r.virtual_server.unwrap();
    assert!(vs.id > 0);
    assert_eq!(vs.real_servers.len(), 2);
    let r = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(seed_group()),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.result.unwrap().revision, 2);
    let gid = r.vrrp_group.unwrap().id;

    // What gRPC wrote is what HTTP reads.
    let http: serde_json::Value = reqwest::get(s.url("/api/v1/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(http["revision"], 2);
    let hv = &http["virtual_servers"][0];
    assert_eq!(hv["address"], "192.168.10.100");
    assert_eq!(hv["scheduler"], "rr");
    assert_eq!(hv["forwarding"], "dr");
    assert_eq!(hv["delay_loop_ms"], 15000);
    assert_eq!(
        hv["real_servers"][1]["health_check"]["delay_before_retry_ms"],
        4000
    );
    // auth_pass is write-only on both APIs.
    assert!(http["vrrp_groups"][0].get("auth_pass").is_none());
    assert_eq!(http["vrrp_groups"][0]["auth_pass_set"], true);
    assert_eq!(http["vrrp_groups"][0]["nodes"][1]["priority"], 90);
    // And the other way: the whole config read over gRPC equals the HTTP document.
    let g = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.revision, 2);
    let from_grpc = lbd::grpc::convert::config_in(g.config).unwrap();
    let mut groups = http["vrrp_groups"].clone();
    groups[0].as_object_mut().unwrap().remove("auth_pass_set");
    let from_http: lbd::model::Config = serde_json::from_value(serde_json::json!({
        "virtual_servers": http["virtual_servers"], "vrrp_groups": groups}))
    .unwrap();
    let strip = |mut c: lbd::model::Config| {
        for v in &mut c.virtual_servers {
            let v = std::sync::Arc::make_mut(v);
            v.id = 0;
            for r in &mut v.real_servers {
                r.id = 0;
            }
        }
        for g in &mut c.vrrp_groups {
            g.id = 0;
        }
        c
    };
    assert_eq!(from_grpc, strip(from_http));

    let list = c
        .list_virtual_servers(pb::ListVirtualServersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((list.revision, list.virtual_servers.len()), (2, 1));
    let rs = c
        .list_real_servers(pb::ListRealServersRequest {
            virtual_server_id: vs.id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rs.real_servers.len(), 2);

    // Replace a real server's weight; then delete it.
    let mut r0 = rs.real_servers[0].clone();
    r0.weight = Some(0);
    let w = c
        .replace_real_server(pb::ReplaceRealServerRequest {
            virtual_server_id: vs.id,
            id: r0.id,
            real_server: Some(r0.clone()),
            options: write(Some(2), false),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.result.as_ref().unwrap().revision, 3);
    assert_eq!(
        w.result.as_ref().unwrap().changes[0].fields[0].field,
        "weight"
    );
    assert_eq!(w.real_server.unwrap().weight, Some(0));
    let http: serde_json::Value = reqwest::get(s.url(&format!(
        "/api/v1/virtual-servers/{}/real-servers/{}",
        vs.id, r0.id
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(http["weight"], 0);
    let d = c
        .delete_real_server(pb::DeleteRealServerRequest {
            virtual_server_id: vs.id,
            id: r0.id,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.changes[0].op, pb::ChangeOp::Remove as i32);
    let e = c
        .get_real_server(pb::GetRealServerRequest {
            virtual_server_id: vs.id,
            id: r0.id,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Replace the group to v3 at 100 ms; then delete it.
    let mut g3 = seed_group();
    g3.version = Some(3);
    g3.advert_interval_ms = Some(100);
    // "" clears the stored password (leaving it unset would keep it).
    g3.auth_pass = Some(String::new());
    let w = c
        .replace_vrrp_group(pb::ReplaceVrrpGroupRequest {
            id: gid,
            vrrp_group: Some(g3),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.vrrp_group.unwrap().advert_interval_ms, Some(100));
    c.delete_vrrp_group(pb::DeleteVrrpGroupRequest {
        id: gid,
        options: None,
    })
    .await
    .unwrap();
    assert_eq!(
        c.get_vrrp_group(pb::GetVrrpGroupRequest { id: gid })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // Replace the virtual server keeping its real servers, then delete it.
    let mut v2 = seed_vs();
    v2.scheduler = pb::Scheduler::Wlc as i32;
    let w = c
        .replace_virtual_server(pb::ReplaceVirtualServerRequest {
            id: vs.id,
            virtual_server: Some(v2),
            replace_real_servers: false,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    let v = w.virtual_server.unwrap();
    assert_eq!(v.scheduler, pb::Scheduler::Wlc as i32);
    assert_eq!(
        v.real_servers.len(),
        1,
        "kept: the one left after the delete above"
    );
    c.delete_virtual_server(pb::DeleteVirtualServerRequest {
        id: vs.id,
        options: None,
    })
    .await
    .unwrap();
    let st = c
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.node, "lk01");
    assert_eq!(st.virtual_servers, 0);
    assert_eq!(st.revision, 8);
    assert_ne!(
        st.dataplane.unwrap().state(),
        pb::DataplaneState::Running,
        "no IPVS on this kernel"
    );
    let ev = c
        .list_events(pb::ListEventsRequest { since: 0 })
        .await
        .unwrap()
        .into_inner();
    let commits: Vec<_> = ev
        .events
        .iter()
        .filter(|e| e.r#type == "config_committed")
        .collect();
    assert_eq!(commits.len(), 8);
    assert!(
        commits[7].json.contains("\"revision\":8"),
        "{}",
        commits[7].json
    );
}

#[tokio::test]
async fn errors_map_to_grpc_codes_with_the_field() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;

    let mut bad = seed_vs();
    bad.real_servers[0].weight = Some(70000);
    let e = c
        .create_virtual_server(pb::CreateVirtualServerRequest {
            virtual_server: Some(bad),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.message(),
        "real_servers[0].weight: weight must be in 0..=65535, got 70000"
    );
    assert_eq!(
        e.metadata().get("lbd-field").unwrap(),
        "real_servers[0].weight"
    );

    let mut bad = seed_vs();
    bad.scheduler = 42;
    let e = c
        .create_virtual_server(pb::CreateVirtualServerRequest {
            virtual_server: Some(bad),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("scheduler:"), "{}", e.message());

    let mut bad = seed_group();
    bad.version = Some(3);
    let e = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(bad),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("auth_pass: VRRPv3 has no authentication"),
        "{}",
        e.message()
    );

    let e = c
        .create_virtual_server(pb::CreateVirtualServerRequest {
            virtual_server: None,
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    c.create_virtual_server(pb::CreateVirtualServerRequest {
        virtual_server: Some(seed_vs()),
        options: None,
    })
    .await
    .unwrap();
    let e = c
        .create_virtual_server(pb::CreateVirtualServerRequest {
            virtual_server: Some(seed_vs()),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(
        e.message().contains("tcp 192.168.10.100:80 already exists"),
        "{}",
        e.message()
    );

    let e = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(seed_group()),
            options: write(Some(0), false),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("revision 1, not 0"), "{}", e.message());

    let e = c
        .get_virtual_server(pb::GetVirtualServerRequest { id: 999 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .delete_vrrp_group(pb::DeleteVrrpGroupRequest {
            id: 999,
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Nothing was half-written.
    assert_eq!(
        c.get_config(pb::GetConfigRequest {})
            .await
            .unwrap()
            .into_inner()
            .revision,
        1
    );
}

#[tokio::test]
async fn dry_run_returns_changes_and_commits_nothing() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let r = c
        .create_virtual_server(pb::CreateVirtualServerRequest {
            virtual_server: Some(seed_vs()),
            options: write(None, true),
        })
        .await
        .unwrap()
        .into_inner();
    let res = r.result.unwrap();
    assert!(res.dry_run);
    assert_eq!(res.revision, 0);
    assert_eq!(res.changes[0].op, pb::ChangeOp::Add as i32);
    assert_eq!(res.changes[0].key, "tcp 192.168.10.100:80");
    assert!(r.virtual_server.is_none());
    assert!(c
        .list_virtual_servers(pb::ListVirtualServersRequest {})
        .await
        .unwrap()
        .into_inner()
        .virtual_servers
        .is_empty());

    let cfg = pb::Config {
        virtual_servers: vec![seed_vs()],
        vrrp_groups: vec![seed_group()],
        ipvs_timeouts: None,
        connection_sync: None,
        vrrp_settings: None,
    };
    let dry = c
        .replace_config(pb::ReplaceConfigRequest {
            config: Some(cfg.clone()),
            options: write(None, true),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.changes.len(), 2);
    assert_eq!(
        c.get_config(pb::GetConfigRequest {})
            .await
            .unwrap()
            .into_inner()
            .revision,
        0
    );
    let real = c
        .replace_config(pb::ReplaceConfigRequest {
            config: Some(cfg.clone()),
            options: write(Some(0), false),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(real.revision, 1);
    assert_eq!(real.changes, dry.changes);
    let mut edited = cfg;
    edited.virtual_servers[0].real_servers[1].weight = Some(5);
    let dry = c
        .replace_config(pb::ReplaceConfigRequest {
            config: Some(edited),
            options: write(None, true),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dry.changes.len(), 1);
    let f = &dry.changes[0].fields[0];
    assert_eq!(
        (f.field.as_str(), f.from_json.as_str(), f.to_json.as_str()),
        ("weight", "1", "5")
    );
    assert_eq!(
        c.get_config(pb::GetConfigRequest {})
            .await
            .unwrap()
            .into_inner()
            .revision,
        1
    );
}

#[tokio::test]
async fn ipvs_reads_say_unavailable_without_ipvs() {
    if std::env::var_os("LBD_IN_GUEST").is_some() {
        return; // the guest has IPVS; tests/guest_lbd.rs reads it there
    }
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let e = c.get_ipvs(pb::GetIpvsRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("IPVS"), "{}", e.message());
    let e = c
        .list_connections(pb::ListConnectionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
}

/// The status is typed end to end: the data plane's state and a real server's health (from
/// its checker's verdict, over the actor's channel) arrive as the proto enums.
#[tokio::test]
async fn status_carries_states_as_enums() {
    let dir = tempfile::tempdir().unwrap();
    let running = lbd::daemon::start_with_kernel(
        support::config(&dir.path().join("lbd.db")),
        Box::new(lbd::kernel::memory::MemoryKernel::default()),
    )
    .await
    .unwrap();
    let mut c = LbdClient::connect(format!("http://{}", running.grpc_addr))
        .await
        .unwrap();
    // A real server nothing listens on: its first check fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let vs = pb::VirtualServer {
        address: Some("10.0.0.1".into()),
        port: Some(80),
        protocol: pb::Protocol::Tcp as i32,
        delay_loop_ms: Some(100),
        real_servers: vec![pb::RealServer {
            address: "127.0.0.1".into(),
            port: Some(80),
            health_check: Some(pb::HealthCheck {
                r#type: pb::CheckKind::Tcp as i32,
                connect_port: Some(u32::from(port)),
                connect_timeout_ms: Some(100),
                retry: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    c.create_virtual_server(pb::CreateVirtualServerRequest {
        virtual_server: Some(vs),
        options: None,
    })
    .await
    .unwrap();
    let t = std::time::Instant::now();
    let st = loop {
        let st = c
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if st
            .health
            .first()
            .is_some_and(|h| h.state() == pb::HealthState::Down)
        {
            break st;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "no down verdict: {st:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(st.dataplane.unwrap().state(), pb::DataplaneState::Running);
    assert_eq!(st.health[0].transitions, 1);
    let v = st.vrrp.unwrap();
    assert_eq!(v.scheduling(), pb::VrrpScheduling::NotRunning);
    // The same words over HTTP as before the enums.
    let http: serde_json::Value =
        reqwest::get(format!("http://{}/api/v1/status", running.http_addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(http["dataplane"]["state"], "running");
    assert_eq!(http["health"][0]["state"], "down");
    assert_eq!(http["vrrp"]["scheduling"], "not_running");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let s = TestServer::start().await;
    let addr = s.running.as_ref().unwrap().grpc_addr;
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = HealthClient::new(channel.clone());
    for service in ["", "lbd.v1.Lbd"] {
        let r = h
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut r = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = r
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let resp = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected {resp:?}")
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"lbd.v1.Lbd"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

/// Tracking and notify over gRPC: what gRPC writes HTTP reads, and back; a bad weight is
/// InvalidArgument naming the field.
#[tokio::test]
async fn tracking_and_notify_round_trip_and_errors_name_the_field() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let mut g = seed_group();
    g.track_interfaces_weighted = vec![pb::TrackedInterface {
        interface: "eth1".into(),
        weight: -20,
    }];
    g.track_virtual_servers = vec![pb::TrackedVirtualServer {
        virtual_server: "tcp 192.168.10.100:80".into(),
        weight: -50,
    }];
    g.track_scripts = vec![pb::TrackScript {
        name: "chk".into(),
        command: "/usr/local/bin/check".into(),
        interval_ms: Some(2000),
        timeout_ms: None,
        weight: 10,
        rise: Some(2),
        fall: None,
    }];
    g.notify = Some(pb::Notify {
        master: Some("/usr/local/bin/n master".into()),
        any: Some("/usr/local/bin/n".into()),
        ..Default::default()
    });
    let r = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(g.clone()),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    let out = r.vrrp_group.unwrap();
    assert_eq!(out.track_interfaces_weighted, g.track_interfaces_weighted);
    assert_eq!(out.track_virtual_servers, g.track_virtual_servers);
    assert_eq!(out.track_scripts[0].fall, Some(1), "the default");
    assert_eq!(out.track_scripts[0].timeout_ms, None);
    let n = out.notify.unwrap();
    assert_eq!(n.master.as_deref(), Some("/usr/local/bin/n master"));
    assert_eq!(n.timeout_ms, Some(10_000));
    let http: serde_json::Value = reqwest::get(s.url("/api/v1/vrrp-groups"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        http[0]["track_scripts"][0],
        serde_json::json!({"name": "chk", "command": "/usr/local/bin/check", "interval_ms": 2000,
            "weight": 10, "rise": 2, "fall": 1})
    );
    assert_eq!(http[0]["notify"]["any"], "/usr/local/bin/n");

    let mut bad = seed_group();
    bad.name = "VI_2".into();
    bad.vrid = 2;
    bad.virtual_addresses = vec!["192.168.10.200".into()];
    bad.track_scripts = vec![pb::TrackScript {
        name: "chk".into(),
        command: "/bin/true".into(),
        weight: 300,
        ..Default::default()
    }];
    let e = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(bad),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.metadata().get("lbd-field").unwrap(),
        "track_scripts[0].weight"
    );
}

/// Get/SetVrrpSettings: a sync group and strict mode round-trip; errors name the field
/// (`vrrp_settings.sync_groups[0].groups[1]`, or the group's with strict); GARP spacing of a
/// group round-trips.
#[tokio::test]
async fn vrrp_settings_over_grpc() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let mut g = seed_group();
    g.garp = Some(pb::GarpSettings {
        interval_ms: Some(25),
        na_interval_ms: Some(0),
        ..Default::default()
    });
    c.create_vrrp_group(pb::CreateVrrpGroupRequest {
        vrrp_group: Some(g),
        options: None,
    })
    .await
    .unwrap();
    let got = c
        .list_vrrp_groups(pb::ListVrrpGroupsRequest {})
        .await
        .unwrap()
        .into_inner();
    let garp = got.vrrp_groups[0].garp.unwrap();
    assert_eq!(garp.interval_ms, Some(25));

    let sg = |groups: &[&str]| pb::VrrpSettings {
        strict: false,
        sync_groups: vec![pb::VrrpSyncGroup {
            name: "VG_1".into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            notify: None,
        }],
    };
    let e = c
        .set_vrrp_settings(pb::SetVrrpSettingsRequest {
            vrrp_settings: Some(sg(&["VI_1", "VI_9"])),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.metadata().get("lbd-field").unwrap(),
        "vrrp_settings.sync_groups[0].groups[1]"
    );
    c.set_vrrp_settings(pb::SetVrrpSettingsRequest {
        vrrp_settings: Some(sg(&["VI_1"])),
        options: None,
    })
    .await
    .unwrap();
    let v = c
        .get_vrrp_settings(pb::GetVrrpSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.vrrp_settings, Some(sg(&["VI_1"])));
    // The seed group has a password: strict mode is refused, naming it.
    let mut strict = sg(&["VI_1"]);
    strict.strict = true;
    let e = c
        .set_vrrp_settings(pb::SetVrrpSettingsRequest {
            vrrp_settings: Some(strict),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.metadata().get("lbd-field").unwrap(),
        "vrrp_groups[0].auth_pass"
    );
}

/// keepalived's `use_vmac` over gRPC: written, read back, and seen the same over HTTP; a bad
/// name is InvalidArgument naming the field.
#[tokio::test]
async fn vrrp_virtual_mac_fields_over_grpc() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let mut g = seed_group();
    g.use_vmac = Some(true);
    g.vmac_name = Some("vmac1".into());
    let r = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(g.clone()),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    let out = r.vrrp_group.unwrap();
    assert_eq!(
        (out.use_vmac, out.vmac_name.as_deref(), out.vmac_xmit_base),
        (Some(true), Some("vmac1"), Some(false))
    );
    let http: serde_json::Value = reqwest::get(s.url("/api/v1/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(http["vrrp_groups"][0]["use_vmac"], true);
    assert_eq!(http["vrrp_groups"][0]["vmac_name"], "vmac1");
    g.name = "VI_2".into();
    g.vrid = 2;
    g.virtual_addresses = vec!["192.168.10.200".into()];
    g.vmac_name = Some("has space".into());
    let e = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(g),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("vmac_name:"), "{}", e.message());
}

/// A virtual address with keepalived's options, routes and rules as keepalived's lines over
/// gRPC: read back the same, the REST API's objects; a bad one names its field.
#[tokio::test]
async fn vip_options_routes_and_rules_as_keepalived_lines() {
    let s = TestServer::start().await;
    let mut c = client(&s).await;
    let mut g = seed_group();
    g.virtual_addresses = vec![
        "192.168.10.100/32".into(),
        "192.168.10.101/24 dev eth1 scope link label eth1:vip".into(),
        "192.168.10.102/32 no_track".into(),
    ];
    g.virtual_routes = vec![
        "10.1.0.0/16 via 192.168.10.1 dev eth1 table 100".into(),
        "10.2.0.0/16 via 192.168.10.1 dev eth1 table 100 no_track".into(),
    ];
    g.virtual_rules = vec!["from 192.168.10.0/24 priority 100 table 100 no_track".into()];
    let out = c
        .create_vrrp_group(pb::CreateVrrpGroupRequest {
            vrrp_group: Some(g.clone()),
            options: None,
        })
        .await
        .unwrap()
        .into_inner()
        .vrrp_group
        .unwrap();
    assert_eq!(out.virtual_addresses, g.virtual_addresses);
    assert_eq!(out.virtual_routes, g.virtual_routes);
    assert_eq!(out.virtual_rules, g.virtual_rules);
    let http: serde_json::Value = reqwest::get(s.url("/api/v1/vrrp-groups"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        http[0]["virtual_addresses"][1],
        serde_json::json!({"address": "192.168.10.101/24", "dev": "eth1", "scope": "link", "label": "eth1:vip"})
    );
    assert_eq!(http[0]["virtual_routes"][0]["table"], 100);
    // keepalived's no_track, stored and shown.
    assert_eq!(
        http[0]["virtual_addresses"][2],
        serde_json::json!({"address": "192.168.10.102/32", "no_track": true})
    );
    assert!(http[0]["virtual_routes"][0].get("no_track").is_none());
    assert_eq!(http[0]["virtual_routes"][1]["no_track"], true);
    assert_eq!(http[0]["virtual_rules"][0]["no_track"], true);

    for (field, vips, routes) in [
        (
            "virtual_addresses[0]",
            vec!["192.168.10.200 dev eth0 mtu 9000".to_string()],
            vec![],
        ),
        (
            "virtual_routes[0]",
            vec!["192.168.10.200".to_string()],
            vec!["10.1.0.0/16 via 192.168.10.1 onlink".to_string()],
        ),
        (
            "virtual_addresses[0].label",
            vec!["192.168.10.200 label eth9:x".to_string()],
            vec![],
        ),
    ] {
        let mut bad = seed_group();
        bad.name = "VI_2".into();
        bad.vrid = 2;
        bad.virtual_addresses = vips;
        bad.virtual_routes = routes;
        let e = c
            .create_vrrp_group(pb::CreateVrrpGroupRequest {
                vrrp_group: Some(bad),
                options: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert_eq!(e.metadata().get("lbd-field").unwrap(), field, "{e:?}");
    }
}

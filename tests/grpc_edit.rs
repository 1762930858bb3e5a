//! The gRPC edit path: Update* with a google.protobuf.FieldMask on every resource, Get ->
//! Replace with no changes, and the write-only auth_pass.

#[path = "support/server.rs"]
mod support;

use lbd::grpc::pb;
use pb::lbd_client::LbdClient;
use prost_types::FieldMask;
use support::{seed_virtual_server, seed_vrrp_group, TestServer};
use tonic::transport::Channel;
use tonic::Code;

async fn client(s: &TestServer) -> LbdClient<Channel> {
    let addr = s.running.as_ref().unwrap().grpc_addr;
    LbdClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

/// Seeds over HTTP (the same service), returns (vs id, first rs id, group id).
async fn seed(s: &TestServer) -> (i64, i64, i64) {
    let c = reqwest::Client::new();
    let vs: serde_json::Value = c
        .post(s.url("/api/v1/virtual-servers"))
        .body(seed_virtual_server().to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let g: serde_json::Value = c
        .post(s.url("/api/v1/vrrp-groups"))
        .body(seed_vrrp_group().to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        vs["id"].as_i64().unwrap(),
        vs["real_servers"][0]["id"].as_i64().unwrap(),
        g["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn update_real_server_changes_only_the_masked_fields() {
    let s = TestServer::start().await;
    let (vs, rs, _) = seed(&s).await;
    let mut c = client(&s).await;
    let before = c
        .get_real_server(pb::GetRealServerRequest {
            virtual_server_id: vs,
            id: rs,
        })
        .await
        .unwrap()
        .into_inner()
        .real_server
        .unwrap();

    // Only the weight is set in the message: what the mask does not name is not touched, even
    // though the message leaves it unset (the health check stays).
    let w = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: Some(pb::RealServer {
                weight: Some(0),
                ..Default::default()
            }),
            update_mask: mask(&["weight"]),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    let r = w.result.unwrap();
    assert_eq!(r.revision, 3);
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].fields.len(), 1);
    assert_eq!(r.changes[0].fields[0].field, "weight");
    let after = w.real_server.unwrap();
    let mut want = before.clone();
    want.weight = Some(0);
    assert_eq!(after, want);
    assert!(after.health_check.is_some());

    // A nested path reaches into the health check.
    let w = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: Some(pb::RealServer {
                health_check: Some(pb::HealthCheck {
                    retry: Some(7),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["health_check.retry"]),
            options: Some(pb::WriteOptions {
                expected_revision: Some(3),
                dry_run: true,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let r = w.result.unwrap();
    assert!(r.dry_run && w.real_server.is_none());
    assert_eq!(r.changes[0].fields[0].field, "health_check.retry");
    assert_eq!(
        (
            r.changes[0].fields[0].from_json.as_str(),
            r.changes[0].fields[0].to_json.as_str()
        ),
        ("3", "7")
    );

    // A named field the message leaves unset is reset: the check goes.
    let w = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: None,
            update_mask: mask(&["health_check"]),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(w.real_server.unwrap().health_check.is_none());

    // Unknown paths, empty masks, bad values, stale revisions.
    let e = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: None,
            update_mask: mask(&["weight", "wieght"]),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with(
            "update_mask.paths[1]: unknown field path \"wieght\" of lbd.v1.RealServer"
        ),
        "{}",
        e.message()
    );
    assert_eq!(
        e.metadata().get("lbd-field").unwrap(),
        "update_mask.paths[1]"
    );
    let e = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: None,
            update_mask: None,
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("update_mask: "), "{}", e.message());
    let e = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: Some(pb::RealServer {
                weight: Some(70000),
                ..Default::default()
            }),
            update_mask: mask(&["weight"]),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "weight: weight must be in 0..=65535, got 70000"
        )
    );
    let e = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: Some(pb::RealServer {
                weight: Some(5),
                ..Default::default()
            }),
            update_mask: mask(&["weight"]),
            options: Some(pb::WriteOptions {
                expected_revision: Some(1),
                dry_run: false,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = c
        .update_real_server(pb::UpdateRealServerRequest {
            virtual_server_id: vs,
            id: 999,
            real_server: None,
            update_mask: mask(&["weight"]),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn update_virtual_server_group_and_node() {
    let s = TestServer::start().await;
    let (vs, _, gid) = seed(&s).await;
    let mut c = client(&s).await;

    let before = c
        .get_virtual_server(pb::GetVirtualServerRequest { id: vs })
        .await
        .unwrap()
        .into_inner()
        .virtual_server
        .unwrap();
    let w = c
        .update_virtual_server(pb::UpdateVirtualServerRequest {
            id: vs,
            virtual_server: Some(pb::VirtualServer {
                scheduler: pb::Scheduler::Wlc as i32,
                ..Default::default()
            }),
            update_mask: mask(&["scheduler"]),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut want = before.clone();
    want.scheduler = pb::Scheduler::Wlc as i32;
    assert_eq!(
        w.virtual_server.unwrap(),
        want,
        "real servers and all else kept"
    );
    // real_servers in the mask replaces the list (same address and port keep their ids).
    let w = c
        .update_virtual_server(pb::UpdateVirtualServerRequest {
            id: vs,
            virtual_server: Some(pb::VirtualServer {
                real_servers: vec![before.real_servers[1].clone()],
                ..Default::default()
            }),
            update_mask: mask(&["real_servers"]),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        w.virtual_server.unwrap().real_servers,
        vec![before.real_servers[1].clone()]
    );
    let e = c
        .update_virtual_server(pb::UpdateVirtualServerRequest {
            id: vs,
            virtual_server: None,
            update_mask: mask(&["real_servers.weight"]),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("not a message field"),
        "{}",
        e.message()
    );

    // The group: a field, then the password (named and unset: cleared).
    let w = c
        .update_vrrp_group(pb::UpdateVrrpGroupRequest {
            id: gid,
            vrrp_group: Some(pb::VrrpGroup {
                preempt: Some(false),
                ..Default::default()
            }),
            update_mask: mask(&["preempt"]),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    let g = w.vrrp_group.unwrap();
    assert_eq!(g.preempt, Some(false));
    assert_eq!((g.name.as_str(), g.nodes.len()), ("VI_1", 2));
    assert!(
        g.auth_pass.is_none() && g.auth_pass_set,
        "kept, and not shown"
    );
    let w = c
        .update_vrrp_group(pb::UpdateVrrpGroupRequest {
            id: gid,
            vrrp_group: None,
            update_mask: mask(&["auth_pass"]),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!w.vrrp_group.unwrap().auth_pass_set);

    // One director's entry.
    let w = c
        .update_vrrp_node(pb::UpdateVrrpNodeRequest {
            vrrp_group_id: gid,
            node: "lk02".into(),
            vrrp_node: Some(pb::VrrpNode {
                priority: 50,
                ..Default::default()
            }),
            update_mask: mask(&["priority"]),
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    let n = w.vrrp_node.unwrap();
    assert_eq!(
        (n.node.as_str(), n.priority, n.interface.as_str()),
        ("lk02", 50, "eth0")
    );
    let g = c
        .get_vrrp_group(pb::GetVrrpGroupRequest { id: gid })
        .await
        .unwrap()
        .into_inner()
        .vrrp_group
        .unwrap();
    assert_eq!(g.nodes[0].priority, 100, "lk01 untouched");
    let e = c
        .update_vrrp_node(pb::UpdateVrrpNodeRequest {
            vrrp_group_id: gid,
            node: "lk09".into(),
            vrrp_node: None,
            update_mask: mask(&["priority"]),
            options: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .update_vrrp_node(pb::UpdateVrrpNodeRequest {
            vrrp_group_id: gid,
            node: "lk02".into(),
            vrrp_node: None,
            update_mask: mask(&["prio"]),
            options: None,
        })
        .await
        .unwrap_err();
    assert!(
        e.message()
            .contains("unknown field path \"prio\" of lbd.v1.VrrpNode"),
        "{}",
        e.message()
    );
}

/// Get -> Replace of every resource, and GetConfig -> ReplaceConfig, change nothing (the
/// password included: Get does not show it, Replace without it keeps it).
#[tokio::test]
async fn get_then_replace_changes_nothing() {
    let s = TestServer::start().await;
    let (vs, rs, gid) = seed(&s).await;
    let mut c = client(&s).await;

    let cfg = c
        .get_config(pb::GetConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let w = c
        .replace_config(pb::ReplaceConfigRequest {
            config: cfg.config,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((w.revision, w.changes.len()), (2, 0));

    let v = c
        .get_virtual_server(pb::GetVirtualServerRequest { id: vs })
        .await
        .unwrap()
        .into_inner()
        .virtual_server;
    let w = c
        .replace_virtual_server(pb::ReplaceVirtualServerRequest {
            id: vs,
            virtual_server: v,
            replace_real_servers: true,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.result.unwrap().changes.len(), 0);
    let r = c
        .get_real_server(pb::GetRealServerRequest {
            virtual_server_id: vs,
            id: rs,
        })
        .await
        .unwrap()
        .into_inner()
        .real_server;
    let w = c
        .replace_real_server(pb::ReplaceRealServerRequest {
            virtual_server_id: vs,
            id: rs,
            real_server: r,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.result.unwrap().changes.len(), 0);
    let g = c
        .get_vrrp_group(pb::GetVrrpGroupRequest { id: gid })
        .await
        .unwrap()
        .into_inner()
        .vrrp_group;
    assert!(g.as_ref().unwrap().auth_pass.is_none());
    let w = c
        .replace_vrrp_group(pb::ReplaceVrrpGroupRequest {
            id: gid,
            vrrp_group: g,
            options: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.result.unwrap().changes.len(), 0);
    let export = reqwest::get(s.url("/api/v1/export/keepalived?node_name=lk01"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(export.contains("auth_pass 1234567"), "{export}");
}

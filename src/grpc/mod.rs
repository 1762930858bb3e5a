//! The gRPC API (tonic): the same resources and operations as the HTTP API, over the same
//! service layer (`proto/lbd/v1/lbd.proto` is the contract), plus gRPC health and server
//! reflection on the same port.

pub mod access;
pub mod convert;
pub mod events;
pub mod mask;
pub mod metrics;
pub mod server;

use std::future::Future;

use tokio::net::TcpListener;

use crate::control::service::Service;
use crate::dataplane::actor::DataplaneHandle;

/// The generated protobuf types and service stubs.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("lbd.v1");

    /// The descriptor set server reflection serves.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("lbd_descriptor");
}

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the compiled-in descriptor set: {0}")]
    Descriptor(#[from] prost::DecodeError),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// What stands in front of the gRPC service: tokens, TLS, and the call counters `/metrics`
/// shows.
pub struct Front {
    pub auth: crate::control::auth::Auth,
    pub tls: Option<crate::control::tls::TlsRx>,
    pub calls: metrics::GrpcMetrics,
}

/// Serves `lbd.v1.Lbd`, `grpc.health.v1.Health` and reflection on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    dataplane: DataplaneHandle,
    limits: crate::daemon::Limits,
    front: Front,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GrpcError> {
    let Front { auth, tls, calls } = front;
    let served = metrics::methods_of(&[
        pb::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ])?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::lbd_server::LbdServer<server::LbdApi>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let api = pb::lbd_server::LbdServer::new(server::LbdApi {
        service,
        auth: auth.clone(),
        dataplane,
        masks: mask::Descriptors::new()?,
    })
    .max_decoding_message_size(limits.grpc_message_bytes());
    tonic::transport::Server::builder()
        // A call that has not answered in 30 s is cancelled; at most 64 calls run on one
        // connection and 256 over all of them, the rest wait.
        .timeout(std::time::Duration::from_secs(30))
        .concurrency_limit_per_connection(64)
        .max_concurrent_streams(64)
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.http.max_requests.max(1),
        ))
        // Pings make every live client send something, which the idle timeout of
        // `listener::governed_incoming` relies on; a client that does not answer is dropped.
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        // Calls by method and code, and their latency (outside the tokens check: a refused
        // call is counted with its code).
        .layer(metrics::MetricsLayer::new(calls, served))
        // Tokens and roles (inside the limits: a refused call still counts against them).
        .layer(access::AccessLayer { auth })
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(api)
        .serve_with_incoming_shutdown(
            crate::control::listener::governed_incoming(listener, limits.connections, tls),
            shutdown,
        )
        .await?;
    Ok(())
}

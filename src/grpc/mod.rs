//! The gRPC API (tonic): the same resources and operations as the HTTP API, over the same
//! service layer. (Being written on the `grpc` branch; this placeholder serves nothing.)

use std::future::Future;

use tokio::net::TcpListener;

use crate::service::Service;

pub async fn serve(
    listener: TcpListener,
    _service: Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), std::io::Error> {
    let _ = listener;
    shutdown.await;
    Ok(())
}

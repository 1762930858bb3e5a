//! keepalived's TCP_CHECK: a TCP connect within the timeout is healthy.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::CheckError;

pub async fn check(addr: SocketAddr, timeout: Duration) -> Result<(), CheckError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Err(_) => Err(CheckError::Timeout(timeout)),
        Ok(Err(e)) => Err(CheckError::Connect(e.to_string())),
        // Dropping the stream closes it; a half-open connection is no concern of the check.
        Ok(Ok(_stream)) => Ok(()),
    }
}

//! Who may make a gRPC call (see [`crate::control::auth`]): the `authorization: Bearer TOKEN` metadata
//! against the role the method needs. A tower layer rather than a tonic interceptor, because an
//! interceptor does not see which method is called.
//!
//! | method | role |
//! |---|---|
//! | `grpc.health.v1.Health/*` | none |
//! | `List*`, `Get*`, `Watch*`, server reflection | `read` |
//! | `ZeroIpvs`; `UpdateRealServer` whose mask names only `weight` | `operate` |
//! | every other call | `admin` |

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http;
use tonic::Status;

use crate::control::auth::{bearer, Auth, Denied, Role};

/// The role a method (`/package.Service/Method`) needs, `None` for what is public.
pub fn needs(path: &str) -> Option<Role> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    if service == "grpc.health.v1.Health" {
        return None;
    }
    if service.starts_with("grpc.reflection.") {
        return Some(Role::Read);
    }
    if service != "lbd.v1.Lbd" {
        return Some(Role::Admin);
    }
    if ["List", "Get", "Watch"]
        .iter()
        .any(|p| method.starts_with(p))
    {
        return Some(Role::Read);
    }
    // `UpdateRealServer` holds `operate` to the weight (see `LbdApi::update_real_server`).
    if method == "ZeroIpvs" || method == "UpdateRealServer" {
        return Some(Role::Operate);
    }
    Some(Role::Admin)
}

pub fn status_of(d: &Denied) -> Status {
    match d {
        Denied::Unauthenticated(_) => Status::unauthenticated(d.to_string()),
        Denied::Forbidden { .. } => Status::permission_denied(d.to_string()),
    }
}

#[derive(Debug, Clone)]
pub struct AccessLayer {
    pub auth: Auth,
}

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Access<S>;

    fn layer(&self, inner: S) -> Access<S> {
        Access {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Access<S> {
    inner: S,
    auth: Auth,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Access<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if let Some(need) = needs(req.uri().path()) {
            let token = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer);
            match self.auth.check(token, need) {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                }
                Err(d) => {
                    let resp = status_of(&d).into_http();
                    return Box::pin(async move { Ok(resp) });
                }
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_roles() {
        for (p, want) in [
            ("/grpc.health.v1.Health/Check", None),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Some(Role::Read),
            ),
            ("/lbd.v1.Lbd/GetStatus", Some(Role::Read)),
            ("/lbd.v1.Lbd/ListVirtualServers", Some(Role::Read)),
            ("/lbd.v1.Lbd/WatchEvents", Some(Role::Read)),
            ("/lbd.v1.Lbd/ZeroIpvs", Some(Role::Operate)),
            ("/lbd.v1.Lbd/UpdateRealServer", Some(Role::Operate)),
            ("/lbd.v1.Lbd/ReplaceRealServer", Some(Role::Admin)),
            ("/lbd.v1.Lbd/ImportKeepalived", Some(Role::Admin)),
            ("/lbd.v1.Lbd/ReplaceConfig", Some(Role::Admin)),
            ("/other.Svc/Get", Some(Role::Admin)),
        ] {
            assert_eq!(needs(p), want, "{p}");
        }
    }
}

//! What `/metrics` shows of the gRPC front end: calls by method and status code, and their
//! latency, counted as they pass by a tower layer on the tonic server (the way
//! [`crate::api::metrics::count`] counts the HTTP requests).
//!
//! A call's code is the `grpc-status` of its response headers (a trailers-only answer, which is
//! how errors leave) or of its trailers; the call ends, and its latency is taken, when that
//! status is known. A streaming call lasts as long as its stream; a call whose response is
//! dropped before its status (the client went away) counts as `CANCELLED`. The `method` label
//! is one of the methods lbd serves (`lbd.v1.Lbd/GetStatus`), or `other` for whatever else a
//! client asks for: the label's values stay few whatever clients send.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::http;
use hyper::body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prost::Message;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: Arc<str>,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: Arc<str>,
}

/// Calls by method and code, and their latency by method (shared handles over atomics).
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    pub requests: Family<CallLabels, Counter>,
    pub duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s, as the HTTP requests'.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for GrpcMetrics {
    fn default() -> Self {
        GrpcMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl GrpcMetrics {
    fn record(&self, method: Arc<str>, code: &'static str, started: Instant) {
        self.duration
            .get_or_create(&MethodLabels {
                method: method.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&CallLabels { method, code })
            .inc();
    }
}

/// The gRPC status code's canonical name (grpc's `doc/statuscodes.md`).
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

fn status_in(headers: &http::HeaderMap) -> Option<&'static str> {
    let v = headers.get("grpc-status")?;
    Some(
        v.to_str()
            .ok()
            .and_then(|s| s.parse::<i32>().ok())
            .map_or("UNKNOWN", code_name),
    )
}

/// The methods (`package.Service/Method`) of the file descriptor sets `sets`.
pub fn methods_of(sets: &[&[u8]]) -> Result<HashSet<String>, prost::DecodeError> {
    let mut out = HashSet::new();
    for set in sets {
        let fds = prost_types::FileDescriptorSet::decode(*set)?;
        for file in fds.file {
            let package = file.package.unwrap_or_default();
            for svc in file.service {
                let svc_name = svc.name.unwrap_or_default();
                for m in svc.method {
                    let full = if package.is_empty() {
                        format!("{svc_name}/{}", m.name.unwrap_or_default())
                    } else {
                        format!("{package}.{svc_name}/{}", m.name.unwrap_or_default())
                    };
                    out.insert(full);
                }
            }
        }
    }
    Ok(out)
}

/// The layer: counts every call into `metrics`, naming only the methods in `known`.
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: GrpcMetrics,
    known: Arc<HashSet<Arc<str>>>,
}

impl MetricsLayer {
    pub fn new(metrics: GrpcMetrics, known: HashSet<String>) -> Self {
        MetricsLayer {
            metrics,
            known: Arc::new(known.into_iter().map(Arc::from).collect()),
        }
    }

    fn method(&self, path: &str) -> Arc<str> {
        self.known
            .get(path.trim_start_matches('/'))
            .cloned()
            .unwrap_or_else(|| Arc::from("other"))
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = Metered<S>;

    fn layer(&self, inner: S) -> Metered<S> {
        Metered {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Metered<S> {
    inner: S,
    layer: MetricsLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for Metered<S>
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

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = self.layer.method(req.uri().path());
        let metrics = self.layer.metrics.clone();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = match fut.await {
                Ok(r) => r,
                Err(e) => {
                    // The server answers the transport's error itself; gRPC calls it UNKNOWN.
                    metrics.record(method, "UNKNOWN", started);
                    return Err(e);
                }
            };
            // Trailers-only (every error) or an empty body: the call is over.
            if let Some(code) = status_in(resp.headers()) {
                metrics.record(method, code, started);
                return Ok(resp);
            }
            if resp.body().is_end_stream() {
                metrics.record(method, "UNKNOWN", started);
                return Ok(resp);
            }
            Ok(resp.map(|body| {
                tonic::body::Body::new(MeteredBody {
                    inner: body,
                    pending: Some(Pending {
                        metrics,
                        method,
                        started,
                    }),
                })
            }))
        })
    }
}

struct Pending {
    metrics: GrpcMetrics,
    method: Arc<str>,
    started: Instant,
}

impl Pending {
    fn finish(self, code: &'static str) {
        self.metrics.record(self.method, code, self.started);
    }
}

/// A response body that records its call when the trailers (with the status) pass, the body
/// ends, or it is dropped unfinished.
struct MeteredBody<B> {
    inner: B,
    pending: Option<Pending>,
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(t) = f.trailers_ref() {
                    let code = status_in(t).unwrap_or("UNKNOWN");
                    if let Some(p) = this.pending.take() {
                        p.finish(code);
                    }
                }
            }
            Some(Err(_)) => {
                if let Some(p) = this.pending.take() {
                    p.finish("INTERNAL");
                }
            }
            None => {
                if let Some(p) = this.pending.take() {
                    p.finish("UNKNOWN");
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.finish("CANCELLED");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_methods_are_named_and_anything_else_is_other() {
        let known = methods_of(&[
            crate::grpc::pb::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ])
        .unwrap();
        assert!(known.contains("lbd.v1.Lbd/GetStatus"), "{known:?}");
        assert!(known.contains("grpc.health.v1.Health/Check"), "{known:?}");
        let layer = MetricsLayer::new(GrpcMetrics::default(), known);
        assert_eq!(
            &*layer.method("/lbd.v1.Lbd/GetStatus"),
            "lbd.v1.Lbd/GetStatus"
        );
        assert_eq!(&*layer.method("/lbd.v1.Lbd/NoSuchMethod"), "other");
        assert_eq!(&*layer.method("/x"), "other");
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}

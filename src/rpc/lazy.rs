//! A gRPC service built on its first call. Reflection decodes the daemon's descriptors
//! once per protocol version it serves (v1 and v1alpha), about 1 MB that an always-on
//! daemon held for clients that mostly never ask (smctl and the editors carry their own
//! stubs); built on demand, it costs that memory only once a client such as grpcurl asks.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

type Built<S> = Result<S, String>;

/// The service `make` builds, built by the first call and shared by every clone.
pub struct Lazy<S, F> {
    inner: Arc<(OnceLock<Built<S>>, F)>,
}

impl<S, F> Lazy<S, F>
where
    F: Fn() -> Built<S>,
{
    pub fn new(make: F) -> Self {
        Lazy {
            inner: Arc::new((OnceLock::new(), make)),
        }
    }
}

impl<S, F> Clone for Lazy<S, F> {
    fn clone(&self) -> Self {
        Lazy {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: NamedService, F> NamedService for Lazy<S, F> {
    const NAME: &'static str = S::NAME;
}

impl<S, F> Service<http::Request<Body>> for Lazy<S, F>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    F: Fn() -> Built<S>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the built service's, awaited in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (built, make) = &*self.inner;
        match built.get_or_init(make) {
            Ok(service) => {
                let mut service = service.clone();
                Box::pin(async move {
                    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
                    service.call(request).await
                })
            }
            Err(e) => {
                let status = tonic::Status::internal(format!("cannot serve reflection: {e}"));
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

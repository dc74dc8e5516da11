//! A push endpoint served on a loopback port for a test, and requests to it.

use hyperfleet_tracing::consume::Handler;
use hyperfleet_tracing::push::PushEndpoint;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Served {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Serves `endpoint` with `handler` until [`Served::stop`].
pub async fn serve<H: Handler>(endpoint: PushEndpoint, handler: H) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(endpoint.serve(listener, handler, async move {
        let _ = stopped.await;
    }));
    Served {
        url,
        stop: Some(stop),
        task,
    }
}

impl Served {
    /// Starts shutdown; returns how long `serve` took to return after it.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap();
        started.elapsed()
    }
}

/// A request recorded in `testdata/wire/{name}`: its headers, and its body as sent.
pub fn fixture(name: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let path = format!("{}/testdata/wire/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let headers = fixture["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (headers, fixture["body"].to_string().into_bytes())
}

/// POSTs `body` with `headers`; the status and the response text.
pub async fn post(url: &str, headers: &[(String, String)], body: Vec<u8>) -> (u16, String) {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A wrapped push body for `data` with `attributes`.
pub fn wrapped_body(
    data: &[u8],
    attributes: serde_json::Value,
    extra: serde_json::Value,
) -> Vec<u8> {
    use base64::Engine as _;
    let mut body = serde_json::json!({
        "subscription": "projects/hyperfleet/subscriptions/validation-push",
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "attributes": attributes,
            "messageId": "42",
            "message_id": "42",
            "publishTime": "2025-10-23T12:00:01.000Z",
        },
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body.to_string().into_bytes()
}

pub fn json_headers() -> Vec<(String, String)> {
    vec![("content-type".into(), "application/json".into())]
}

/// Forwards push deliveries to the endpoint routed for their subscription, so that push
/// subscriptions can outlive the endpoints of single runs (the conformance suite serves one
/// per run): `POST /{subscription}` goes to the route's URL as it came, headers and body,
/// and its answer comes back. A delivery with no route waits for one (up to 20 s), then
/// gets 503, as does one whose endpoint is gone: Pub/Sub pushes it again later.
pub struct Relay {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    pub routes: std::sync::Arc<RelayRoutes>,
    task: JoinHandle<()>,
}

#[derive(Default)]
pub struct RelayRoutes {
    routes: std::sync::Mutex<std::collections::HashMap<String, String>>,
    changed: tokio::sync::Notify,
}

impl hyperfleet_tracing::testing::conformance::PushRoutes for RelayRoutes {
    fn route(&self, subscription: &str, url: &str) {
        self.routes
            .lock()
            .unwrap()
            .insert(subscription.to_owned(), url.to_owned());
        self.changed.notify_waiters();
    }

    fn unroute(&self, subscription: &str, url: &str) {
        let mut routes = self.routes.lock().unwrap();
        if routes.get(subscription).is_some_and(|routed| routed == url) {
            routes.remove(subscription);
        }
    }
}

impl RelayRoutes {
    /// The route of `subscription`, waiting up to `wait` for one.
    async fn wait_for(&self, subscription: &str, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            if let Some(url) = self.routes.lock().unwrap().get(subscription) {
                return Some(url.clone());
            }
            tokio::time::timeout_at(deadline, changed).await.ok()?;
        }
    }
}

impl Relay {
    pub async fn start() -> Self {
        use axum::extract::{Path, State};
        use axum::http::{HeaderMap, StatusCode};
        use std::sync::Arc;
        async fn forward(
            State((routes, client)): State<(Arc<RelayRoutes>, reqwest::Client)>,
            Path(subscription): Path<String>,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> (StatusCode, Vec<u8>) {
            let unavailable = (StatusCode::SERVICE_UNAVAILABLE, b"no endpoint".to_vec());
            let Some(url) = routes
                .wait_for(&subscription, Duration::from_secs(20))
                .await
            else {
                return unavailable;
            };
            let mut request = client.post(url).body(body);
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    request = request.header(name.as_str(), value.as_bytes());
                }
            }
            let Ok(response) = request.send().await else {
                return unavailable;
            };
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            match response.bytes().await {
                Ok(body) => (status, body.to_vec()),
                Err(_) => unavailable,
            }
        }
        let routes = Arc::new(RelayRoutes::default());
        // Past the emulator's own push timeout: an endpoint that never answers fails here.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let router = axum::Router::new()
            .route("/{subscription}", axum::routing::post(forward))
            .with_state((Arc::clone(&routes), client));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, routes, task }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

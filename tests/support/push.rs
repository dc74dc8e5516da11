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

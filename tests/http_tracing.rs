//! HTTP and database spans: the client injects the context, the server continues it under the
//! route template, the handler's database span nests under the server span.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use hyperfleet_tracing::Settings;
use hyperfleet_tracing::database::DatabaseTracing;
use hyperfleet_tracing::http::{HttpClientTracing, HttpServerTracing};
use hyperfleet_tracing::testing::TestTelemetry;
use hyperfleet_tracing::testing::spans::{attribute, attribute_str, single};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, Value};

async fn serve(telemetry: &TestTelemetry) -> String {
    let db = DatabaseTracing::new("sqlite").tracer_provider(&telemetry.provider);
    let routes = Router::new()
        .route(
            "/clusters/{id}",
            get(move |Path(id): Path<String>| {
                let db = db.clone();
                async move {
                    let cx = db.start("SELECT", "clusters");
                    cx.span().end();
                    format!("cluster {id}")
                }
            }),
        )
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }));
    let app = HttpServerTracing::new()
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .server_address("api.test")
        .route_layer(routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_server_and_database_spans_form_one_trace() {
    let telemetry = TestTelemetry::new();
    let address = serve(&telemetry).await;
    let client = reqwest::Client::new();
    let http =
        HttpClientTracing::new().settings(Settings::new().tracer_provider(&telemetry.provider));
    let root = Context::new().with_span(telemetry.provider.tracer("test").start("sentinel.poll"));

    let request = client
        .get(format!("http://{address}/clusters/c1?token=secret"))
        .build()
        .unwrap();
    let response = http
        .send(&client, request)
        .with_context(root.clone())
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "cluster c1");
    let request = client
        .get(format!("http://{address}/boom"))
        .build()
        .unwrap();
    let response = http
        .send(&client, request)
        .with_context(root.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 500);

    let spans = telemetry.spans();
    let root_id = root.span().span_context().span_id();
    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "GET" && s.span_kind == SpanKind::Client)
        .collect();
    assert_eq!(clients.len(), 2);
    assert!(clients.iter().all(|c| c.parent_span_id == root_id));

    let server = single(&spans, "GET /clusters/{id}").unwrap();
    assert_eq!(server.span_kind, SpanKind::Server);
    let first_client = clients
        .iter()
        .find(|c| c.span_context.span_id() == server.parent_span_id)
        .expect("the server span continues the client span");
    assert_eq!(
        server.span_context.trace_id(),
        root.span().span_context().trace_id()
    );
    assert_eq!(
        attribute_str(server, "http.route").as_deref(),
        Some("/clusters/{id}")
    );
    assert_eq!(
        attribute_str(server, "url.path").as_deref(),
        Some("/clusters/c1")
    );
    assert_eq!(
        attribute_str(server, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(
        attribute_str(server, "server.address").as_deref(),
        Some("api.test")
    );
    assert_eq!(
        attribute(server, "http.response.status_code"),
        Some(&Value::I64(200))
    );
    let url = attribute_str(first_client, "url.full").unwrap();
    assert!(
        url.ends_with("/clusters/c1") && !url.contains("secret"),
        "{url}"
    );
    assert_eq!(
        attribute(first_client, "http.response.status_code"),
        Some(&Value::I64(200))
    );

    let query = single(&spans, "SELECT clusters").unwrap();
    assert_eq!(query.parent_span_id, server.span_context.span_id());
    assert_eq!(attribute_str(query, "db.system").as_deref(), Some("sqlite"));
    assert_eq!(
        attribute_str(query, "db.operation.name").as_deref(),
        Some("SELECT")
    );
    assert_eq!(
        attribute_str(query, "db.collection.name").as_deref(),
        Some("clusters")
    );

    let failed = single(&spans, "GET /boom").unwrap();
    assert!(matches!(failed.status, Status::Error { .. }));
    assert_eq!(attribute_str(failed, "error.type").as_deref(), Some("500"));
    let failed_client = clients
        .iter()
        .find(|c| c.span_context.span_id() == failed.parent_span_id)
        .unwrap();
    assert!(matches!(failed_client.status, Status::Error { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_recorded_on_the_client_span() {
    let telemetry = TestTelemetry::new();
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = reqwest::Client::new();
    let request = client
        .patch(format!("http://{unused}/clusters/c1/status"))
        .build()
        .unwrap();
    let error = HttpClientTracing::new()
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .send(&client, request)
        .await
        .unwrap_err();
    assert!(error.is_connect());
    let spans = telemetry.spans();
    let span = single(&spans, "PATCH").unwrap();
    assert_eq!(
        attribute_str(span, "error.type").as_deref(),
        Some("connect")
    );
    assert!(matches!(span.status, Status::Error { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_records_no_credentials_or_query_in_any_text() {
    let telemetry = TestTelemetry::new();
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = reqwest::Client::new();
    let request = client
        .get(format!(
            "http://admin:hunter2@{unused}/clusters?token=s3cr3t&x={}",
            "q".repeat(2000)
        ))
        .build()
        .unwrap();
    let error = HttpClientTracing::new()
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .send(&client, request)
        .await
        .unwrap_err();
    // The caller's own error still has everything: only what is recorded is scrubbed.
    assert!(error.to_string().contains("s3cr3t"), "{error}");
    let spans = telemetry.spans();
    let span = single(&spans, "GET").unwrap();
    for (place, text) in hyperfleet_tracing::testing::spans::texts(span) {
        for secret in ["hunter2", "admin", "s3cr3t", "qqqq"] {
            assert!(!text.contains(secret), "{place} holds {secret:?}: {text}");
        }
    }
    assert!(
        hyperfleet_tracing::testing::spans::texts(span)
            .iter()
            .any(|(place, text)| place == "status" && text.contains("/clusters")),
        "the status still says which call failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_request_parts_are_bounded_on_the_server_span() {
    let telemetry = TestTelemetry::new();
    let routes = Router::new().route(
        "/{*rest}",
        axum::routing::any(|| async { StatusCode::NO_CONTENT }),
    );
    let app = HttpServerTracing::new()
        .settings(Settings::new().tracer_provider(&telemetry.provider))
        .route_layer(routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes("X".repeat(1000).as_bytes()).unwrap();
    let request = client
        .request(method, format!("http://{address}/{}", "p".repeat(4000)))
        .header("host", format!("{}:80", "h".repeat(4000)))
        .build()
        .unwrap();
    let response = client.execute(request).await.unwrap();
    assert_eq!(response.status(), 204);
    let spans = telemetry.spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    let oversized = hyperfleet_tracing::testing::spans::oversized(span, 256);
    assert!(oversized.is_empty(), "{oversized:#?}");
    assert_eq!(span.name, "HTTP /{*rest}");
    assert_eq!(
        attribute_str(span, "http.request.method").as_deref(),
        Some("_OTHER")
    );
}

/// Serves one route whose SERVER spans go to `telemetry`, with `tracing` configured by `f`.
async fn serve_with(
    telemetry: &TestTelemetry,
    f: impl FnOnce(HttpServerTracing) -> HttpServerTracing,
) -> String {
    let routes = Router::new().route("/clusters", get(|| async { "ok" }));
    let app =
        f(HttpServerTracing::new().settings(Settings::new().tracer_provider(&telemetry.provider)))
            .route_layer(routes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reads_traceparent_as_strictly_as_the_event_carrier() {
    let telemetry = TestTelemetry::new();
    let address = serve_with(&telemetry, |t| t).await;
    let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let client = reqwest::Client::new();
    for headers in [
        vec!["00-1-1-01"],
        vec!["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01"],
        vec!["00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"],
        vec![valid, valid],
    ] {
        let mut request = client.get(format!("http://{address}/clusters"));
        for value in &headers {
            request = request.header("traceparent", *value);
        }
        assert_eq!(request.send().await.unwrap().status(), 200);
        let spans = telemetry.spans();
        let span = spans.last().unwrap();
        assert!(
            hyperfleet_tracing::testing::spans::is_root(span),
            "traceparent {headers:?} was accepted"
        );
    }
    client
        .get(format!("http://{address}/clusters"))
        .header("traceparent", valid)
        .send()
        .await
        .unwrap();
    let spans = telemetry.spans();
    assert_eq!(
        spans.last().unwrap().span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_mode_starts_a_new_trace_linked_to_an_untrusted_caller() {
    let telemetry = TestTelemetry::new();
    let address = serve_with(&telemetry, |t| {
        t.settings(
            Settings::new()
                .tracer_provider(&telemetry.provider)
                .parent_mode(hyperfleet_tracing::settings::ParentMode::Link),
        )
    })
    .await;
    reqwest::Client::new()
        .get(format!("http://{address}/clusters"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    let spans = telemetry.spans();
    let span = single(&spans, "GET /clusters").unwrap();
    assert!(hyperfleet_tracing::testing::spans::is_root(span));
    assert_ne!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let linked: Vec<_> = span
        .links
        .iter()
        .map(|l| l.span_context.span_id().to_string())
        .collect();
    assert_eq!(linked, ["00f067aa0ba902b7"]);
}

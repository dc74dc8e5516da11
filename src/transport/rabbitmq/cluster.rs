//! Connecting to a cluster: the nodes `RabbitMqConfig::url` names, tried in turn.
//!
//! lapin reconnects by calling a connect function again, with backoff; this one moves to the
//! next node on every call, so that a recovery after a node is lost goes to another node, and
//! lapin's recovery then replays the channels, their consumers and the declared topology
//! there. One address fronting the cluster (a load balancer, a Kubernetes Service) is a list
//! of one: every attempt goes to it.

use super::error::transport_error;
use crate::transport::{ErrorCode, TransportError};
use lapin::tcp::{AMQPUriTcpExt, TLSConfig};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The nodes of one cluster, and which one the connection went to last.
pub(super) struct Nodes {
    uris: Vec<AMQPUri>,
    /// Every connect attempt so far: the next one goes to node `attempts % len`.
    attempts: AtomicUsize,
    /// The node of the latest attempt, for `server.address`.
    current: AtomicUsize,
}

impl Nodes {
    /// The comma-separated URLs of `url`: at least one, each `amqp://` or `amqps://`.
    pub(super) fn parse(url: &str) -> Result<Self, TransportError> {
        let uris = super::config::split_urls(url)
            .map(|one| {
                one.parse::<AMQPUri>().map_err(|reason| {
                    TransportError::new(
                        ErrorCode::InvalidArgument,
                        format!("not a RabbitMQ URL ({reason}): {}", redact(one)),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if uris.is_empty() {
            return Err(TransportError::new(
                ErrorCode::InvalidArgument,
                "no RabbitMQ URL given",
            ));
        }
        Ok(Self {
            uris,
            attempts: AtomicUsize::new(0),
            current: AtomicUsize::new(0),
        })
    }

    /// The host of the node the connection went to last.
    pub(super) fn host(&self) -> &str {
        &self.latest().authority.host
    }

    /// The port of the node the connection went to last.
    pub(super) fn port(&self) -> u16 {
        self.latest().authority.port
    }

    fn latest(&self) -> &AMQPUri {
        &self.uris[self.current.load(Ordering::Relaxed) % self.uris.len()]
    }

    /// Connects to the first node that answers, in turn; lapin's recovery comes back here
    /// after a loss and goes on to the next node. Credentials, virtual host and connection
    /// parameters are the first URL's: the nodes of one cluster share them.
    pub(super) async fn connect(
        self: &Arc<Self>,
        properties: ConnectionProperties,
    ) -> Result<Connection, TransportError> {
        let doing = format!("connecting to RabbitMQ at {}", self.describe());
        let runtime = lapin::runtime::default_runtime().map_err(|e| transport_error(&e, &doing))?;
        let nodes = Arc::clone(self);
        let next_node = async move |_first: AMQPUri, runtime| {
            let index = nodes.attempts.fetch_add(1, Ordering::Relaxed) % nodes.uris.len();
            nodes.current.store(index, Ordering::Relaxed);
            let uri = &nodes.uris[index];
            tracing::debug!(node = %uri.authority.host, port = uri.authority.port, "connecting to RabbitMQ");
            uri.connect_with_config_async(TLSConfig::default(), &runtime)
                .await
                .map_err(lapin::Error::from)
        };
        Connection::connector(self.uris[0].clone(), runtime, next_node, properties)
            .await
            .map_err(|e| transport_error(&e, &doing))
    }

    /// `host:port` of every node, comma-separated, without credentials.
    pub(super) fn describe(&self) -> String {
        let nodes: Vec<String> = self
            .uris
            .iter()
            .map(|uri| format!("{}:{}", uri.authority.host, uri.authority.port))
            .collect();
        nodes.join(",")
    }
}

/// A URL for an error message: without what comes before `@` (user and password).
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, rest))) => format!("{scheme}://…@{rest}"),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_of_the_list_is_kept_in_order_with_its_port() {
        let nodes = Nodes::parse(
            "amqp://u:secret@a:5673/%2f, amqps://u:secret@b/%2f,,amqp://u:secret@c:5675/%2f",
        )
        .unwrap();
        assert_eq!(nodes.describe(), "a:5673,b:5671,c:5675");
        assert_eq!((nodes.host(), nodes.port()), ("a", 5673));
    }

    #[test]
    fn an_empty_list_or_a_bad_url_is_refused_without_its_password() {
        let empty = Nodes::parse(" , ").err().unwrap();
        assert_eq!(empty.code(), ErrorCode::InvalidArgument);
        let bad = Nodes::parse("amqp://u:secret@a:5672/%2f,http://u:secret@b/")
            .err()
            .unwrap();
        assert_eq!(bad.code(), ErrorCode::InvalidArgument);
        assert!(!bad.to_string().contains("secret"), "{bad}");
        assert!(bad.to_string().contains("b/"), "{bad}");
    }
}

//! Opt-in declaration of hyperfleet-broker's topology: exchanges for topics, queues for
//! subscriptions. What is declared is remembered on the transport and declared again on a
//! broker that lost it (a node back on empty storage, a queue deleted under a consumer).

use super::error::transport_error;
use super::{ExchangeType, RabbitMqTransport};
use crate::sync::lock;
use crate::transport::{ErrorCode, SubscriptionConfig, TransportError};
use lapin::ExchangeKind;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};
use std::sync::Mutex;

/// The kind of queue a subscription gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueueKind {
    /// A classic queue with no arguments: hyperfleet-broker's, so that Rust and Go services
    /// share it (declaring a queue with other arguments than it has fails).
    #[default]
    Classic,
    /// A quorum queue with a delivery limit (the subscription's dead-letter policy's attempts,
    /// else 5) and a dead-letter exchange with a queue of the same name: the policy's topic,
    /// else `{queue}-dlq`; deliveries then carry their attempt (`x-delivery-count`).
    Quorum,
}

/// Declares exchanges and queues (all durable) on a transport's connection.
#[derive(Debug, Clone)]
pub struct RabbitMqAdmin {
    transport: RabbitMqTransport,
}

impl RabbitMqAdmin {
    /// Declarations through `transport`'s connection.
    pub fn new(transport: &RabbitMqTransport) -> Self {
        Self {
            transport: transport.clone(),
        }
    }

    /// Declares the exchange of `topic` unless it exists.
    pub async fn create_topic_if_missing(&self, topic: &str) -> Result<(), TransportError> {
        let kind = match self.transport.config().exchange_type {
            ExchangeType::Fanout => ExchangeKind::Fanout,
            ExchangeType::Topic => ExchangeKind::Topic,
            ExchangeType::Direct => ExchangeKind::Direct,
        };
        self.declare_exchange(topic, kind).await
    }

    /// Declares the queue `queue` unless it exists and binds it to `topic`'s exchange with
    /// the routing key. A quorum queue also gets its dead-letter exchange and queue.
    pub async fn create_subscription_if_missing(
        &self,
        queue: &str,
        topic: &str,
        kind: QueueKind,
        config: &SubscriptionConfig,
    ) -> Result<(), TransportError> {
        let mut arguments = FieldTable::default();
        if kind == QueueKind::Quorum {
            // The dead-letter policy's topic, else `{queue}-dlq`: an exchange with a queue of
            // the same name on it, so that no dead letter is lost.
            let dead_letters = config
                .dead_letter
                .as_ref()
                .map_or_else(|| format!("{queue}-dlq"), |policy| policy.topic.clone());
            self.declare_exchange(&dead_letters, ExchangeKind::Fanout)
                .await?;
            self.declare_queue(&dead_letters, FieldTable::default())
                .await?;
            self.bind(&dead_letters, &dead_letters, "").await?;
            let limit = config
                .dead_letter
                .as_ref()
                .map_or(5, |policy| policy.max_delivery_attempts);
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
            // The limit counts redeliveries: `attempts` deliveries are the first and
            // `attempts - 1` more.
            let redeliveries = limit.saturating_sub(1);
            arguments.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(i32::try_from(redeliveries).unwrap_or(i32::MAX)),
            );
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dead_letters.into()),
            );
        }
        self.declare_queue(queue, arguments).await?;
        let routing_key = self.transport.config().routing_key.clone();
        self.bind(queue, topic, &routing_key).await
    }

    /// Deletes the queue `queue` with the messages it holds (a missing one is not an error;
    /// a quorum queue's dead-letter queue stays).
    pub async fn delete_subscription(&self, queue: &str) -> Result<(), TransportError> {
        // Forgotten first, so that no declaring again brings it back meanwhile.
        self.transport.declared().forget_queue(queue);
        self.on_channel(&format!("deleting queue {queue}"), |channel| async move {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await
                .map(|_| ())
        })
        .await
    }

    /// Deletes the exchange of `topic` (a missing one is not an error).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), TransportError> {
        self.transport.declared().forget_exchange(topic);
        self.on_channel(
            &format!("deleting exchange {topic}"),
            |channel| async move {
                channel
                    .exchange_delete(topic.into(), ExchangeDeleteOptions::default())
                    .await
            },
        )
        .await
    }

    async fn declare_exchange(&self, name: &str, kind: ExchangeKind) -> Result<(), TransportError> {
        self.declare(Declaration::Exchange {
            name: name.to_owned(),
            kind,
        })
        .await
    }

    async fn declare_queue(&self, name: &str, arguments: FieldTable) -> Result<(), TransportError> {
        self.declare(Declaration::Queue {
            name: name.to_owned(),
            arguments,
        })
        .await
    }

    async fn bind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        self.declare(Declaration::Binding {
            queue: queue.to_owned(),
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
        })
        .await
    }

    /// Declares `declaration` and remembers it, to declare it again where it was lost.
    async fn declare(&self, declaration: Declaration) -> Result<(), TransportError> {
        declaration.apply(self.transport.connection()).await?;
        self.transport.declared().record(declaration);
        Ok(())
    }

    async fn on_channel<F, Fut>(&self, doing: &str, operation: F) -> Result<(), TransportError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = lapin::Result<()>>,
    {
        on_channel(self.transport.connection(), doing, operation).await
    }
}

/// Runs one operation on a channel of its own (a failed operation closes its channel), then
/// closes the channel.
async fn on_channel<F, Fut>(
    connection: &Connection,
    doing: &str,
    operation: F,
) -> Result<(), TransportError>
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = lapin::Result<()>>,
{
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| transport_error(&e, "opening an admin channel"))?;
    let done = operation(channel.clone())
        .await
        .map_err(|e| transport_error(&e, doing));
    let _ = channel.close(200, "done".into()).await;
    done
}

/// One thing the admin declared (all durable).
#[derive(Debug, Clone)]
enum Declaration {
    Exchange {
        name: String,
        kind: ExchangeKind,
    },
    Queue {
        name: String,
        arguments: FieldTable,
    },
    Binding {
        queue: String,
        exchange: String,
        routing_key: String,
    },
}

impl Declaration {
    /// Whether `other` declares the same thing (perhaps with other settings).
    fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exchange { name: a, .. }, Self::Exchange { name: b, .. }) => a == b,
            (Self::Queue { name: a, .. }, Self::Queue { name: b, .. }) => a == b,
            (
                Self::Binding {
                    queue,
                    exchange,
                    routing_key,
                },
                Self::Binding {
                    queue: q,
                    exchange: e,
                    routing_key: k,
                },
            ) => (queue, exchange, routing_key) == (q, e, k),
            _ => false,
        }
    }

    /// Whether it is the queue `queue` or binds it.
    fn involves_queue(&self, queue: &str) -> bool {
        match self {
            Self::Queue { name, .. } => name == queue,
            Self::Binding { queue: bound, .. } => bound == queue,
            Self::Exchange { .. } => false,
        }
    }

    /// Whether it is the exchange `exchange` or binds to it.
    fn involves_exchange(&self, exchange: &str) -> bool {
        match self {
            Self::Exchange { name, .. } => name == exchange,
            Self::Binding { exchange: to, .. } => to == exchange,
            Self::Queue { .. } => false,
        }
    }

    async fn apply(&self, connection: &Connection) -> Result<(), TransportError> {
        match self {
            Self::Exchange { name, kind } => {
                let options = ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                };
                let doing = format!("declaring exchange {name}");
                on_channel(connection, &doing, |channel| async move {
                    channel
                        .exchange_declare(
                            name.as_str().into(),
                            kind.clone(),
                            options,
                            FieldTable::default(),
                        )
                        .await
                })
                .await
            }
            Self::Queue { name, arguments } => {
                let options = QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                };
                let doing = format!("declaring queue {name}");
                on_channel(connection, &doing, |channel| async move {
                    channel
                        .queue_declare(name.as_str().into(), options, arguments.clone())
                        .await
                        .map(|_| ())
                })
                .await
            }
            Self::Binding {
                queue,
                exchange,
                routing_key,
            } => {
                let doing = format!("binding queue {queue} to {exchange}");
                on_channel(connection, &doing, |channel| async move {
                    channel
                        .queue_bind(
                            queue.as_str().into(),
                            exchange.as_str().into(),
                            routing_key.as_str().into(),
                            QueueBindOptions::default(),
                            FieldTable::default(),
                        )
                        .await
                })
                .await
            }
        }
    }
}

/// What a transport's admins declared, in order.
#[derive(Debug, Default)]
pub(super) struct Declared {
    declared: Mutex<Vec<Declaration>>,
    /// Held while declaring again: one at a time.
    replaying: tokio::sync::Mutex<()>,
}

/// Longest a declaring again may take.
const REPLAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Declared {
    fn record(&self, declaration: Declaration) {
        let mut declared = lock(&self.declared);
        match declared.iter_mut().find(|d| d.same_as(&declaration)) {
            Some(known) => *known = declaration,
            None => declared.push(declaration),
        }
    }

    fn forget_queue(&self, queue: &str) {
        lock(&self.declared).retain(|d| !d.involves_queue(queue));
    }

    fn forget_exchange(&self, exchange: &str) {
        lock(&self.declared).retain(|d| !d.involves_exchange(exchange));
    }

    fn forget(&self, declaration: &Declaration) {
        lock(&self.declared).retain(|d| !d.same_as(declaration));
    }

    fn is_recorded(&self, declaration: &Declaration) -> bool {
        lock(&self.declared).iter().any(|d| d.same_as(declaration))
    }

    /// What a consumer of `queue` (`Some`) or a publisher to `exchange` needs, in the order
    /// declared: the queue or exchange, its bindings, what they bind it to, and a queue's
    /// dead-letter exchange with its bindings and queues.
    fn needed(&self, queue: Option<&str>, exchange: Option<&str>) -> Vec<Declaration> {
        let declared = lock(&self.declared).clone();
        let mut queues: Vec<&str> = queue.into_iter().collect();
        let mut exchanges: Vec<&str> = exchange.into_iter().collect();
        fn add<'a>(names: &mut Vec<&'a str>, name: &'a str) -> bool {
            let new = !names.contains(&name);
            if new {
                names.push(name);
            }
            new
        }
        // Until nothing is added: each pass may reach further (a dead-letter exchange, then
        // its bindings and queues); a name is added once, so this ends.
        let mut grew = true;
        while grew {
            grew = false;
            for declaration in &declared {
                match declaration {
                    Declaration::Binding {
                        queue: q,
                        exchange: e,
                        ..
                    } if queues.contains(&q.as_str()) || exchanges.contains(&e.as_str()) => {
                        grew |= add(&mut queues, q.as_str());
                        grew |= add(&mut exchanges, e.as_str());
                    }
                    Declaration::Queue { name, arguments } if queues.contains(&name.as_str()) => {
                        if let Some(dead_letters) = dead_letter_exchange(arguments) {
                            grew |= add(&mut exchanges, dead_letters);
                        }
                    }
                    _ => {}
                }
            }
        }
        declared
            .iter()
            .filter(|d| match d {
                Declaration::Exchange { name, .. } => exchanges.contains(&name.as_str()),
                Declaration::Queue { name, .. } => queues.contains(&name.as_str()),
                Declaration::Binding {
                    queue, exchange, ..
                } => queues.contains(&queue.as_str()) && exchanges.contains(&exchange.as_str()),
            })
            .cloned()
            .collect()
    }

    /// Declares again (what exists stays as it is) what a consumer of `queue` or a publisher
    /// to `exchange` needs, one declaring at a time and within [`REPLAY_TIMEOUT`]. A
    /// declaration that cannot hold any more (its arguments differ from what now exists) is
    /// forgotten; other failures are logged, and the rest is declared still.
    pub(super) async fn declare_again(
        &self,
        connection: &Connection,
        queue: Option<&str>,
        exchange: Option<&str>,
    ) {
        let _one_at_a_time = self.replaying.lock().await;
        let replay = async {
            for declaration in self.needed(queue, exchange) {
                // Deleted meanwhile: not to be brought back.
                if !self.is_recorded(&declaration) {
                    continue;
                }
                match declaration.apply(connection).await {
                    Ok(()) => {}
                    Err(error) if error.code() == ErrorCode::FailedPrecondition => {
                        tracing::warn!(%error, "forgetting a declaration that no longer holds");
                        self.forget(&declaration);
                    }
                    Err(error) => tracing::warn!(%error, "cannot declare again"),
                }
            }
        };
        if tokio::time::timeout(REPLAY_TIMEOUT, replay).await.is_err() {
            tracing::warn!("declaring the topology again took over {REPLAY_TIMEOUT:?}; left");
        }
    }
}

/// The exchange a queue's `x-dead-letter-exchange` argument names.
fn dead_letter_exchange(arguments: &FieldTable) -> Option<&str> {
    match arguments.inner().get("x-dead-letter-exchange")? {
        AMQPValue::LongString(name) => std::str::from_utf8(name.as_bytes()).ok(),
        AMQPValue::ShortString(name) => Some(name.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(declared: &Declared) -> Vec<String> {
        lock(&declared.declared)
            .iter()
            .map(|d| match d {
                Declaration::Exchange { name, .. } => format!("exchange {name}"),
                Declaration::Queue { name, .. } => format!("queue {name}"),
                Declaration::Binding {
                    queue, exchange, ..
                } => format!("binding {queue}->{exchange}"),
            })
            .collect()
    }

    fn binding(queue: &str, exchange: &str) -> Declaration {
        Declaration::Binding {
            queue: queue.into(),
            exchange: exchange.into(),
            routing_key: String::new(),
        }
    }

    #[test]
    fn declarations_are_kept_once_in_order_and_forgotten_with_what_they_bind() {
        let declared = Declared::default();
        let exchange = |name: &str| Declaration::Exchange {
            name: name.into(),
            kind: ExchangeKind::Fanout,
        };
        let queue = |name: &str| Declaration::Queue {
            name: name.into(),
            arguments: FieldTable::default(),
        };
        for declaration in [
            exchange("t"),
            queue("q"),
            binding("q", "t"),
            queue("q"),
            binding("q", "t"),
            exchange("u"),
            binding("q", "u"),
        ] {
            declared.record(declaration);
        }
        assert_eq!(
            names(&declared),
            [
                "exchange t",
                "queue q",
                "binding q->t",
                "exchange u",
                "binding q->u"
            ]
        );
        declared.forget_exchange("u");
        assert_eq!(names(&declared), ["exchange t", "queue q", "binding q->t"]);
        declared.forget_queue("q");
        assert_eq!(names(&declared), ["exchange t"]);
    }

    #[test]
    fn declaring_again_takes_what_a_queue_or_an_exchange_needs() {
        let declared = Declared::default();
        let mut quorum = FieldTable::default();
        quorum.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("q-dlq".into()),
        );
        for declaration in [
            Declaration::Exchange {
                name: "t".into(),
                kind: ExchangeKind::Fanout,
            },
            Declaration::Exchange {
                name: "q-dlq".into(),
                kind: ExchangeKind::Fanout,
            },
            Declaration::Queue {
                name: "q-dlq".into(),
                arguments: FieldTable::default(),
            },
            binding("q-dlq", "q-dlq"),
            Declaration::Queue {
                name: "q".into(),
                arguments: quorum,
            },
            binding("q", "t"),
            Declaration::Exchange {
                name: "other".into(),
                kind: ExchangeKind::Fanout,
            },
            Declaration::Queue {
                name: "r".into(),
                arguments: FieldTable::default(),
            },
            binding("r", "other"),
        ] {
            declared.record(declaration);
        }
        let names = |list: Vec<Declaration>| {
            let only = Declared::default();
            list.into_iter().for_each(|d| only.record(d));
            super::tests::names(&only)
        };
        let all_of_q = [
            "exchange t",
            "exchange q-dlq",
            "queue q-dlq",
            "binding q-dlq->q-dlq",
            "queue q",
            "binding q->t",
        ];
        assert_eq!(names(declared.needed(Some("q"), None)), all_of_q);
        assert_eq!(names(declared.needed(None, Some("t"))), all_of_q);
        assert_eq!(
            names(declared.needed(None, Some("other"))),
            ["exchange other", "queue r", "binding r->other"]
        );
    }
}

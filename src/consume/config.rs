//! What a way in consumes: a subscription of a topic, with the shared [`Settings`].

use crate::settings::Settings;

/// How deliveries of one subscription are consumed. Nothing here is built yet: the
/// [`Consumer`](super::Consumer) made from it builds its span templates once.
#[derive(Clone)]
pub(crate) struct ConsumerConfig {
    pub(crate) topic: String,
    pub(crate) subscription: String,
    pub(crate) settings: Settings,
    /// A stand-in for many subscriptions (a push endpoint's beyond its bound): its spans name
    /// `subscription`, and its receive span carries each delivery's own in its subscription
    /// attribute.
    pub(crate) stand_in: bool,
    /// The transport's name for the destination under the current conventions
    /// ([`Transport::destination_name`](crate::transport::Transport)).
    pub(crate) current_name: Option<String>,
}

impl ConsumerConfig {
    /// `subscription` of `topic`, with the default [`Settings`].
    pub(crate) fn new(subscription: String, topic: String) -> Self {
        Self {
            topic,
            subscription,
            settings: Settings::new(),
            stand_in: false,
            current_name: None,
        }
    }
}

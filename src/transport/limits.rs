//! Pub/Sub's limits on one message, checked before a message is sent.
//!
//! The server refuses a message over them, and a refused message can fail the whole request
//! it was batched in. Both backends check them, so a message is refused alone, with a typed
//! error (`INVALID_ARGUMENT`) that names the limit, and the memory transport accepts exactly
//! what Pub/Sub accepts.

use super::{ErrorCode, Message, TransportError};

/// Most attributes on one message.
pub const MAX_ATTRIBUTES: usize = 100;
/// Longest attribute key, in bytes.
pub const MAX_ATTRIBUTE_KEY_LEN: usize = 256;
/// Longest attribute value, in bytes.
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 1024;
/// Longest ordering key, in bytes.
pub const MAX_ORDERING_KEY_LEN: usize = 1024;
/// Largest message: data, attribute keys and values, and ordering key together, in bytes.
pub const MAX_MESSAGE_LEN: usize = 10_000_000;

/// `Ok` when Pub/Sub would take `message`, else an `INVALID_ARGUMENT` error naming the limit.
pub fn check(message: &Message) -> Result<(), TransportError> {
    let over = |what: String| {
        Err(TransportError::new(
            ErrorCode::InvalidArgument,
            format!("the message is over Pub/Sub's limits: {what}"),
        ))
    };
    if message.attributes.len() > MAX_ATTRIBUTES {
        return over(format!(
            "{} attributes (at most {MAX_ATTRIBUTES})",
            message.attributes.len()
        ));
    }
    for (key, value) in &message.attributes {
        if key.len() > MAX_ATTRIBUTE_KEY_LEN {
            return over(format!(
                "an attribute key of {} bytes (at most {MAX_ATTRIBUTE_KEY_LEN})",
                key.len()
            ));
        }
        if value.len() > MAX_ATTRIBUTE_VALUE_LEN {
            return over(format!(
                "attribute {key:?} has a {}-byte value (at most {MAX_ATTRIBUTE_VALUE_LEN})",
                value.len()
            ));
        }
    }
    let key_len = message.ordering_key.as_ref().map_or(0, String::len);
    if key_len > MAX_ORDERING_KEY_LEN {
        return over(format!(
            "an ordering key of {key_len} bytes (at most {MAX_ORDERING_KEY_LEN})"
        ));
    }
    let attributes_len: usize = message
        .attributes
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let size = message.data.len() + attributes_len + key_len;
    if size > MAX_MESSAGE_LEN {
        return over(format!("{size} bytes in all (at most {MAX_MESSAGE_LEN})"));
    }
    Ok(())
}

//! HyperFleet log lines, correlated with traces.
//!
//! [`LogLayer`] is a `tracing-subscriber` layer writing one line per `tracing` event in the
//! logging specification's shape: `timestamp` (RFC 3339, UTC, milliseconds), `level`,
//! `message`, `component`, `version`, `hostname`, `trace_id` and `span_id` of the active
//! OpenTelemetry span, the message fields the subscriber loop puts in the context
//! (`event_id`, `subscription`, `adapter`), and the event's own fields.
//!
//! The active span is read from the OpenTelemetry context, so it is right both for spans this
//! crate starts (the handler runs inside the process span's context) and for `tracing` spans
//! bridged by `tracing-opentelemetry`, which activates their context on entry.

use super::config::LogFormat;
use crate::consume::log_fields::{self, MessageLogFields};
use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Context, Layer};

/// Keys of the log line that an event's fields may not replace.
const RESERVED: [&str; 8] = [
    "timestamp",
    "level",
    "message",
    "component",
    "version",
    "hostname",
    "trace_id",
    "span_id",
];

/// Writes HyperFleet log lines.
pub struct LogLayer {
    writer: BoxMakeWriter,
    format: LogFormat,
    component: String,
    version: String,
    hostname: String,
}

impl std::fmt::Debug for LogLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLayer")
            .field("format", &self.format)
            .field("component", &self.component)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl LogLayer {
    /// A layer writing `format` lines to `writer`, naming `component` and `version`.
    pub fn new(
        writer: BoxMakeWriter,
        format: LogFormat,
        component: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            writer,
            format,
            component: component.into(),
            version: version.into(),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        }
    }

    fn line(&self, event: &Event<'_>) -> String {
        let mut fields = FieldVisitor::default();
        event.record(&mut fields);
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let span_context = span.span_context();

        let mut line = Map::new();
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), level_name(event.metadata().level()).into());
        line.insert(
            "message".into(),
            fields.message.take().unwrap_or_default().into(),
        );
        line.insert("component".into(), self.component.clone().into());
        line.insert("version".into(), self.version.clone().into());
        line.insert("hostname".into(), self.hostname.clone().into());
        if span_context.is_valid() {
            line.insert(
                "trace_id".into(),
                span_context.trace_id().to_string().into(),
            );
            line.insert("span_id".into(), span_context.span_id().to_string().into());
        }
        if let Some(message) = cx.get::<MessageLogFields>() {
            line.insert(log_fields::EVENT_ID.into(), message.event_id.clone().into());
            line.insert(
                log_fields::SUBSCRIPTION.into(),
                message.subscription.clone().into(),
            );
            if let Some(adapter) = &message.adapter {
                line.insert(log_fields::ADAPTER.into(), adapter.clone().into());
            }
        }
        // The event's own fields win over the message context's, never over the standard keys.
        for (key, value) in fields.fields {
            if !RESERVED.contains(&key.as_str()) {
                line.insert(key, value);
            }
        }

        match self.format {
            LogFormat::Json => Value::Object(line).to_string(),
            LogFormat::Text => text_line(line),
        }
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = self.line(event);
        line.push('\n');
        // A log line that cannot be written is dropped: logging must not fail the caller.
        let _ = self
            .writer
            .make_writer_for(event.metadata())
            .write_all(line.as_bytes());
    }
}

/// `timestamp LEVEL message key=value …`, with the standard keys first.
///
/// Nothing a message or value holds can forge a line or a field: control characters are
/// escaped everywhere, and a message or value with a space, `=`, `"` or `\` is quoted,
/// logfmt-style.
fn text_line(mut line: Map<String, Value>) -> String {
    let mut take = |key: &str| match line.remove(key) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut out = format!(
        "{} {:<5} ",
        take("timestamp"),
        take("level").to_ascii_uppercase()
    );
    quoted_if_needed(&take("message"), &mut out);
    for (key, value) in line {
        let value = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        out.push(' ');
        escape_controls(&key, &mut out);
        out.push('=');
        quoted_if_needed(&value, &mut out);
    }
    out
}

/// Whether `c` would end a line, move the cursor or otherwise not show as itself.
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `text` with `\n`, `\r`, `\t` and every other control character escaped.
fn escape_controls(text: &str, out: &mut String) {
    for c in text.chars() {
        push_escaped(c, out);
    }
}

fn push_escaped(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_control(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// A logfmt value: as is when nothing in it could be read as a separator, else in quotes with
/// `"` and `\` escaped.
fn quoted_if_needed(value: &str, out: &mut String) {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| matches!(c, ' ' | '=' | '"' | '\\') || is_control(c));
    if plain {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_escaped(c, out),
        }
    }
    out.push('"');
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// Collects an event's fields as JSON values.
#[derive(Default)]
struct FieldVisitor {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for FieldVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

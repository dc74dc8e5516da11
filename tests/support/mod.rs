//! Shared test support.
#![allow(dead_code)]

pub mod capture;
pub mod emulator;
pub mod events;
pub mod examples;
pub mod memory;
pub mod metrics;
pub mod otlp_receiver;
pub mod peer;
pub mod process;
pub mod prometheus;
pub mod proxy;
#[cfg(feature = "push")]
pub mod push;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
pub mod semconv;
#[cfg(all(feature = "http-server", feature = "http-client"))]
pub mod trace_context_service;

/// A loopback port free right now (for a server the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

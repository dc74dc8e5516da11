//! Shared test support.
#![allow(dead_code)]

pub mod capture;
pub mod emulator;
pub mod events;
pub mod examples;
pub mod otlp_receiver;
pub mod process;
pub mod proxy;
#[cfg(all(feature = "http-server", feature = "http-client"))]
pub mod trace_context_service;

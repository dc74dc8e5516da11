//! Shared test support.
#![allow(dead_code)]

pub mod otlp_receiver;
pub mod capture;

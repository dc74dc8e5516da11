//! Shared test support.
#![allow(dead_code)]

pub mod capture;
pub mod otlp_receiver;

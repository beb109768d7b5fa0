//! gamegate: a gRPC gateway to Tencent's game-platform server APIs.
//!
//! Game servers call the services of `proto/gamegate/v1/`; every RPC carries its
//! upstream route as a proto option, and one generic path ([`gateway`]) serves
//! them all: validate against the declared limits, map to the platform's query
//! and body, sign and send through the platform's client ([`platform`]), decode
//! the answer, or map the platform's code to a status with rich error details
//! ([`errors`]).
#![forbid(unsafe_code)]

pub mod callers;
pub mod config;
pub mod errors;
pub mod gateway;
pub mod mapping;
pub mod platform;
pub mod proto;
pub mod routes;
pub mod server;
pub mod token;

pub use gamegate_sandbox as sandbox;

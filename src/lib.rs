//! gamegate: a gRPC gateway to Tencent's game-platform server APIs.
//!
//! Game servers call the services of `proto/gamegate/v1/`; every RPC carries its
//! upstream route as a proto option, and one generic path serves them all. The
//! modules, lowest first (a module uses only those before it; `layering` below
//! checks it):
//!
//! - [`proto`]: the generated types and the descriptor pool; [`metrics`]: the
//!   process's metrics registry, which every layer records into.
//! - [`upstream`]: the HTTP/1.1 client every platform sends through, with its
//!   own error type.
//! - [`net`], [`telemetry`]: accepted connections; logs.
//! - [`config`]: the typed configuration, validated before any port is bound.
//! - [`errors`]: `GatewayError`, and the one table from a reason to a status.
//! - [`plan`]: the declared routes compiled into plans; request mapping and
//!   answer decoding.
//! - [`state`]: the store interface (access tokens) and its in-memory store.
//! - [`auth`]: which callers may call, with which apps.
//! - [`policy`]: retries (later rate limits, breakers).
//! - [`limits`]: calls in flight; the largest request of each route.
//! - [`platform`]: the platform interface, its registry and the three
//!   platforms (signing, envelopes, codes, tokens).
//! - [`core`]: `execute`, the protocol-agnostic path of one call.
//! - [`api`]: the protocol adapters (gRPC; health and reflection); [`admin`]:
//!   the admin HTTP listener (`/metrics`, `/ready`, `/live`).
//! - [`app`]: building, serving and draining from a configuration.
//!
//! Above them all, and only with the `fuzzing` feature: `fuzzing`, what the
//! fuzz targets of `fuzz/` run.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod core;
pub mod errors;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod plan;
pub mod platform;
pub mod policy;
pub mod proto;
pub mod state;
pub mod telemetry;
pub mod upstream;

#[cfg(feature = "sandbox")]
pub use gamegate_sandbox as sandbox;

#[cfg(test)]
mod layering;

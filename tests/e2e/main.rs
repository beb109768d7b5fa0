//! End-to-end tests: the generated Rust client -> a real gamegate -> a real
//! sandbox, each on an ephemeral loopback port.

mod binary;
mod callers;
mod causes;
mod common;
mod connect;
mod dawanka;
mod deadline;
mod env_and_logs;
mod fleet;
mod health_reflection;
mod hostile;
mod idempotency;
mod interop;
mod listener;
mod login;
mod memory;
mod metrics;
mod msdk_auth;
mod msdk_freeflow;
mod msdk_profile;
mod msdk_relation;
mod msdk_share;
mod msdk_support;
mod msdk_wire;
mod operate;
mod protection;
mod readme;
mod secrets;
mod storage;
mod tls;
mod token;
mod tracing;

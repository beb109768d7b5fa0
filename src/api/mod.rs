//! The protocols gamegate speaks to its callers. Each adapter authenticates the
//! caller and reads its deadline from the protocol's own headers, then hands
//! the call to the one core (`core::Core::execute`); none copies the path.
//! Today: gRPC ([`grpc`]), with `grpc.health.v1` and server reflection
//! ([`health`]); ErrorInfo on the statuses gRPC's own layer writes
//! ([`status`]); idempotency keys of writes around the core ([`idempotency`]);
//! Connect ([`connect`]) and gRPC-Web ([`web`]) on the same port, entering
//! the gRPC adapter's path where the decoded message does.

pub mod access;
pub mod codec;
pub mod connect;
pub mod grpc;
pub mod health;
pub mod idempotency;
pub mod status;
pub mod web;
pub mod wire;

pub use self::codec::DynamicCodec;

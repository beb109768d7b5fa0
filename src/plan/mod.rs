//! Plans: what the proto declares about each RPC (its upstream route, how each
//! field maps to the query or the body, its documented limits), compiled once
//! at start, and the two generic halves of every call that execute them:
//! request validation and mapping, answer decoding.
//!
//! Nothing here knows a particular endpoint: adding an RPC means declaring it in
//! the proto (route + field options), teaching the sandbox, and testing it.

#[cfg(test)]
mod conformance;
mod request;
mod response;
mod routes;

pub use self::{
    request::{UpstreamRequest, build_request, rawurlencode},
    response::decode_response,
    routes::{
        EnumMapping, FieldPlan, IssuedSession, Location, MessagePlan, Route, RouteDeclarationError,
        RouteTable, Rules,
    },
};
pub use crate::upstream::Method;

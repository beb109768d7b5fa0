//! End-to-end tests of the sandbox over real sockets: `spawn` on an ephemeral port, reqwest as
//! the client, and a client-side signing implementation of our own (in `common`), pinned to
//! vectors computed with Python.

mod admin;
mod common;
mod faults;
mod minigame;
mod msdk_auth;
mod msdk_client;
mod msdk_groups;
mod msdk_profile;
mod msdk_relation;
mod msdk_share;
mod openapi;

//! The embedded default (builds with the `sandbox` feature): gamegate wired to
//! an in-process sandbox with demo apps, so that a newcomer can call every RPC
//! at once; and the sandbox alone, for a game team's own integration tests.

use std::net::SocketAddr;

use gamegate_sandbox::{self as sandbox, RunningSandbox, SandboxConfig, demo};
use tokio::net::TcpListener;

use super::signal;
use crate::config::Config;

/// Starts the sandbox on a free loopback port and returns the configuration
/// that wires every platform to it.
pub async fn start() -> Result<(RunningSandbox, Config), String> {
    let running = sandbox::spawn(SandboxConfig::demo(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("the embedded sandbox cannot start: {e}"))?;
    let config = Config::demo(
        SocketAddr::from(([127, 0, 0, 1], 50051)),
        &running.base_url(),
    );
    Ok((running, config))
}

/// Runs the sandbox alone until SIGINT/SIGTERM.
pub async fn run_sandbox(listen: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("gamegate sandbox listening on http://{addr} (demo apps; admin API under /_sandbox/)");
    sandbox::Sandbox::new(SandboxConfig::demo())
        .serve(listener, signal::shutdown())
        .await
        .map_err(|e| e.to_string())
}

/// How to call the embedded default, for a person at a terminal.
pub fn print_banner(addr: SocketAddr, sandbox_url: &str) {
    println!(
        r#"gamegate listening on {addr} (gRPC, plaintext), wired to the built-in sandbox at {sandbox_url}

Try it with grpcurl (server reflection is on):
  grpcurl -plaintext {addr} list
  grpcurl -plaintext -d '{{"app_id":"{mg_app}","user":{{"openid":"{mg_openid}","session_key":"{mg_key}"}},"kv_list":[{{"key":"score","value":"100"}}]}}' \
    {addr} gamegate.v1.StorageService/SetUserStorage
  grpcurl -plaintext -d '{{"app_id":"{oa_app}","user":{{"openid":"{oa_openid}","openkey":"{oa_key}"}},"version":"DAWANKA_DATA_VERSION_V2"}}' \
    {addr} gamegate.v1.DawankaService/GetDawankaInfo
  grpcurl -plaintext {addr} grpc.health.v1.Health/Check

Stop with Ctrl-C."#,
        mg_app = demo::MINIGAME_APPID,
        mg_openid = demo::MINIGAME_ALICE_OPENID,
        mg_key = demo::MINIGAME_ALICE_SESSION_KEY,
        oa_app = demo::OPENAPI_APPID,
        oa_openid = demo::OPENAPI_SUPER_OPENID,
        oa_key = demo::OPENAPI_SUPER_OPENKEY,
    );
}

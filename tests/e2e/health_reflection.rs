//! grpc.health.v1, server reflection (v1 and v1alpha), graceful shutdown.

use std::time::Duration;

use serde_json::json;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::Harness;

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let harness = Harness::start().await;
    let mut health = HealthClient::new(harness.channel.clone());
    for service in [
        "",
        "gamegate.v1.StorageService",
        "gamegate.v1.DawankaService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "gamegate.v1.NoSuchService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

macro_rules! reflection_case {
    ($name:ident, $module:ident) => {
        #[tokio::test]
        async fn $name() {
            use tonic_reflection::pb::$module::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let harness = Harness::start().await;
            let mut client = ServerReflectionClient::new(harness.channel.clone());
            let ask = |request: MessageRequest| ServerReflectionRequest {
                host: String::new(),
                message_request: Some(request),
            };
            let requests = vec![
                ask(MessageRequest::ListServices(String::new())),
                ask(MessageRequest::FileContainingSymbol(
                    "gamegate.v1.StorageService".into(),
                )),
                ask(MessageRequest::FileContainingSymbol(
                    "google.rpc.ErrorInfo".into(),
                )),
                ask(MessageRequest::FileContainingSymbol(
                    "grpc.health.v1.Health".into(),
                )),
            ];
            let mut responses = client
                .server_reflection_info(tokio_stream::iter(requests))
                .await
                .expect("reflection answers")
                .into_inner();
            let mut answers = Vec::new();
            while let Some(response) = responses.next().await {
                answers.push(response.expect("reflection response").message_response);
            }
            assert_eq!(answers.len(), 4);
            let Some(MessageResponse::ListServicesResponse(list)) = &answers[0] else {
                panic!("no service list: {:?}", answers[0]);
            };
            let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
            for expected in [
                "gamegate.v1.StorageService",
                "gamegate.v1.DawankaService",
                "grpc.health.v1.Health",
            ] {
                assert!(
                    names.contains(&expected),
                    "{expected} missing from {names:?}"
                );
            }
            for answer in &answers[1..] {
                match answer {
                    Some(MessageResponse::FileDescriptorResponse(files)) => {
                        assert!(!files.file_descriptor_proto.is_empty())
                    }
                    other => panic!("symbol not resolved: {other:?}"),
                }
            }
        }
    };
}

reflection_case!(reflection_v1_lists_and_describes_every_service, v1);
reflection_case!(
    reflection_v1alpha_lists_and_describes_every_service,
    v1alpha
);

#[tokio::test]
async fn shutdown_drains_in_flight_calls() {
    let mut harness = Harness::start().await;
    harness
        .fault(json!({"path": "/v3/user/get_dawanka_info", "latency_ms": 400}))
        .await;
    let mut dawanka = harness.dawanka();
    let in_flight = tokio::spawn(async move {
        dawanka
            .get_dawanka_info(crate::common::super_player_dawanka_info())
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    harness.shutdown_gateway().await;
    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight call finishes");
    assert_eq!(answer.into_inner().score, 3200);
}

//! The README's grpcurl examples work: each `-d` JSON is parsed with the method's
//! descriptor (as grpcurl does through reflection) and invoked on a live gamegate.

use gamegate::{api::DynamicCodec, proto::DESCRIPTOR_POOL};
use prost_reflect::DynamicMessage;
use tonic::client::Grpc;

use crate::common::Harness;

/// (method path, request JSON) of every `grpcurl ... -d '<json>' ... <service>/<method>`.
fn readme_examples() -> Vec<(String, String)> {
    let readme = include_str!("../../README.md").replace("\\\n", " ");
    readme
        .lines()
        .filter(|line| line.trim_start().starts_with("grpcurl") && line.contains(" -d '"))
        .map(|line| {
            let json = line
                .split(" -d '")
                .nth(1)
                .unwrap()
                .split('\'')
                .next()
                .unwrap();
            let method = line.split_whitespace().last().unwrap();
            (method.to_string(), json.to_string())
        })
        .filter(|(method, _)| method.starts_with("gamegate."))
        .collect()
}

#[tokio::test]
async fn readme_grpcurl_examples_succeed() {
    let harness = Harness::start().await;
    let examples = readme_examples();
    // At least one example per gamegate service.
    let services: std::collections::BTreeSet<&str> = examples
        .iter()
        .map(|(method, _)| method.split('/').next().unwrap())
        .collect();
    let served: Vec<_> = DESCRIPTOR_POOL
        .services()
        .filter(|s| s.package_name() == "gamegate.v1")
        .map(|s| s.full_name().to_string())
        .collect();
    for service in &served {
        assert!(
            services.contains(service.as_str()),
            "README has no example of {service}"
        );
    }
    for (method, json) in examples {
        let (service, rpc) = method.split_once('/').unwrap();
        let descriptor = DESCRIPTOR_POOL
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == rpc))
            .unwrap_or_else(|| panic!("README names an unknown method {method}"));
        let mut deserializer = serde_json::Deserializer::from_str(&json);
        let request = DynamicMessage::deserialize(descriptor.input(), &mut deserializer)
            .unwrap_or_else(|e| panic!("README example of {method} is not its request: {e}"));
        let mut grpc = Grpc::new(harness.channel.clone());
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::try_from(format!("/{method}")).unwrap();
        let answer = grpc
            .unary(
                tonic::Request::new(request),
                path,
                DynamicCodec::new(descriptor.output()),
            )
            .await
            .unwrap_or_else(|e| panic!("README example of {method} failed: {e:?}"));
        let _ = answer.into_inner();
    }
}

//! What meshes and tools ask besides the RPCs: `grpc.health.v1` (overall and
//! per routed service) and server reflection, v1 and v1alpha (older grpcurl
//! builds ask v1alpha), describing gamegate's services, health and the
//! `google.rpc` error details.

use tonic::service::RoutesBuilder;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::proto;

/// Adds health and reflection to `builder`; every routed service starts
/// SERVING. The reporter changes their status later.
pub async fn add_services(
    builder: &mut RoutesBuilder,
    services: &[String],
) -> Result<HealthReporter, tonic_reflection::server::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in services {
        reporter
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok(reporter)
}

/// Tells meshes that gamegate is going away: every service and the overall
/// status (`""`) turn NOT_SERVING.
pub async fn announce_not_serving(reporter: &HealthReporter, services: &[String]) {
    for service in services.iter().map(String::as_str).chain([""]) {
        reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
}

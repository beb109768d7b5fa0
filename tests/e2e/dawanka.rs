//! DawankaService end to end against the sandbox's OpenAPI v3 emulation.

use gamegate::proto::{
    DawankaDataVersion, DawankaLevel, GetDawankaInfoRequest, QqGameUser, ReportDawankaPayRequest,
};
use serde_json::json;
use tonic::Code;

use crate::common::{Harness, demo, expect_error};

const INFO_PATH: &str = "/v3/user/get_dawanka_info";
const REPORT_PATH: &str = "/v3/user/report_dawanka_pay";

fn info_request(openid: &str, openkey: &str, version: DawankaDataVersion) -> GetDawankaInfoRequest {
    GetDawankaInfoRequest {
        app_id: demo::OPENAPI_APPID.into(),
        user: Some(QqGameUser {
            openid: openid.into(),
            openkey: openkey.into(),
            pf: String::new(),
            userip: "203.0.113.7".into(),
        }),
        version: version as i32,
    }
}

fn report_request(openid: &str, openkey: &str) -> ReportDawankaPayRequest {
    ReportDawankaPayRequest {
        app_id: demo::OPENAPI_APPID.into(),
        user: Some(QqGameUser {
            openid: openid.into(),
            openkey: openkey.into(),
            pf: "qqgame".into(),
            userip: String::new(),
        }),
    }
}

#[tokio::test]
async fn get_dawanka_info_maps_every_field() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    let info = dawanka
        .get_dawanka_info(info_request(
            demo::OPENAPI_SUPER_OPENID,
            demo::OPENAPI_SUPER_OPENKEY,
            DawankaDataVersion::V2,
        ))
        .await
        .expect("get_dawanka_info succeeds")
        .into_inner();
    assert_eq!(info.score, 3200);
    assert_eq!(info.level(), DawankaLevel::Super);
    assert!(!info.binding);
    assert_eq!(info.discount_percent, 20);
    assert_eq!(info.pay_return_count, 3);
    assert!(!info.is_using_card);
    assert_eq!(info.real_level(), DawankaLevel::Unspecified);
    assert_eq!(info.card_expire_time, None);

    // A potential dawanka on a trial card: visible as such in v2 data only.
    let v2 = dawanka
        .get_dawanka_info(info_request(
            demo::OPENAPI_POTENTIAL_OPENID,
            demo::OPENAPI_POTENTIAL_OPENKEY,
            DawankaDataVersion::V2,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.level(), DawankaLevel::Potential);
    assert!(v2.binding);
    assert!(v2.is_using_card);
    assert_eq!(v2.real_level(), DawankaLevel::Potential);
    assert_eq!(v2.card_expire_time.map(|t| t.seconds), Some(1_893_456_000));
    assert_eq!(v2.pay_return_count, 0);

    let v1 = dawanka
        .get_dawanka_info(info_request(
            demo::OPENAPI_POTENTIAL_OPENID,
            demo::OPENAPI_POTENTIAL_OPENKEY,
            DawankaDataVersion::Unspecified,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.level(), DawankaLevel::None);
}

#[tokio::test]
async fn report_dawanka_pay_counts_down_and_refuses_at_zero() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    for (use_count, left_count) in [(1, 2), (2, 1), (3, 0)] {
        let report = dawanka
            .report_dawanka_pay(report_request(
                demo::OPENAPI_SUPER_OPENID,
                demo::OPENAPI_SUPER_OPENKEY,
            ))
            .await
            .expect("report succeeds while uses are left")
            .into_inner();
        assert_eq!(
            (report.use_count, report.left_count),
            (use_count, left_count)
        );
        assert_eq!(report.msg, "report success.");
    }
    let error = expect_error(
        dawanka
            .report_dawanka_pay(report_request(
                demo::OPENAPI_SUPER_OPENID,
                demo::OPENAPI_SUPER_OPENKEY,
            ))
            .await,
        Code::FailedPrecondition,
        "DAWANKA_NO_BONUS_LEFT",
    );
    assert_eq!(error.domain, "openapi.minigame.qq.com");
    assert_eq!(error.metadata["upstream_code"], "1");
    assert_eq!(error.metadata["endpoint"], REPORT_PATH);

    let info = dawanka
        .get_dawanka_info(info_request(
            demo::OPENAPI_SUPER_OPENID,
            demo::OPENAPI_SUPER_OPENKEY,
            DawankaDataVersion::V2,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.pay_return_count, 0);

    // -1 means unlimited and stays so.
    for _ in 0..3 {
        let report = dawanka
            .report_dawanka_pay(report_request(
                demo::OPENAPI_UNLIMITED_OPENID,
                demo::OPENAPI_UNLIMITED_OPENKEY,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(report.left_count, -1);
    }
}

#[tokio::test]
async fn formats_are_checked_before_the_platform_is_called() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    let cases = [
        (
            report_request(
                demo::OPENAPI_SUPER_OPENID,
                &demo::OPENAPI_SUPER_OPENKEY[..31],
            ),
            "OPENKEY_INVALID_LENGTH",
            "user.openkey",
        ),
        (
            report_request(
                "XYZ55EE03EE6F7CCB31F6CCE75A50A38",
                demo::OPENAPI_SUPER_OPENKEY,
            ),
            "OPENID_INVALID",
            "user.openid",
        ),
        (
            {
                let mut request =
                    report_request(demo::OPENAPI_SUPER_OPENID, demo::OPENAPI_SUPER_OPENKEY);
                request.user.as_mut().unwrap().pf = "qzone".into();
                request
            },
            "PF_UNSUPPORTED",
            "user.pf",
        ),
        (
            ReportDawankaPayRequest {
                app_id: "app-1".into(),
                ..report_request(demo::OPENAPI_SUPER_OPENID, demo::OPENAPI_SUPER_OPENKEY)
            },
            "APPID_INVALID",
            "app_id",
        ),
    ];
    for (request, reason, field) in cases {
        let error = expect_error(
            dawanka.report_dawanka_pay(request).await,
            Code::InvalidArgument,
            reason,
        );
        assert_eq!(error.bad_request_fields(), vec![field]);
        assert_eq!(error.domain, "gamegate");
    }
    assert_eq!(harness.requests(REPORT_PATH).await, 0);
}

#[tokio::test]
async fn the_platform_refuses_wrong_user_credentials() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    // 32 bytes, but not this user's openkey.
    let error = expect_error(
        dawanka
            .get_dawanka_info(info_request(
                demo::OPENAPI_SUPER_OPENID,
                demo::OPENAPI_UNLIMITED_OPENKEY,
                DawankaDataVersion::V2,
            ))
            .await,
        Code::Unauthenticated,
        "OPENKEY_INVALID",
    );
    assert_eq!(error.metadata["upstream_code"], "2000023");
    assert!(!error.message.contains(demo::OPENAPI_UNLIMITED_OPENKEY));

    // A well-formed openid the platform does not know.
    let error = expect_error(
        dawanka
            .get_dawanka_info(info_request(
                "00000000000000000000000000000000",
                demo::OPENAPI_SUPER_OPENKEY,
                DawankaDataVersion::V2,
            ))
            .await,
        Code::InvalidArgument,
        "OPENID_INVALID",
    );
    assert_eq!(error.metadata["upstream_code"], "2000021");
}

#[tokio::test]
async fn a_wrong_appkey_is_gamegates_own_problem() {
    let harness = Harness::start_with(|config| {
        let platform = config.qq_openapi.as_mut().unwrap();
        platform.apps.get_mut(demo::OPENAPI_APPID).unwrap().appkey =
            secrecy::SecretString::from("not-the-appkey");
    })
    .await;
    let error = expect_error(
        harness
            .dawanka()
            .get_dawanka_info(info_request(
                demo::OPENAPI_SUPER_OPENID,
                demo::OPENAPI_SUPER_OPENKEY,
                DawankaDataVersion::V2,
            ))
            .await,
        Code::Internal,
        "SIGNATURE_REJECTED",
    );
    assert_eq!(error.metadata["upstream_code"], "2000024");
    assert!(!error.message.contains("not-the-appkey"));
}

#[tokio::test]
async fn every_documented_ret_code_is_mapped() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    let cases = [
        (2000001, Code::InvalidArgument, "APPID_INVALID"),
        (2000002, Code::InvalidArgument, "OPENID_INVALID"),
        (2000003, Code::InvalidArgument, "OPENKEY_INVALID_LENGTH"),
        (2000004, Code::Internal, "SIGNATURE_REJECTED"),
        (2000005, Code::Unauthenticated, "OPENKEY_INVALID"),
        (2000006, Code::Internal, "SIGNATURE_REJECTED"),
        (2000007, Code::Unauthenticated, "AUTHENTICATION_FAILED"),
        (2000020, Code::InvalidArgument, "APPID_INVALID"),
        (2000021, Code::InvalidArgument, "OPENID_INVALID"),
        (2000022, Code::Unauthenticated, "OPENKEY_INVALID"),
        (2000023, Code::Unauthenticated, "OPENKEY_INVALID"),
        (2000024, Code::Internal, "SIGNATURE_REJECTED"),
        (2000025, Code::Unauthenticated, "AUTHENTICATION_FAILED"),
        (2000030, Code::Unavailable, "UPSTREAM_BUSY"),
        (4242, Code::Unknown, "UPSTREAM_UNKNOWN_CODE"),
    ];
    for (code, grpc_code, reason) in cases {
        harness
            .fault(json!({"path": REPORT_PATH, "code": code}))
            .await;
        let error = expect_error(
            dawanka
                .report_dawanka_pay(report_request(
                    demo::OPENAPI_UNLIMITED_OPENID,
                    demo::OPENAPI_UNLIMITED_OPENKEY,
                ))
                .await,
            grpc_code,
            reason,
        );
        assert_eq!(error.metadata["upstream_code"], code.to_string(), "{code}");
        assert_eq!(error.domain, "openapi.minigame.qq.com");
    }
}

#[tokio::test]
async fn reads_are_retried_after_a_busy_answer_but_reports_are_not() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    harness
        .fault(json!({"path": INFO_PATH, "busy": true}))
        .await;
    let info = dawanka
        .get_dawanka_info(info_request(
            demo::OPENAPI_SUPER_OPENID,
            demo::OPENAPI_SUPER_OPENKEY,
            DawankaDataVersion::V2,
        ))
        .await
        .expect("the read is retried after the busy answer")
        .into_inner();
    assert_eq!(info.score, 3200);
    assert_eq!(harness.requests(INFO_PATH).await, 2);

    harness
        .fault(json!({"path": REPORT_PATH, "busy": true}))
        .await;
    let error = expect_error(
        dawanka
            .report_dawanka_pay(report_request(
                demo::OPENAPI_SUPER_OPENID,
                demo::OPENAPI_SUPER_OPENKEY,
            ))
            .await,
        Code::Unavailable,
        "UPSTREAM_BUSY",
    );
    assert!(error.retry_delay().is_some());
    assert_eq!(harness.requests(REPORT_PATH).await, 1);
    let state = harness
        .dawanka_state(demo::OPENAPI_APPID, demo::OPENAPI_SUPER_OPENID)
        .await;
    assert_eq!(
        state["pay_return_count"], 3,
        "a refused report changes nothing"
    );
}

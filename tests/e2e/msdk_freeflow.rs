//! FreeFlowService end to end against the sandbox's MSDK `freeflow` emulation:
//! a user's free-flow subscription with the game's lists per carrier, and the
//! carrier and region of an IP address (given, or the caller's network's).

use gamegate::proto::free_flow_service_client::FreeFlowServiceClient;
use gamegate::proto::{FreeFlowCarrier, GetFreeFlowInfoRequest, GetIpInfoRequest};
use tonic::{Code, transport::Channel};

use crate::common::{Harness, demo, expect_error};
use crate::msdk_support::{QQ, WX, assert_local, assert_upstream, ext, requests, total_requests};

const GETINFO_PATH: &str = "/freeflow/getinfo";
const CCINFO_PATH: &str = "/freeflow/get_ccinfo";
const UNKNOWN: &str = "unknown";

fn freeflow(harness: &Harness) -> FreeFlowServiceClient<Channel> {
    FreeFlowServiceClient::new(harness.channel.clone())
}

fn info_request(app_id: &str, openid: &str) -> GetFreeFlowInfoRequest {
    GetFreeFlowInfoRequest {
        app_id: app_id.into(),
        openid: openid.into(),
        options: None,
    }
}

fn ip_request(ip: &str) -> GetIpInfoRequest {
    GetIpInfoRequest {
        app_id: QQ.into(),
        openid: demo::MSDK_QQ_ALICE_OPENID.into(),
        ip: ip.into(),
        options: None,
    }
}

#[tokio::test]
async fn free_flow_info_per_user_and_carrier() {
    let harness = Harness::start().await;
    let mut client = freeflow(&harness);

    let mut request = info_request(QQ, demo::MSDK_QQ_ALICE_OPENID);
    request.options = ext("ff");
    let answer = client
        .get_free_flow_info(request)
        .await
        .expect("freeflow/getinfo succeeds")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "ff");
    let alice = answer.free_flow_info.expect("freeFlowInfo");
    assert!(alice.is_free);
    assert_eq!(alice.carrier(), FreeFlowCarrier::ChinaTelecom);
    assert_eq!(alice.ip_list, "msdk.qq.com,203.205.128.0/19");
    assert_eq!(alice.unicom_list, "lt.msdk.qq.com,112.90.0.0/16");
    assert_eq!(alice.telecom_list, "dx.msdk.qq.com,59.37.0.0/16");
    assert_eq!(alice.mobile_list, "yd.msdk.qq.com,120.204.0.0/16");
    assert_eq!(alice.expire, 3600);

    let carrier_of = |info: Option<gamegate::proto::FreeFlowInfo>| {
        let info = info.expect("freeFlowInfo");
        (info.is_free, info.carrier())
    };
    let bob = client
        .get_free_flow_info(info_request(QQ, demo::MSDK_QQ_BOB_OPENID))
        .await
        .unwrap()
        .into_inner();
    // ccType 0 is China Unicom, a value like the others (not "unset").
    assert_eq!(
        carrier_of(bob.free_flow_info),
        (false, FreeFlowCarrier::ChinaUnicom)
    );
    let carol = client
        .get_free_flow_info(info_request(QQ, demo::MSDK_QQ_CAROL_OPENID))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        carrier_of(carol.free_flow_info),
        (true, FreeFlowCarrier::ChinaMobile)
    );
    // A WeChat user of the WeChat app.
    let wx = client
        .get_free_flow_info(info_request(WX, demo::MSDK_WX_ALICE_OPENID))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        carrier_of(wx.free_flow_info),
        (true, FreeFlowCarrier::ChinaUnicom)
    );
    assert_eq!(requests(&harness, GETINFO_PATH).await, 4);

    // Not a player of the app: -1001.
    let error = expect_error(
        client
            .get_free_flow_info(info_request(QQ, "0123456789ABCDEF0123456789ABCDEF"))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1001, GETINFO_PATH);

    // Guests have no free flow: -901.
    let error = expect_error(
        client
            .get_free_flow_info(info_request(
                demo::MSDK_GUEST_APPID,
                demo::MSDK_GUEST_OPENID,
            ))
            .await,
        Code::PermissionDenied,
        "GUEST_NOT_ALLOWED",
    );
    assert_upstream(&error, -901, GETINFO_PATH);

    // No openid: refused locally.
    let before = total_requests(&harness).await;
    let error = expect_error(
        client.get_free_flow_info(info_request(QQ, "")).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["openid"]);
    assert_eq!(total_requests(&harness).await, before);
}

#[tokio::test]
async fn ip_info_of_a_given_address_or_the_callers() {
    let harness = Harness::start().await;
    let mut client = freeflow(&harness);

    // The seed's example address.
    let mut request = ip_request("59.37.125.72");
    request.options = ext("ip");
    let answer = client
        .get_ip_info(request)
        .await
        .expect("freeflow/get_ccinfo succeeds")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "ip");
    let info = answer.ip_info.expect("data");
    assert_eq!(info.country, "중국");
    assert_eq!(info.province, "광동성");
    assert_eq!(info.city, "션전시");
    assert_eq!(info.district, "난샨구");
    assert_eq!(info.carrier, "차이나 텔레콤");
    assert_eq!(info.apn, UNKNOWN);
    assert_eq!(info.net_type, UNKNOWN);
    assert_eq!(info.extend_info, UNKNOWN);

    let shanghai = client
        .get_ip_info(ip_request("120.204.17.3"))
        .await
        .unwrap()
        .into_inner()
        .ip_info
        .expect("data");
    assert_eq!(
        (
            shanghai.province.as_str(),
            shanghai.district.as_str(),
            shanghai.carrier.as_str()
        ),
        ("상하이시", "푸둥신구", "차이나 모바일")
    );

    // No ip: the requesting network's, gamegate's loopback here, which nobody knows.
    let own = client
        .get_ip_info(ip_request(""))
        .await
        .expect("get_ccinfo without ip succeeds")
        .into_inner()
        .ip_info
        .expect("data");
    assert_eq!(
        [
            own.country.as_str(),
            own.province.as_str(),
            own.city.as_str(),
            own.carrier.as_str()
        ],
        [UNKNOWN; 4]
    );

    // Not an IP address: -1001.
    let error = expect_error(
        client.get_ip_info(ip_request("59.37.125")).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1001, CCINFO_PATH);
    assert_eq!(requests(&harness, CCINFO_PATH).await, 4);

    // No openid: refused locally.
    let mut request = ip_request("59.37.125.72");
    request.openid = String::new();
    let error = expect_error(
        client.get_ip_info(request).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["openid"]);
    assert_eq!(requests(&harness, CCINFO_PATH).await, 4);
}

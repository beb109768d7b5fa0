//! MSDK `freeflow` module: a user's free-flow (carrier zero-rating) information and IP address
//! information. The seed's examples send no body: the openid (and `get_ccinfo`'s `ip`) may come
//! in the URL.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use serde_json::{Map, Value, json};

use super::{Call, Credential, Interface, MsdkError, MsdkState, Scope, object};

/// What the sandbox answers for an address it has no information about, and the documented
/// default of `apn`, `extend` and `nettype`.
const UNKNOWN: &str = "unknown";

const fn freeflow(path: &'static str, handler: super::Handler) -> Interface {
    Interface {
        path,
        scope: Scope::Player,
        credential: Credential::PlayerFromUrl,
        message_key: "msg",
        success: "success",
        reports_loss: false,
        handler,
    }
}

pub(super) const INTERFACES: &[Interface] = &[
    freeflow("/freeflow/getinfo", getinfo),
    freeflow("/freeflow/get_ccinfo", get_ccinfo),
];

/// The sandbox's IP database: IPv4 networks and what `get_ccinfo` answers for them (country,
/// province, city, district, carrier), in the seed's language. Every other address answers
/// `unknown` everywhere.
const IP_NETWORKS: &[([u8; 4], u8, [&str; 5])] = &[
    (
        [59, 37, 0, 0],
        16,
        ["중국", "광동성", "션전시", "난샨구", "차이나 텔레콤"],
    ),
    (
        [112, 90, 0, 0],
        16,
        ["중국", "광동성", "광저우시", "톈허구", "차이나 유니콤"],
    ),
    (
        [120, 204, 0, 0],
        16,
        ["중국", "상하이시", "상하이시", "푸둥신구", "차이나 모바일"],
    ),
];

fn getinfo(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let user = state
        .user(call.appid(), &call.openid)
        .ok_or(MsdkError::Invalid("openid"))?;
    let lists = &call.app.freeflow;
    Ok(object([(
        "freeFlowInfo",
        json!({
            "ipList": lists.ip_list,
            "isFree": i32::from(user.freeflow.is_free),
            "ccType": user.freeflow.cc_type,
            "ltList": lists.lt_list,
            "dxList": lists.dx_list,
            "ydList": lists.yd_list,
            "expire": lists.expire,
        }),
    )]))
}

/// The information of `ip` (body or URL), else of the requesting client's address.
fn get_ccinfo(_: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let ip = match call.opt_str("ip")? {
        Some(ip) => ip,
        None => call.client_ip.clone().ok_or(MsdkError::Invalid("ip"))?,
    };
    let ip: IpAddr = ip.trim().parse().map_err(|_| MsdkError::Invalid("ip"))?;
    let [country, province, city, district, oper] = lookup(ip).unwrap_or([UNKNOWN; 5]);
    Ok(object([(
        "data",
        json!({
            "apn": UNKNOWN,
            "city": city,
            "country": country,
            "district": district,
            "extend": UNKNOWN,
            "nettype": UNKNOWN,
            "oper": oper,
            "province": province,
        }),
    )]))
}

/// The requesting client's address: the first `X-Forwarded-For` entry (a proxy in front of the
/// sandbox), else the TCP peer (known when the sandbox's own server loop serves the request).
pub(super) fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_string())
        })
}

fn lookup(ip: IpAddr) -> Option<[&'static str; 5]> {
    let IpAddr::V4(ip) = ip else {
        return None;
    };
    let ip = u32::from(ip);
    IP_NETWORKS
        .iter()
        .find(|(network, prefix, _)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
            ip & mask == u32::from_be_bytes(*network) & mask
        })
        .map(|(_, _, info)| *info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let at = |ip: &str| lookup(ip.parse().unwrap()).map(|info| info[2]);
        assert_eq!(at("59.37.125.72"), Some("션전시"));
        assert_eq!(at("59.37.0.0"), Some("션전시"));
        assert_eq!(at("59.38.0.1"), None);
        assert_eq!(at("120.204.1.2"), Some("상하이시"));
        assert_eq!(at("127.0.0.1"), None);
        assert_eq!(at("::1"), None);
    }
}

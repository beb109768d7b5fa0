use gamegate_sandbox::demo;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn dawanka_info_v1_and_v2() {
    let h = start().await;
    let answer = h.openapi(DAWANKA_INFO, &super_player()).await;
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "", "score": 3200, "level": 2, "binding": false, "discount": 20,
               "payReturnCount": 3, "isUsingCard": false})
    );

    let potential = player(
        demo::OPENAPI_POTENTIAL_OPENID,
        demo::OPENAPI_POTENTIAL_OPENKEY,
    );
    // v1 data has no potential level: reported as 0, and so is the card's real level.
    let v1 = h.openapi(DAWANKA_INFO, &potential).await;
    assert_eq!(
        v1,
        json!({"ret": 0, "msg": "", "score": 150, "level": 0, "binding": true, "discount": 5,
               "payReturnCount": 0, "isUsingCard": true, "realLevel": 0,
               "CardExpireTs": 1_893_456_000})
    );
    let mut v2_params = potential.clone();
    v2_params.push(("version", "2"));
    let v2 = h.openapi(DAWANKA_INFO, &v2_params).await;
    assert_eq!(v2["level"], 3);
    assert_eq!(v2["realLevel"], 3);
    assert_eq!(v2["CardExpireTs"], 1_893_456_000);
    // Any other version is v1.
    let mut v3_params = potential;
    v3_params.push(("version", "3"));
    assert_eq!(h.openapi(DAWANKA_INFO, &v3_params).await["level"], 0);
}

#[tokio::test]
async fn values_that_need_encoding_are_signed_decoded() {
    let h = start().await;
    let mut params = super_player();
    params.extend([
        ("format", "json"),
        ("userip", "203.0.113.7"),
        ("note", "a b/c~+&="),
        ("version", "2"),
    ]);
    assert_eq!(h.openapi(DAWANKA_INFO, &params).await["ret"], 0);

    // A space sent as '+' (form encoding) decodes to the same value.
    let sig = openapi_sig(
        demo::OPENAPI_APPKEY,
        DAWANKA_INFO,
        &[
            ("appid", demo::OPENAPI_APPID),
            ("openid", demo::OPENAPI_SUPER_OPENID),
            ("openkey", demo::OPENAPI_SUPER_OPENKEY),
            ("pf", "qqgame"),
            ("note", "a b"),
        ],
    );
    let url = format!(
        "{DAWANKA_INFO}?appid={}&openid={}&openkey={}&pf=qqgame&note=a+b&sig={}",
        demo::OPENAPI_APPID,
        demo::OPENAPI_SUPER_OPENID,
        demo::OPENAPI_SUPER_OPENKEY,
        enc(&sig)
    );
    assert_eq!(h.get_json(&url).await["ret"], 0);
}

#[tokio::test]
async fn report_pay_decrements_to_zero_then_refuses() {
    let h = start().await;
    for (used, left) in [(1, 2), (2, 1), (3, 0)] {
        assert_eq!(
            h.openapi(DAWANKA_PAY, &super_player()).await,
            json!({"ret": 0, "msg": "report success.", "use": used, "left": left})
        );
    }
    let refused = h.openapi(DAWANKA_PAY, &super_player()).await;
    assert_eq!(refused["ret"], 1);
    assert!(refused.get("use").is_none());
    assert_eq!(
        h.openapi(DAWANKA_INFO, &super_player()).await["payReturnCount"],
        0
    );
    let state = h
        .get_json(&format!(
            "/_sandbox/openapi/users?appid={}&openid={}",
            demo::OPENAPI_APPID,
            demo::OPENAPI_SUPER_OPENID
        ))
        .await;
    assert_eq!(state["used"], 3, "the refusal changed nothing");
    assert_eq!(state["pay_return_count"], 0);
}

#[tokio::test]
async fn unlimited_report_pay_stays_unlimited() {
    let h = start().await;
    let params = player(
        demo::OPENAPI_UNLIMITED_OPENID,
        demo::OPENAPI_UNLIMITED_OPENKEY,
    );
    for used in 1..=3 {
        assert_eq!(
            h.openapi(DAWANKA_PAY, &params).await,
            json!({"ret": 0, "msg": "report success.", "use": used, "left": -1})
        );
    }
}

#[tokio::test]
async fn openapi_error_codes_in_order() {
    let h = start().await;
    let key = demo::OPENAPI_APPKEY;
    let with = |name: &'static str, value: &'static str| {
        let mut params: Vec<_> = super_player()
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect();
        params.push((name, value));
        params
    };
    let without = |name: &'static str| -> Vec<_> {
        super_player()
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect()
    };
    let signed = |params: Vec<(&str, &str)>| openapi_path(key, DAWANKA_INFO, &params);
    let cases: Vec<(String, i64)> = vec![
        (signed(without("appid")), 2_000_001),
        (signed(with("appid", "123")), 2_000_001),
        (signed(without("openid")), 2_000_002),
        (
            signed(with("openid", "AB055EE03EE6F7CCB31F6CCE75A50A3")),
            2_000_002,
        ),
        (
            signed(with("openid", "ZZ055EE03EE6F7CCB31F6CCE75A50A38")),
            2_000_002,
        ),
        (signed(without("openkey")), 2_000_003),
        (
            signed(with("openkey", "CC11B9096D458AEFDEF72981AE5A136")),
            2_000_003,
        ),
        // sig missing, and sig not base64.
        (
            signed(super_player())
                .split("&sig=")
                .next()
                .unwrap()
                .to_owned(),
            2_000_004,
        ),
        (
            format!(
                "{}&sig=!!!notbase64",
                signed(super_player()).split("&sig=").next().unwrap()
            ),
            2_000_004,
        ),
        // Signed with another appkey; signed for another path.
        (
            openapi_path("wrong-appkey", DAWANKA_INFO, &super_player()),
            2_000_024,
        ),
        (
            openapi_path(key, DAWANKA_PAY, &super_player()).replace(DAWANKA_PAY, DAWANKA_INFO),
            2_000_024,
        ),
        (signed(with("pf", "qzone")), 2_000_025),
        (
            signed(with("openid", "00000000000000000000000000000000")),
            2_000_021,
        ),
        (
            signed(with("openkey", "00000000000000000000000000000000")),
            2_000_023,
        ),
        // Another player's valid openkey is still not this player's.
        (
            signed(with("openkey", demo::OPENAPI_UNLIMITED_OPENKEY)),
            2_000_023,
        ),
    ];
    for (path, code) in cases {
        let answer = h.get_json(&path).await;
        assert_eq!(answer["ret"], code, "{path}: {answer}");
        assert!(answer["msg"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A parameter added after signing breaks the signature.
    let tampered = format!("{}&version=2", signed(super_player()));
    assert_eq!(h.get_json(&tampered).await["ret"], 2_000_024);
}

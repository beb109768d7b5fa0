//! MSDK `auth` module (alias `wxoauth`): login-state checks and pf/pfkey.

use serde_json::{Map, Value, json};

use super::{Call, Credential, Interface, MsdkError, MsdkState, Scope, md5_hex, object};

pub(super) const INTERFACES: &[Interface] = &[
    Interface {
        path: "/auth/verify_login",
        scope: Scope::Qq,
        credential: Credential::Openkey,
        message_key: "msg",
        success: "user is logged in",
        reports_loss: false,
        handler: logged_in,
    },
    Interface {
        path: "/auth/check_token",
        scope: Scope::Wechat,
        credential: Credential::AccessToken,
        message_key: "msg",
        success: "ok",
        reports_loss: false,
        handler: logged_in,
    },
    Interface {
        path: "/auth/guest_check_token",
        scope: Scope::Guest,
        credential: Credential::Guest,
        message_key: "msg",
        success: "ok",
        reports_loss: false,
        handler: logged_in,
    },
    Interface {
        path: "/auth/get_pfval",
        scope: Scope::Any,
        credential: Credential::PayToken,
        message_key: "msg",
        success: "ok",
        reports_loss: false,
        handler: get_pfval,
    },
];

/// The three token checks: reaching the handler means the login state is valid.
fn logged_in(_: &mut MsdkState, _: &Call) -> Result<Map<String, Value>, MsdkError> {
    Ok(Map::new())
}

/// pf is the seed example's layout,
/// `<platform>-<regChannel>-<os>-<installchannel>-<qq|wx|guest>-<appid>-<openid>`; pfkey is
/// lowercase hex `md5(appkey + pf + offerid)`: deterministic, and derivable only by whoever
/// holds the appkey (as the payment backend that checks it does).
fn get_pfval(_: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let platform = call.req_str("platform")?;
    let reg_channel = call.req_str("regChannel")?;
    let os = call.req_str("os")?;
    let install_channel = call.req_str("installchannel")?;
    let offerid = call.opt_str("offerid")?.unwrap_or_default();
    let pf = format!(
        "{platform}-{reg_channel}-{os}-{install_channel}-{}-{}-{}",
        call.app.platform.pf_name(),
        call.appid(),
        call.openid
    );
    let pfkey = md5_hex(&[
        call.app.appkey.as_bytes(),
        pf.as_bytes(),
        offerid.as_bytes(),
    ]);
    // The table names the field `pfkey` (the example shows `pfKey`); the table wins.
    Ok(object([("pf", json!(pf)), ("pfkey", json!(pfkey))]))
}

//! The demo fixture's values, public so that gamegate can build its default configuration (which
//! talks to an in-process sandbox) from the same constants.
//!
//! These are demo credentials, known to everyone; never use them against the real platforms.

/// Demo QQ mini-game app.
pub const MINIGAME_APPID: &str = "1112345678";
pub const MINIGAME_SECRET: &str = "demo-minigame-app-secret";

/// Demo mini-game player "alice". The session_key looks like base64 on purpose: the platform signs
/// with the string itself, and a client that decodes it first gets -100050007.
pub const MINIGAME_ALICE_OPENID: &str = "A0B1C2D3E4F5061728394A5B6C7D8E9F";
pub const MINIGAME_ALICE_SESSION_KEY: &str = "HyVFkGl5F5OQWJZZaNzBBg==";

/// Demo mini-game player "bob".
pub const MINIGAME_BOB_OPENID: &str = "0F1E2D3C4B5A69788796A5B4C3D2E1F0";
pub const MINIGAME_BOB_SESSION_KEY: &str = "rOJ7yU0p6X3zkI1Sx9wQ2g==";

/// Demo QQ Game OpenAPI v3 app (the appid of the dawanka document's examples).
pub const OPENAPI_APPID: &str = "1110766236";
pub const OPENAPI_APPKEY: &str = "demo-openapi-appkey";

/// Super dawanka (level 2), 3 top-up bonus uses left (the document's example player).
pub const OPENAPI_SUPER_OPENID: &str = "AB055EE03EE6F7CCB31F6CCE75A50A38";
pub const OPENAPI_SUPER_OPENKEY: &str = "CC11B9096D458AEFDEF72981AE5A136D";

/// Potential dawanka (level 3, visible only with version=2), using a privilege card, no uses left.
pub const OPENAPI_POTENTIAL_OPENID: &str = "5E1F0A2B3C4D5E6F708192A3B4C5D6E7";
pub const OPENAPI_POTENTIAL_OPENKEY: &str = "0123456789ABCDEF0123456789ABCDEF";

/// Dawanka (level 1) with unlimited top-up bonus uses.
pub const OPENAPI_UNLIMITED_OPENID: &str = "F00DF00DF00DF00DF00DF00DF00DF00D";
pub const OPENAPI_UNLIMITED_OPENKEY: &str = "FEEDFACEFEEDFACEFEEDFACEFEEDFACE";

// MSDK (seed 002). The fixture itself is `src/msdk/fixture.json`; these constants repeat its ids
// and secrets (a unit test keeps the two in step). Several openids and tokens are the seed's own
// example values, so that the document's examples run against the sandbox as they are.

/// Demo Mobile QQ app (the seed's example appid).
pub const MSDK_QQ_APPID: &str = "100703379";
pub const MSDK_QQ_MSDKKEY: &str = "demo-msdk-qq-key-0001";
pub const MSDK_QQ_APPKEY: &str = "demo-msdk-qq-appkey";

/// Demo WeChat app (the seed's example appid).
pub const MSDK_WX_APPID: &str = "wxcde873f99466f74a";
pub const MSDK_WX_MSDKKEY: &str = "demo-msdk-wx-key-0001";
pub const MSDK_WX_APPKEY: &str = "demo-msdk-wx-appkey";

/// Guest mode of the QQ app: same keys as [`MSDK_QQ_APPID`].
pub const MSDK_GUEST_APPID: &str = "G_100703379";

/// QQ "Alice": female, yellow diamond level 5 (annual), QQ VIP level 6 (annual) and SVIP, friends
/// with Bob (close friend) and Carol, three QQ friends not registered in the app, owner of the
/// unbound group [`MSDK_QQ_EXISTING_GC`].
pub const MSDK_QQ_ALICE_OPENID: &str = "A3284A812ECA15269F85AE1C2D94EB37";
pub const MSDK_QQ_ALICE_TOKEN: &str = "933FE8C9AB9C585D7EABD04373B7155F";
/// Alice's pay token, what `/auth/get_pfval` takes as `accessToken` for QQ.
pub const MSDK_QQ_ALICE_PAY_TOKEN: &str = "5D2C8A41E7B94F06A1C3D5E7F9082B4C";

/// QQ "Bob": male, expired QQ VIP, friends with Alice and Carol, member of Alice's group.
pub const MSDK_QQ_BOB_OPENID: &str = "69FF99F3B17436F2F6621FA158B30549";
pub const MSDK_QQ_BOB_TOKEN: &str = "964EE8FACFA24AE88AEEEEBD84028E19";

/// QQ "Carol": female, no 100×100 avatar, yellow diamond level 2, SVIP only.
pub const MSDK_QQ_CAROL_OPENID: &str = "DB8830DFD91050D6BD9CFAC29121C98B";
pub const MSDK_QQ_CAROL_TOKEN: &str = "E16A9965C446956D89303747C632C27B";

/// QQ "Dave": a player of the app with no friends in it (a stranger to the others).
pub const MSDK_QQ_DAVE_OPENID: &str = "B9EEA5EE1E99694146AC2700BFE6B88B";
pub const MSDK_QQ_DAVE_TOKEN: &str = "C9A1F622B7B4AAC48D0AF3F73B1A3D83";

/// QQ "Erin": changed her QQ password; every token check answers the re-auth error.
pub const MSDK_QQ_ERIN_OPENID: &str = "F4382318AFBBD94F856E866043C3472E";
pub const MSDK_QQ_ERIN_TOKEN: &str = "B8C0CB75299FFEA623D766073BE5BC99";

/// A QQ group Alice created in QQ before the sandbox started: not bound to any guild.
pub const MSDK_QQ_EXISTING_GC: &str = "514915385";

/// WeChat "Alice": friends with Bob and Carol, Woka privilege, member of [`MSDK_WX_GROUP_ID`].
pub const MSDK_WX_ALICE_OPENID: &str = "oGRTijiaT-XrbyXKozckdNHFgPyc";
pub const MSDK_WX_ALICE_TOKEN: &str = "OezXcEiiBSKSxW0eoylIeLl3C6OgXeyrDnhDI73sCBJPLafWudG-idTVMbKesBkhBO_ZxFWN4zlXCpCHpYcrXNG6Vs-cocorhdT5Czj_23QF6D1qH8MCldg0BSMdEUnsaWcFH083zgWJcl_goeBUSQ";

/// WeChat "Bob": friends with Alice, member of [`MSDK_WX_GROUP_ID`].
pub const MSDK_WX_BOB_OPENID: &str = "oGRTijrV0l67hDGN7dstOl8CphN0";
pub const MSDK_WX_BOB_TOKEN: &str = "OezXcEiiBSKSxW0eoylIeLl3C6OgXeyrDnhDI73sCBJYyBcXKXYWTlxU_BAMfu7Rzsr51Nu-CarhcPT6zYlD9FrWRzuA0ccQMgrTGqpao2Ccq_dcbciAvC8frI3gYk5d2p6pDFy-bOqyPTNysUxOQg";

/// WeChat "Carol": friends with Alice, no avatar, sex not set.
pub const MSDK_WX_CAROL_OPENID: &str = "oGRTijlTxQPrvr-H5-pgoZMhZgog";
pub const MSDK_WX_CAROL_TOKEN: &str = "OezXcEiiBSKSxW0eoylIeLl3C6OgXeyrDnhDI73sCBJPLafWudG-idTVMbKesBkhaKJhRmjhioMlDM_zBq_SxfYO2jdJKzAR6DSHL5-02O6oATRKHf57K-teO6bPsB1RHjH5Z0I1TzMn4DllSYrf3Q";

/// WeChat "Dave": a player with no friends in the app.
pub const MSDK_WX_DAVE_OPENID: &str = "oGRTijuUl6Peo6lybWyGQfNC9_WE";
pub const MSDK_WX_DAVE_TOKEN: &str =
    "-2aMHhqC8Mmqsuw_1h3Fd_VRb232WayUbBmrtSnPNiHAOqvNN8oUU8tnMgkZOyEmcqpwDtMuyj63aeVywIAASg";

/// The guild WeChat group of the seed's example (`groupid` is the guild id), members Alice and
/// Bob.
pub const MSDK_WX_GROUP_ID: &str = "mt2group";

/// The guest of [`MSDK_GUEST_APPID`].
pub const MSDK_GUEST_OPENID: &str = "G_5F1A0C2E3D4B59687A8B9CADBECFD0E1";
pub const MSDK_GUEST_TOKEN: &str = "7D3C2B1A09F8E7D6C5B4A39281706F5E";

/// The Tencent Video channel of both demo apps (the seed's example channel id): the body
/// signature of `/profile/qqget_video_vip` and `/profile/wxget_video_vip` uses its secret.
pub const MSDK_VIDEO_CHANNEL_ID: i64 = 30012;
pub const MSDK_VIDEO_CHANNEL_SECRET: &str = "demo-video-channel-secret";

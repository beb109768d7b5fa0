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

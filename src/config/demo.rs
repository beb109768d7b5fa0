//! The configuration of the embedded default: every platform wired to the
//! sandbox with its demo apps (builds with the `sandbox` feature only, so that
//! a production build holds no demo secret).

use std::{collections::BTreeMap, net::SocketAddr};

use gamegate_sandbox::demo;
use secrecy::SecretString;

use super::{
    Config, Limits, ListenerLimits, MiniGameApp, MiniGamePlatform, MsdkApp, MsdkPlatform,
    OpenApiApp, OpenApiPlatform, default_max_answer_bytes, default_minigame_budget_ms,
    default_msdk_budget_ms, default_msdk_encode, default_openapi_budget_ms,
    default_shutdown_grace_ms,
};

impl Config {
    /// The configuration `gamegate` runs with when given none: every platform
    /// wired to the in-process sandbox at `sandbox_url`, with its demo apps.
    pub fn demo(listen: SocketAddr, sandbox_url: &str) -> Config {
        Config {
            listen,
            admin_listen: None,
            // One developer at a terminal, no load balancer to tell.
            drain_delay_ms: 0,
            shutdown_grace_ms: default_shutdown_grace_ms(),
            log_format: None,
            log_openid: false,
            limits: Limits::default(),
            listener: ListenerLimits::default(),
            callers: Vec::new(),
            tls: None,
            store: None,
            telemetry: Default::default(),
            qq_minigame: Some(MiniGamePlatform {
                base_url: sandbox_url.to_string(),
                budget_ms: default_minigame_budget_ms(),
                session_max_age_secs: super::default_session_max_age_secs(),
                return_session_keys: false,
                max_answer_bytes: default_max_answer_bytes(),
                upstream: Default::default(),
                rate_limits: Default::default(),
                circuit: Default::default(),
                apps: BTreeMap::from([(
                    demo::MINIGAME_APPID.to_string(),
                    MiniGameApp {
                        secret: SecretString::from(demo::MINIGAME_SECRET),
                        secret_file: None,
                    },
                )]),
            }),
            qq_openapi: Some(OpenApiPlatform {
                base_url: sandbox_url.to_string(),
                budget_ms: default_openapi_budget_ms(),
                max_answer_bytes: default_max_answer_bytes(),
                upstream: Default::default(),
                rate_limits: Default::default(),
                circuit: Default::default(),
                apps: BTreeMap::from([(
                    demo::OPENAPI_APPID.to_string(),
                    OpenApiApp {
                        appkey: SecretString::from(demo::OPENAPI_APPKEY),
                        appkey_file: None,
                    },
                )]),
            }),
            msdk: Some(MsdkPlatform {
                base_url: sandbox_url.to_string(),
                budget_ms: default_msdk_budget_ms(),
                max_answer_bytes: default_max_answer_bytes(),
                upstream: Default::default(),
                rate_limits: Default::default(),
                circuit: Default::default(),
                apps: [
                    (
                        demo::MSDK_QQ_APPID,
                        demo::MSDK_QQ_MSDKKEY,
                        demo::MSDK_QQ_APPKEY,
                    ),
                    (
                        demo::MSDK_WX_APPID,
                        demo::MSDK_WX_MSDKKEY,
                        demo::MSDK_WX_APPKEY,
                    ),
                    // Guests call with the "G_" appid and the game's own keys.
                    (
                        demo::MSDK_GUEST_APPID,
                        demo::MSDK_QQ_MSDKKEY,
                        demo::MSDK_QQ_APPKEY,
                    ),
                ]
                .into_iter()
                .map(|(appid, msdkkey, appkey)| {
                    (
                        appid.to_string(),
                        MsdkApp {
                            msdkkey: SecretString::from(msdkkey),
                            msdkkey_file: None,
                            appkey: Some(SecretString::from(appkey)),
                            appkey_file: None,
                            encode: default_msdk_encode(),
                            encrypt: false,
                            video_channels: BTreeMap::from([(
                                demo::MSDK_VIDEO_CHANNEL_ID.to_string(),
                                SecretString::from(demo::MSDK_VIDEO_CHANNEL_SECRET),
                            )]),
                            video_channel_files: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
            }),
        }
    }
}

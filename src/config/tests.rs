//! What a configuration must be before gamegate binds a port, one test per
//! rule, and where each refusal says the key was set. figment's `Jail` gives
//! each test its own directory and environment.
#![allow(clippy::result_large_err)] // figment's Jail fixes the closures' error type.

use std::path::Path;

use figment::Jail;
use secrecy::ExposeSecret;

use super::{Config, secrets};

const MSDK: &str = "[msdk]\nbase_url = \"http://127.0.0.1:9\"\n\
                    [msdk.apps.100703379]\nmsdkkey = \"a-real-looking-msdk-key-01\"\n";

fn caller(name: &str, token: &str, apps: &str) -> String {
    format!("[[callers]]\nname = \"{name}\"\ntoken = \"{token}\"\napps = [{apps}]\n")
}

/// The error of loading `text` as gamegate.toml.
fn refusal(jail: &mut Jail, text: &str) -> String {
    jail.create_file("gamegate.toml", text).expect("written");
    Config::load(Some(Path::new("gamegate.toml")))
        .expect_err("the configuration is refused")
        .to_string()
}

fn load(jail: &mut Jail, text: &str) -> Result<Config, figment::Error> {
    jail.create_file("gamegate.toml", text)?;
    Config::load(Some(Path::new("gamegate.toml"))).map_err(|e| figment::Error::from(e.to_string()))
}

#[test]
fn the_unmodified_example_configuration_is_refused_at_its_first_placeholder() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gamegate.example.toml");
    let text = Config::load(Some(&example))
        .expect_err("placeholders are not secrets")
        .to_string();
    // The first secret checked is the mini-game app's: its line, the key and
    // the three ways to set it.
    let line = std::fs::read_to_string(&example)
        .unwrap()
        .lines()
        .position(|line| line.trim_start().starts_with("secret = "))
        .expect("the example has a mini-game secret")
        + 1;
    assert!(
        text.contains(&format!(
            "gamegate.example.toml:{line}:1: qq_minigame.apps.1112345678.secret"
        )),
        "{text}"
    );
    assert!(text.contains("placeholder"), "{text}");
    assert!(text.contains("secret_file"), "{text}");
    assert!(
        text.contains("GAMEGATE_QQ_MINIGAME__APPS__1112345678__SECRET"),
        "{text}"
    );
}

#[test]
fn placeholders_are_told_from_secrets() {
    for placeholder in [
        "set GAMEGATE_MSDK__APPS__100703379__MSDKKEY instead",
        "CHANGEME-CHANGEME-1",
        "<your appkey goes here>",
    ] {
        assert!(secrets::is_placeholder(placeholder), "{placeholder}");
        let error = secrets::check_secret("msdk.apps.1.msdkkey", &placeholder.into(), 16)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("GAMEGATE_MSDK__APPS__1__MSDKKEY"), "{error}");
        assert!(!error.contains(placeholder), "{error}");
    }
    for secret in [
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "0123456789012345",
        "a<b>c-0123456789",
    ] {
        assert!(!secrets::is_placeholder(secret), "{secret}");
        assert!(secrets::check_secret("k", &secret.into(), 16).is_ok());
    }
    let caller = secrets::check_secret("callers.lobby-server.token", &"".into(), 16)
        .expect_err("refused")
        .to_string();
    assert!(
        caller.contains("GAMEGATE_CALLERS__LOBBY_SERVER__TOKEN"),
        "{caller}"
    );
}

#[test]
fn a_secret_shorter_than_the_minimum_is_refused_with_its_length_only() {
    Jail::expect_with(|jail| {
        let text = refusal(
            jail,
            "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\n\
             [qq_openapi.apps.1110766236]\nappkey = \"12345678901\"\n",
        );
        assert!(
            text.contains("gamegate.toml:4:1: qq_openapi.apps.1110766236.appkey has 11 characters"),
            "{text}"
        );
        assert!(text.contains("at least 16"), "{text}");
        assert!(!text.contains("12345678901"), "{text}");
        Ok(())
    });
}

#[test]
fn secrets_are_read_from_their_files_without_the_line_end() {
    Jail::expect_with(|jail| {
        jail.create_file("appkey", "0123456789abcdef\n")?;
        jail.create_file("msdkkey", "00000000000000000000000000000001\r\n")?;
        jail.create_file("channel", "98765432")?;
        jail.create_file("token", "lobby-token-0123456789\n")?;
        let config = load(
            jail,
            "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\n\
             [qq_openapi.apps.1110766236]\nappkey_file = \"appkey\"\n\
             [msdk]\nbase_url = \"http://127.0.0.1:9\"\n\
             [msdk.apps.100703379]\nmsdkkey_file = \"msdkkey\"\n\
             video_channel_files = { 1001 = \"channel\" }\n\
             [[callers]]\nname = \"lobby\"\ntoken_file = \"token\"\napps = [\"*\"]\n",
        )?;
        let openapi = &config.qq_openapi.as_ref().unwrap().apps["1110766236"];
        assert_eq!(openapi.appkey.expose_secret(), "0123456789abcdef");
        let msdk = &config.msdk.as_ref().unwrap().apps["100703379"];
        assert_eq!(
            msdk.msdkkey.expose_secret(),
            "00000000000000000000000000000001"
        );
        assert_eq!(msdk.video_channels["1001"].expose_secret(), "98765432");
        assert_eq!(
            config.callers[0].token.expose_secret(),
            "lobby-token-0123456789"
        );
        let debug = format!("{config:?}");
        for secret in ["0123456789abcdef", "98765432", "lobby-token-0123456789"] {
            assert!(!debug.contains(secret), "Debug shows {secret}");
        }
        Ok(())
    });
}

#[test]
fn a_secret_file_that_cannot_be_read_or_a_value_beside_its_file_is_refused() {
    Jail::expect_with(|jail| {
        let missing = refusal(
            jail,
            "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\n\
             [qq_openapi.apps.1110766236]\nappkey_file = \"/run/secrets/nowhere\"\n",
        );
        assert!(
            missing.contains(
                "gamegate.toml:4:1: qq_openapi.apps.1110766236.appkey_file names \
                 /run/secrets/nowhere, which cannot be read"
            ),
            "{missing}"
        );
        jail.create_file("appkey", "0123456789abcdef")?;
        let both = refusal(
            jail,
            "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\n\
             [qq_openapi.apps.1110766236]\nappkey = \"fedcba9876543210\"\nappkey_file = \"appkey\"\n",
        );
        assert!(both.contains("keep one of them"), "{both}");
        assert!(!both.contains("fedcba9876543210") && !both.contains("0123456789abcdef"));
        let unset = refusal(
            jail,
            "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\n[qq_openapi.apps.1110766236]\n",
        );
        assert!(
            unset.contains("qq_openapi.apps.1110766236.appkey is not set"),
            "{unset}"
        );
        Ok(())
    });
}

#[test]
fn a_callers_token_is_set_from_the_environment_by_the_callers_name() {
    Jail::expect_with(|jail| {
        let file = format!(
            "{MSDK}{}{}",
            "[[callers]]\nname = \"lobby-server\"\napps = [\"100703379\"]\n",
            "[[callers]]\nname = \"match.maker\"\napps = [\"*\"]\n",
        );
        jail.set_env("GAMEGATE_CALLERS__LOBBY_SERVER__TOKEN", "1234567890123456");
        jail.create_file("match-token", "match-token-0123456789")?;
        jail.set_env("GAMEGATE_CALLERS__MATCH_MAKER__TOKEN_FILE", "match-token");
        let config = load(jail, &file)?;
        assert_eq!(config.callers[0].token.expose_secret(), "1234567890123456");
        assert_eq!(
            config.callers[1].token.expose_secret(),
            "match-token-0123456789"
        );

        jail.set_env("GAMEGATE_CALLERS__LOBBY__TOKEN", "6543210987654321");
        let unknown = refusal(jail, &file);
        assert!(
            unknown.contains("environment variable GAMEGATE_CALLERS__LOBBY__TOKEN"),
            "{unknown}"
        );
        assert!(
            unknown.contains("lobby-server (GAMEGATE_CALLERS__LOBBY_SERVER__TOKEN)"),
            "{unknown}"
        );
        assert!(!unknown.contains("6543210987654321"), "{unknown}");
        Ok(())
    });
    // The list-index form the old example suggested says what works.
    Jail::expect_with(|jail| {
        jail.set_env("GAMEGATE_CALLERS__0__TOKEN", "6543210987654321");
        let by_index = refusal(
            jail,
            &format!("{MSDK}[[callers]]\nname = \"lobby-server\"\napps = [\"*\"]\n"),
        );
        assert!(
            by_index.starts_with(
                "configuration is invalid: environment variable GAMEGATE_CALLERS__0__TOKEN: \
                 callers has no caller named \"0\""
            ),
            "{by_index}"
        );
        assert!(
            by_index.contains("GAMEGATE_CALLERS__LOBBY_SERVER__TOKEN"),
            "{by_index}"
        );
        Ok(())
    });
}

#[test]
fn callers_are_distinct_name_their_apps_and_say_all_explicitly() {
    Jail::expect_with(|jail| {
        let lobby = caller("lobby", "lobby-token-0123456789", "\"100703379\"");
        load(jail, &format!("{MSDK}{lobby}"))?;
        load(
            jail,
            &format!("{MSDK}{}", caller("all", "all-token-0123456789", "\"*\"")),
        )?;

        let twice = refusal(
            jail,
            &format!(
                "{MSDK}{lobby}{}",
                caller("lobby", "other-token-0123456789", "\"*\"")
            ),
        );
        assert!(twice.contains("is the name of two callers"), "{twice}");
        assert!(twice.contains("gamegate.toml:"), "{twice}");

        let same_token = refusal(
            jail,
            &format!(
                "{MSDK}{lobby}{}",
                caller("match", "lobby-token-0123456789", "\"*\"")
            ),
        );
        assert!(
            same_token.contains("callers.match.token is the token of callers.lobby"),
            "{same_token}"
        );
        assert!(
            !same_token.contains("lobby-token-0123456789"),
            "{same_token}"
        );

        let unknown = refusal(
            jail,
            &format!(
                "{MSDK}{}",
                caller("lobby", "lobby-token-0123456789", "\"100703379\", \"999\"")
            ),
        );
        assert!(
            unknown.contains("callers.lobby.apps names \"999\", which no platform section"),
            "{unknown}"
        );

        let empty = refusal(
            jail,
            &format!("{MSDK}{}", caller("lobby", "lobby-token-0123456789", "")),
        );
        assert!(empty.contains("callers.lobby.apps is empty"), "{empty}");
        assert!(empty.contains("[\"*\"]"), "{empty}");

        let missing = refusal(
            jail,
            &format!("{MSDK}[[callers]]\nname = \"lobby\"\ntoken = \"lobby-token-0123456789\"\n"),
        );
        assert!(missing.contains("missing field `apps`"), "{missing}");

        let short = refusal(
            jail,
            &format!("{MSDK}{}", caller("lobby", "short-token", "\"*\"")),
        );
        assert!(
            short.contains("callers.lobby.token has 11 characters"),
            "{short}"
        );

        let certificate_without_mtls = refusal(
            jail,
            &format!(
                "{MSDK}[[callers]]\nname = \"lobby\"\ncertificate_san = \"lobby.game\"\napps = [\"*\"]\n"
            ),
        );
        assert!(
            certificate_without_mtls.contains("no [tls] client_ca_file"),
            "{certificate_without_mtls}"
        );
        Ok(())
    });
}

#[test]
fn errors_say_where_the_key_was_set_and_never_say_default() {
    Jail::expect_with(|jail| {
        let text = "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\nbudget_ms = 0\n";
        let from_file = refusal(jail, text);
        assert!(!from_file.contains("default."), "{from_file}");
        assert_eq!(
            from_file,
            "configuration is invalid: gamegate.toml:3:1: qq_openapi.budget_ms is 0; it must be \
             from 1 to 60000"
        );

        jail.set_env("GAMEGATE_QQ_OPENAPI__BUDGET_MS", "70000");
        let from_environment = refusal(jail, text);
        assert!(
            from_environment.starts_with(
                "configuration is invalid: environment variable GAMEGATE_QQ_OPENAPI__BUDGET_MS: \
                 qq_openapi.budget_ms is 70000"
            ),
            "{from_environment}"
        );
        assert!(!from_environment.contains("default."), "{from_environment}");
        jail.set_env("GAMEGATE_QQ_OPENAPI__BUDGET_MS", "soon");
        let unparsable = refusal(jail, text);
        assert!(
            unparsable.contains("environment variable GAMEGATE_QQ_OPENAPI__BUDGET_MS: qq_openapi.budget_ms: invalid type"),
            "{unparsable}"
        );
        assert!(!unparsable.contains("soon"), "{unparsable}");
        Ok(())
    });
    Jail::expect_with(|jail| {
        let wrong_type = refusal(
            jail,
            "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\n\n  budget_ms = \"soon\"\n",
        );
        assert!(
            wrong_type.contains("gamegate.toml:4:3: qq_openapi.budget_ms: invalid type"),
            "{wrong_type}"
        );
        let unknown_key = refusal(
            jail,
            "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\nbudget = 1\n",
        );
        assert!(
            unknown_key.contains("unknown field: found `budget`"),
            "{unknown_key}"
        );
        assert!(unknown_key.contains("gamegate.toml"), "{unknown_key}");
        for error in [wrong_type, unknown_key] {
            assert!(!error.contains("default."), "{error}");
        }
        Ok(())
    });
}

#[test]
fn a_variable_names_the_files_app_whatever_the_case_of_its_id() {
    Jail::expect_with(|jail| {
        jail.set_env(
            "GAMEGATE_MSDK__APPS__G_100703379__MSDKKEY",
            "guest-msdk-key-0123456789",
        );
        jail.set_env(
            "GAMEGATE_MSDK__APPS__WXCDE873F99466F74A__MSDKKEY",
            "wechat-msdk-key-0123456789",
        );
        let config = load(
            jail,
            "[msdk]\nbase_url = \"http://127.0.0.1:9\"\n\
             [msdk.apps.G_100703379]\nmsdkkey = \"set GAMEGATE_MSDK__APPS__G_100703379__MSDKKEY instead\"\n\
             [msdk.apps.wxcde873f99466f74a]\n",
        )?;
        let apps = &config.msdk.as_ref().unwrap().apps;
        assert_eq!(apps.len(), 2, "{:?}", apps.keys());
        assert_eq!(
            apps["G_100703379"].msdkkey.expose_secret(),
            "guest-msdk-key-0123456789"
        );
        assert_eq!(
            apps["wxcde873f99466f74a"].msdkkey.expose_secret(),
            "wechat-msdk-key-0123456789"
        );
        Ok(())
    });
}

#[test]
fn an_empty_caller_variable_is_as_if_unset() {
    Jail::expect_with(|jail| {
        jail.create_file("token", "lobby-token-0123456789\n")?;
        jail.set_env("GAMEGATE_CALLERS__LOBBY__TOKEN", "");
        let config = load(
            jail,
            &format!(
                "{MSDK}[[callers]]\nname = \"lobby\"\ntoken_file = \"token\"\napps = [\"*\"]\n"
            ),
        )?;
        assert_eq!(
            config.callers[0].token.expose_secret(),
            "lobby-token-0123456789"
        );
        Ok(())
    });
}

#[test]
fn the_store_names_one_redis_and_keeps_its_password_out_of_the_url() {
    Jail::expect_with(|jail| {
        jail.set_env("GAMEGATE_STORE__PASSWORD", "0123456789");
        let config = load(
            jail,
            &format!("{MSDK}[store]\nredis_url = \"redis://127.0.0.1:6379\"\n"),
        )?;
        let store = config.store.as_ref().unwrap();
        assert_eq!(store.password(), Some("0123456789"), "digits stay a string");
        assert_eq!(store.key_prefix, "gamegate:");
        assert!(
            !format!("{store:?}").contains("0123456789"),
            "Debug redacts"
        );

        let in_url = refusal(
            jail,
            &format!("{MSDK}[store]\nredis_url = \"redis://:hunter2-password@127.0.0.1:6379\"\n"),
        );
        assert!(
            in_url.contains("store.redis_url holds a password"),
            "{in_url}"
        );
        assert!(!in_url.contains("hunter2"), "{in_url}");
        let both = refusal(
            jail,
            &format!(
                "{MSDK}[store]\nredis_url = \"redis://a:1\"\nredis_cluster_urls = [\"redis://b:1\"]\n"
            ),
        );
        assert!(both.contains("keep one"), "{both}");
        let none = refusal(jail, &format!("{MSDK}[store]\n"));
        assert!(none.contains("names no Redis"), "{none}");
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.create_file("redis-password", "change-me: the redis password\n")?;
        let placeholder = refusal(
            jail,
            &format!(
                "{MSDK}[store]\nredis_url = \"redis://127.0.0.1:6379\"\npassword_file = \"redis-password\"\n"
            ),
        );
        assert!(placeholder.contains("placeholder"), "{placeholder}");
        Ok(())
    });
}

#[test]
fn rate_limits_and_circuits_come_from_the_file_and_the_environment() {
    Jail::expect_with(|jail| {
        let file = format!(
            "{MSDK}[msdk.rate_limits]\nper_app = {{ rate_per_s = 0.5, burst = 3 }}\n\
             [msdk.rate_limits.per_path]\n\"/relation/qqfriends_detail\" = {{ rate_per_s = 20, burst = 5 }}\n\
             [msdk.circuit]\nmin_calls = 7\n"
        );
        jail.set_env("GAMEGATE_MSDK__RATE_LIMITS__PLATFORM__RATE_PER_S", "100");
        jail.set_env("GAMEGATE_MSDK__RATE_LIMITS__PLATFORM__BURST", "50");
        jail.set_env("GAMEGATE_MSDK__CIRCUIT__OPEN_MS", "2500");
        let config = load(jail, &file)?;
        let msdk = config.msdk.as_ref().unwrap();
        let spec = |rate_per_s, burst| Some(super::RateSpec { rate_per_s, burst });
        assert_eq!(msdk.rate_limits.per_app, spec(0.5, 3));
        assert_eq!(msdk.rate_limits.platform, spec(100.0, 50));
        assert_eq!(
            msdk.rate_limits
                .per_path
                .get("/relation/qqfriends_detail")
                .copied(),
            spec(20.0, 5)
        );
        assert_eq!(
            (
                msdk.circuit.min_calls,
                msdk.circuit.open_ms,
                msdk.circuit.enabled
            ),
            (7, 2500, true)
        );

        jail.set_env("GAMEGATE_MSDK__CIRCUIT__FAILURE_RATIO", "2");
        let refused = refusal(jail, &file);
        assert!(refused.contains("msdk.circuit.failure_ratio"), "{refused}");
        Ok(())
    });
}

#[test]
fn session_keys_stay_in_gamegate_unless_configured_otherwise() {
    Jail::expect_with(|jail| {
        let minigame = "[qq_minigame]\nbase_url = \"http://127.0.0.1:9\"\n";
        let config = load(
            jail,
            &format!(
                "{minigame}{}",
                caller("lobby", "a-lobby-token-0123456789", "\"*\"")
            ),
        )?;
        let section = config.qq_minigame.as_ref().unwrap();
        assert_eq!(section.session_max_age_secs, 7 * 24 * 3600);
        assert!(!section.return_session_keys);
        assert!(!config.callers[0].receive_session_keys);

        let config = load(
            jail,
            &format!(
                "{minigame}session_max_age_secs = 3600\nreturn_session_keys = true\n{}\
                 receive_session_keys = true\n",
                caller("lobby", "a-lobby-token-0123456789", "\"*\"")
            ),
        )?;
        assert_eq!(
            config.qq_minigame.as_ref().unwrap().session_max_age_secs,
            3600
        );
        assert!(config.qq_minigame.as_ref().unwrap().return_session_keys);
        assert!(config.callers[0].receive_session_keys);

        let refused = refusal(jail, &format!("{minigame}session_max_age_secs = 0\n"));
        assert!(
            refused.contains("qq_minigame.session_max_age_secs is 0"),
            "{refused}"
        );
        Ok(())
    });
}

#[test]
fn a_proxy_password_file_is_read_with_the_other_secrets() {
    Jail::expect_with(|jail| {
        jail.create_file("egress-password", "from-a-file\n")?;
        let file = format!(
            "{MSDK}[msdk.upstream]\nproxy = \"http://egress:3128\"\nproxy_user = \"u\"\n\
             proxy_password_file = \"egress-password\"\n"
        );
        let config = load(jail, &file)?;
        let options = config.msdk.as_ref().unwrap().upstream.options();
        assert_eq!(
            options.proxy_password.as_ref().unwrap().expose_secret(),
            "from-a-file",
            "the file's text without its line end"
        );
        let both = refusal(
            jail,
            &format!("{file}proxy_password = \"a-real-looking-password\"\n"),
        );
        assert!(
            both.contains("msdk.upstream.proxy_password_file") && both.contains("keep one"),
            "{both}"
        );
        let missing = refusal(jail, &file.replace("egress-password", "absent"));
        assert!(missing.contains("absent"), "{missing}");
        assert!(!missing.contains("from-a-file"), "{missing}");
        Ok(())
    });
}

//! Where secrets come from and what they must look like.
//!
//! Every secret (an app's secret, appkey or msdkkey, a Tencent Video channel
//! secret, a caller's token) can be written in the file, set from the
//! environment, or read from a file of its own (`*_file`, the Kubernetes
//! Secret-volume convention: `/run/secrets/…`). Values are strings, whatever
//! they look like: `0123456789` stays ten characters. A caller's token is set
//! from the environment by the caller's name
//! (`GAMEGATE_CALLERS__LOBBY_SERVER__TOKEN`), not by its place in the list.
//!
//! No error here quotes a value: they name the key, the variable or the path.

use std::{collections::BTreeMap, io::Read, path::Path};

use secrecy::{ExposeSecret, SecretString};

use super::{
    Caller, Config, ConfigError, ENV_LEVEL_SEPARATOR, ENV_PREFIX, MsdkApp, strip_env_prefix,
};

/// The shortest platform secret or caller token accepted: QQ appkeys and
/// mini-game app secrets have 16 characters, msdkkeys 32; a caller's token
/// shorter than 16 characters can be guessed.
pub const MIN_SECRET_LEN: usize = 16;
/// The shortest Tencent Video channel secret accepted.
pub const MIN_CHANNEL_SECRET_LEN: usize = 8;
/// A secret file larger than this is not a secret file.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The environment variable that sets `key` (`qq_minigame.apps.1.secret` ->
/// `GAMEGATE_QQ_MINIGAME__APPS__1__SECRET`); a caller's by its name.
pub fn variable_of(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("callers.")
        && let Some((name, field)) = rest.rsplit_once('.')
    {
        return format!(
            "{ENV_PREFIX}CALLERS{ENV_LEVEL_SEPARATOR}{}{ENV_LEVEL_SEPARATOR}{}",
            caller_variable_name(name),
            field.to_ascii_uppercase()
        );
    }
    format!(
        "{ENV_PREFIX}{}",
        key.to_ascii_uppercase().replace('.', ENV_LEVEL_SEPARATOR)
    )
}

/// A caller's name as it appears in a variable: capitals, and `_` for every
/// character a shell variable cannot hold.
pub fn caller_variable_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether a secret's value is the stand-in text of an example or template
/// ("set GAMEGATE_… instead", "changeme", "<secret>"): configured as it is, it
/// would authenticate callers with, or sign with, a text anyone can read.
pub fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    lower.contains("set gamegate_")
        || lower.contains(" instead")
        || lower.contains("changeme")
        || lower.contains("change-me")
        || (lower.starts_with('<') && lower.ends_with('>'))
}

/// A configured secret must be set, not to a placeholder, and at least
/// `min_len` characters long. The error names the key and the ways to set
/// it, never the value.
pub fn check_secret(key: &str, secret: &SecretString, min_len: usize) -> Result<(), ConfigError> {
    let value = secret.expose_secret();
    let ways = format!(
        "write it in the file, in a file named by {key}_file, or in the environment variable {}",
        variable_of(key)
    );
    if value.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("is not set (or empty): {ways}"),
        ));
    }
    if is_placeholder(value) {
        return Err(ConfigError::invalid(
            key,
            format!("still holds the example's placeholder text, not a secret: {ways}"),
        ));
    }
    let length = value.chars().count();
    if length < min_len {
        return Err(ConfigError::invalid(
            key,
            format!(
                "has {length} characters; it must have at least {min_len} (a secret that short \
                 is not the platform's, or can be guessed)"
            ),
        ));
    }
    Ok(())
}

/// Fills every secret that names a `*_file` from that file. Setting both the
/// value and its file is refused: which one wins would be a guess.
pub fn read_secret_files(config: &mut Config) -> Result<(), ConfigError> {
    if let Some(platform) = &mut config.qq_minigame {
        for (appid, app) in &mut platform.apps {
            let key = format!("qq_minigame.apps.{appid}.secret");
            fill_from_file(&key, &mut app.secret, app.secret_file.as_deref())?;
        }
    }
    if let Some(platform) = &mut config.qq_openapi {
        for (appid, app) in &mut platform.apps {
            let key = format!("qq_openapi.apps.{appid}.appkey");
            fill_from_file(&key, &mut app.appkey, app.appkey_file.as_deref())?;
        }
    }
    if let Some(platform) = &mut config.msdk {
        for (appid, app) in &mut platform.apps {
            read_msdk_files(appid, app)?;
        }
    }
    for caller in &mut config.callers {
        let key = format!("callers.{}.token", caller.name);
        fill_from_file(&key, &mut caller.token, caller.token_file.as_deref())?;
    }
    if let Some(store) = &mut config.store {
        store.read_secret_files()?;
    }
    let upstreams = [
        (
            "qq_minigame",
            config.qq_minigame.as_mut().map(|p| &mut p.upstream),
        ),
        (
            "qq_openapi",
            config.qq_openapi.as_mut().map(|p| &mut p.upstream),
        ),
        ("msdk", config.msdk.as_mut().map(|p| &mut p.upstream)),
    ];
    for (platform, upstream) in upstreams {
        let Some(upstream) = upstream else { continue };
        if let Some(path) = upstream.proxy_password_file.as_deref() {
            let key = format!("{platform}.upstream.proxy_password");
            let mut password = upstream
                .proxy_password
                .take()
                .unwrap_or_else(super::unset_secret);
            fill_from_file(&key, &mut password, Some(path))?;
            upstream.proxy_password = Some(password);
        }
    }
    Ok(())
}

fn read_msdk_files(appid: &str, app: &mut MsdkApp) -> Result<(), ConfigError> {
    let key = format!("msdk.apps.{appid}.msdkkey");
    fill_from_file(&key, &mut app.msdkkey, app.msdkkey_file.as_deref())?;
    if let Some(path) = app.appkey_file.as_deref() {
        let key = format!("msdk.apps.{appid}.appkey");
        let mut appkey = app.appkey.take().unwrap_or_else(super::unset_secret);
        fill_from_file(&key, &mut appkey, Some(path))?;
        app.appkey = Some(appkey);
    }
    for (channel, path) in &app.video_channel_files {
        if app.video_channels.contains_key(channel) {
            return Err(ConfigError::invalid(
                format!("msdk.apps.{appid}.video_channel_files.{channel}"),
                format!(
                    "names a file for channel {channel}, whose secret video_channels sets too: \
                     keep one of them"
                ),
            ));
        }
        let key = format!("msdk.apps.{appid}.video_channel_files.{channel}");
        let secret = read_secret_file(&key, path)?;
        app.video_channels.insert(channel.clone(), secret);
    }
    Ok(())
}

pub(super) fn fill_from_file(
    key: &str,
    secret: &mut SecretString,
    path: Option<&Path>,
) -> Result<(), ConfigError> {
    let Some(path) = path else {
        return Ok(());
    };
    if !secret.expose_secret().is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}_file"),
            format!("is set, and so is {key}: keep one of them"),
        ));
    }
    *secret = read_secret_file(&format!("{key}_file"), path)?;
    Ok(())
}

/// The secret a file holds: its text, without the line end that `echo` and
/// editors add. The error names the path and the cause, never the content.
fn read_secret_file(key: &str, path: &Path) -> Result<SecretString, ConfigError> {
    let cannot = |cause: String| {
        ConfigError::invalid(
            key,
            format!(
                "names {}, which cannot be read ({cause}); mount the Secret there or fix the path",
                path.display()
            ),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| cannot(e.kind().to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(e.kind().to_string()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(cannot(format!("larger than {MAX_SECRET_FILE_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| cannot("not UTF-8 text".to_string()))?;
    Ok(SecretString::from(
        text.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

/// What the environment sets of a caller: `TOKEN` or `TOKEN_FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallerField {
    Token,
    TokenFile,
}

/// Applies `GAMEGATE_CALLERS__<NAME>__TOKEN` and `…__TOKEN_FILE` to the
/// callers of the file, found by name. A variable naming no caller, or
/// another field, is refused with the variables that would work.
pub fn apply_caller_environment(
    callers: &mut [Caller],
    variables: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut settings: BTreeMap<(usize, &'static str), ()> = BTreeMap::new();
    for (variable, value) in variables {
        let Some(key) = strip_env_prefix(&variable) else {
            continue;
        };
        // Manifests leave variables empty: an empty one is as if unset.
        if value.is_empty() {
            continue;
        }
        let mut parts = key.split(ENV_LEVEL_SEPARATOR);
        if !parts
            .next()
            .is_some_and(|top| top.eq_ignore_ascii_case("callers"))
        {
            continue;
        }
        let refused = |problem: String| ConfigError::Invalid {
            key: "callers".to_string(),
            problem,
            at: Some(format!("environment variable {variable}")),
        };
        let (Some(name), Some(field), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(refused(format!(
                "a caller's token is set by its name: {}",
                caller_variables(callers)
            )));
        };
        let field = if field.eq_ignore_ascii_case("token") {
            CallerField::Token
        } else if field.eq_ignore_ascii_case("token_file") {
            CallerField::TokenFile
        } else {
            return Err(refused(format!(
                "only a caller's TOKEN or TOKEN_FILE can be set from the environment; its other \
                 keys are in the file ({})",
                caller_variables(callers)
            )));
        };
        let Some(index) = callers
            .iter()
            .position(|caller| caller_variable_name(&caller.name).eq_ignore_ascii_case(name))
        else {
            return Err(refused(format!(
                "has no caller named {name:?} (in capitals, `-` and `.` as `_`); {}",
                caller_variables(callers)
            )));
        };
        let field_name = match field {
            CallerField::Token => "token",
            CallerField::TokenFile => "token_file",
        };
        settings.insert((index, field_name), ());
        let caller = &mut callers[index];
        match field {
            CallerField::Token => caller.token = SecretString::from(value),
            CallerField::TokenFile => {
                caller.token_file = Some(value.into());
            }
        }
    }
    // The environment's token wins over the file's; its file wins over a
    // token written in the file, as the environment wins everywhere.
    for (index, field) in settings.keys() {
        let caller = &mut callers[*index];
        if *field == "token_file" && !settings.contains_key(&(*index, "token")) {
            caller.token = super::unset_secret();
        }
        if *field == "token" && !settings.contains_key(&(*index, "token_file")) {
            caller.token_file = None;
        }
    }
    Ok(())
}

/// "the callers are lobby-server (GAMEGATE_CALLERS__LOBBY_SERVER__TOKEN), …".
fn caller_variables(callers: &[Caller]) -> String {
    if callers.is_empty() {
        return "the file configures no [[callers]]".to_string();
    }
    let each: Vec<String> = callers
        .iter()
        .map(|caller| {
            format!(
                "{} ({})",
                caller.name,
                variable_of(&format!("callers.{}.token", caller.name))
            )
        })
        .collect();
    format!("the callers are {}", each.join(", "))
}

//! Where the configuration comes from, and saying so: the file (a key's line
//! and column) or the environment (the variable's exact name).
//!
//! The environment is read as figment's `Env` reads it, with two
//! differences: a secret's value (a key named `secret`, `appkey`, `msdkkey`,
//! `token`, a video channel's, and every `*_file` path) stays the string it
//! is, where `Env` would read `0123456789` as the number 123456789; and the
//! callers' variables (`GAMEGATE_CALLERS__<NAME>__TOKEN`) are left to
//! `secrets::apply_caller_environment`, since callers are a list in the file.

use std::path::{Path, PathBuf};

use figment::{
    Metadata, Profile, Provider,
    providers::Env,
    value::{Dict, Map, Value},
};

use super::{ENV_LEVEL_SEPARATOR, ENV_PREFIX, is_configuration_key, secrets};

/// The keys whose value is a secret (or a secret's path) wherever they are.
const SECRET_KEYS: [&str; 5] = ["secret", "appkey", "msdkkey", "token", "password"];

/// Whether the variable `key` (without the prefix, `__`-separated) holds a
/// secret or a path, to be kept as a string.
fn is_string_key(key: &str) -> bool {
    let parts: Vec<String> = key
        .split(ENV_LEVEL_SEPARATOR)
        .map(str::to_ascii_lowercase)
        .collect();
    let Some(last) = parts.last() else {
        return false;
    };
    SECRET_KEYS.contains(&last.as_str())
        || last.ends_with("_file")
        || parts
            .iter()
            .rev()
            .nth(1)
            .is_some_and(|parent| parent == "video_channels" || parent == "video_channel_files")
}

fn is_caller_key(key: &str) -> bool {
    key.split(ENV_LEVEL_SEPARATOR)
        .next()
        .is_some_and(|top| top.trim().eq_ignore_ascii_case("callers"))
}

/// The configuration keys of the environment, and the app ids of the file:
/// a variable names an app in capitals (`GAMEGATE_MSDK__APPS__G_100703379__…`,
/// `…__APPS__WXCDE873F99466F74A__…`), and it is the file's app whose id
/// matches with ASCII case ignored; an app that only the environment
/// configures keeps the variable's spelling.
pub(super) struct Environment {
    variables: Env,
    /// (platform, app id) as the file spells them.
    file_apps: Vec<(String, String)>,
}

impl Environment {
    pub(super) fn configuration(sources: &Sources) -> Environment {
        Environment {
            variables: Env::prefixed(ENV_PREFIX)
                .lowercase(false)
                .filter(|key| is_configuration_key(key.as_str()) && !is_caller_key(key.as_str())),
            file_apps: sources.file_apps(),
        }
    }

    /// The dotted key of a variable (without the prefix): every level in
    /// lower case but an app id, spelled as the file spells it.
    fn key_of(&self, variable: &str) -> String {
        let parts: Vec<&str> = variable.split(ENV_LEVEL_SEPARATOR).collect();
        let mut key: Vec<String> = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let is_app_id = index == 2 && parts[1].eq_ignore_ascii_case("apps");
            key.push(if is_app_id {
                let platform = parts[0].to_ascii_lowercase();
                self.file_apps
                    .iter()
                    .find(|(p, app)| *p == platform && app.eq_ignore_ascii_case(part))
                    .map_or_else(|| part.to_string(), |(_, app)| app.clone())
            } else {
                part.to_ascii_lowercase()
            });
        }
        key.join(".")
    }
}

/// The name figment gives the environment's metadata.
const ENVIRONMENT: &str = "the environment";

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENVIRONMENT).interpolater(|_: &Profile, keys: &[&str]| {
            format!(
                "{ENV_PREFIX}{}",
                keys.join(ENV_LEVEL_SEPARATOR).to_ascii_uppercase()
            )
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (variable, value) in self.variables.iter() {
            // Manifests leave variables empty: an empty one is as if unset.
            if value.is_empty() {
                continue;
            }
            let value = if is_string_key(variable.as_str()) {
                Value::from(value)
            } else {
                value
                    .parse()
                    .expect("parsing a figment value is infallible")
            };
            let path = self.key_of(variable.as_str());
            let nested = figment::util::nest(&path, value)
                .into_dict()
                .expect("a non-empty key nests into a dict");
            dict = merge(dict, nested);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// `a` with `b`'s keys added, nested dicts merged (as figment's own `Env`).
fn merge(mut a: Dict, b: Dict) -> Dict {
    for (key, value) in b {
        match (a.remove(&key), value) {
            (Some(Value::Dict(_, left)), Value::Dict(tag, right)) => {
                a.insert(key, Value::Dict(tag, merge(left, right)));
            }
            (_, value) => {
                a.insert(key, value);
            }
        }
    }
    a
}

/// What was read, to say where a key came from.
pub(super) struct Sources {
    file: Option<SourceFile>,
}

struct SourceFile {
    path: PathBuf,
    document: Option<toml_edit::ImDocument<String>>,
}

impl Sources {
    pub(super) fn new(path: Option<&Path>) -> Sources {
        let file = path.map(|path| SourceFile {
            path: path.to_path_buf(),
            document: std::fs::read_to_string(path)
                .ok()
                .and_then(|text| toml_edit::ImDocument::parse(text).ok()),
        });
        Sources { file }
    }

    /// The app ids of the file's platform sections, as it spells them.
    fn file_apps(&self) -> Vec<(String, String)> {
        let Some(document) = self.file.as_ref().and_then(|f| f.document.as_ref()) else {
            return Vec::new();
        };
        let mut apps = Vec::new();
        for (platform, section) in document.as_table().iter() {
            if let Some(table) = section.get("apps").and_then(|a| a.as_table_like()) {
                for (app, _) in table.iter() {
                    apps.push((platform.to_string(), app.to_string()));
                }
            }
        }
        apps
    }

    /// Where `key` (dotted; a caller by its name) was set: the environment
    /// variable (which wins), else the file's line and column; `None` for a
    /// default.
    pub(super) fn locate(&self, key: &str) -> Option<String> {
        let variable = secrets::variable_of(key);
        let set = std::env::vars_os().any(|(name, _)| {
            name.to_str()
                .is_some_and(|name| name.eq_ignore_ascii_case(&variable))
        });
        if set {
            return Some(format!("environment variable {variable}"));
        }
        let file = self.file.as_ref()?;
        let document = file.document.as_ref()?;
        let offset = span_of(document, key)?;
        let (line, column) = line_and_column(document.raw(), offset);
        Some(format!("{}:{line}:{column}", file.path.display()))
    }

    /// One line per figment error, each naming its key and where it was set,
    /// and no value (a key that does not parse may hold a secret).
    pub(super) fn describe(&self, error: figment::Error) -> String {
        let mut lines = Vec::new();
        for one in error {
            let kind = super::without_values_kind(one.kind);
            let key = one.path.join(".");
            let from_environment = one
                .metadata
                .as_ref()
                .is_some_and(|metadata| metadata.name == ENVIRONMENT);
            let at = if from_environment {
                Some(format!(
                    "environment variable {}",
                    secrets::variable_of(&key)
                ))
            } else if key.is_empty() {
                self.file.as_ref().map(|f| f.path.display().to_string())
            } else {
                self.locate(&key).or_else(|| {
                    // A key the file lacks (a missing field) is reported at
                    // the table that should hold it.
                    self.file.as_ref().map(|f| f.path.display().to_string())
                })
            };
            let what = if key.is_empty() {
                kind
            } else {
                format!("{key}: {kind}")
            };
            lines.push(match at {
                Some(at) => format!("{at}: {what}"),
                None => what,
            });
        }
        lines.join("\n")
    }
}

/// The byte offset of `key`'s name in the document (a caller found by its
/// name in `[[callers]]`, or by its index in figment's paths).
fn span_of(document: &toml_edit::ImDocument<String>, key: &str) -> Option<usize> {
    let mut table: &toml_edit::Table = document.as_table();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let offset = table.key(part).and_then(|k| k.span()).map(|s| s.start);
        let item = table.get(part)?;
        if parts.peek().is_none() {
            return offset;
        }
        table = match item {
            toml_edit::Item::Table(inner) => inner,
            toml_edit::Item::ArrayOfTables(array) => {
                let which = parts.next()?;
                let element = which
                    .parse::<usize>()
                    .ok()
                    .and_then(|at| array.get(at))
                    .or_else(|| {
                        array
                            .iter()
                            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(which))
                    })?;
                if parts.peek().is_none() {
                    return element.span().map(|s| s.start).or(offset);
                }
                element
            }
            _ => return None,
        };
    }
    None
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, last)| last)
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_stay_strings() {
        for key in [
            "QQ_MINIGAME__APPS__1__SECRET",
            "QQ_OPENAPI__APPS__1__APPKEY",
            "MSDK__APPS__1__MSDKKEY",
            "MSDK__APPS__1__APPKEY_FILE",
            "MSDK__APPS__1__VIDEO_CHANNELS__1001",
            "MSDK__APPS__1__VIDEO_CHANNEL_FILES__1001",
        ] {
            assert!(is_string_key(key), "{key}");
        }
        for key in ["MSDK__BUDGET_MS", "LISTEN", "LIMITS__MAX_CALLS_IN_FLIGHT"] {
            assert!(!is_string_key(key), "{key}");
        }
    }

    #[test]
    fn keys_are_found_at_their_line_and_column() {
        let text = "listen = \"127.0.0.1:1\"\n\n[qq_openapi]\nbase_url = \"x\"\n  budget_ms = 0\n\
                    [[callers]]\nname = \"a\"\n[[callers]]\nname = \"lobby\"\ntoken = \"t\"\n";
        let document = toml_edit::ImDocument::parse(text.to_string()).unwrap();
        let at = |key: &str| span_of(&document, key).map(|o| line_and_column(text, o));
        assert_eq!(at("listen"), Some((1, 1)));
        assert_eq!(at("qq_openapi.budget_ms"), Some((5, 3)));
        assert_eq!(at("callers.lobby.token"), Some((10, 1)));
        assert_eq!(at("callers.1.token"), Some((10, 1)));
        assert_eq!(at("qq_openapi.apps"), None);
        assert_eq!(at("msdk.budget_ms"), None);
    }
}

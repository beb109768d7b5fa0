//! What operators see: logs, and traces ([`trace`]).
//!
//! Logs are one line per event on stdout: JSON lines (the default when stdout
//! is not a terminal) or text (`log_format`, `GAMEGATE_LOG_FORMAT`), filtered
//! by `GAMEGATE_LOG` (`tracing` directives, default `info`; HTTP/2, hyper and
//! TLS internals at `warn` unless named). Whatever the format, no value reaches the
//! output with a control character in it ([`EscapingFields`] for text,
//! [`json::JsonLines`] for JSON): a caller's newline cannot forge a line, nor its
//! escape sequence drive a terminal. Colours are used on a terminal only (and
//! not with `NO_COLOR`). Repeated lines of one kind are limited with a
//! [`LogLimiter`]. Every line written while serving a call carries the
//! call's trace id: a top-level `trace_id` in JSON, the `rpc{trace_id=…}`
//! span in text.

mod escape;
pub mod json;
mod limiter;
pub mod trace;

use std::{io::IsTerminal, str::FromStr};

use thiserror::Error;
use tracing::Subscriber;
use tracing_subscriber::{
    EnvFilter,
    fmt::MakeWriter,
    layer::SubscriberExt,
    util::{SubscriberInitExt, TryInitError},
};

pub use self::{
    escape::{EscapingFields, EscapingVisitor},
    limiter::{Admit, LogLimiter},
};

/// The environment variable holding the log filter (`tracing` directives).
pub const LOG_FILTER_VARIABLE: &str = "GAMEGATE_LOG";
/// The environment variable choosing the log format: `text` or `json`.
pub const LOG_FORMAT_VARIABLE: &str = "GAMEGATE_LOG_FORMAT";
/// The `GAMEGATE_*` variables read here; they are not configuration.
pub const VARIABLES: [&str; 2] = [LOG_FILTER_VARIABLE, LOG_FORMAT_VARIABLE];

#[derive(Debug, Error)]
pub enum TelemetryError {
    #[error("{LOG_FORMAT_VARIABLE} must be `text` or `json`, not {0:?}")]
    UnknownLogFormat(String),
    #[error("the log subscriber cannot be installed: {0}")]
    Install(#[from] TryInitError),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum LogFormat {
    /// tracing-subscriber's full text format, one event a line.
    #[default]
    Text,
    /// One JSON object a line (tracing-subscriber's JSON format).
    Json,
}

/// `log_format` in the configuration reads as the variable does (ASCII case
/// ignored).
impl TryFrom<String> for LogFormat {
    type Error = TelemetryError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("text") {
            Ok(LogFormat::Text)
        } else if text.eq_ignore_ascii_case("json") {
            Ok(LogFormat::Json)
        } else {
            Err(TelemetryError::UnknownLogFormat(text.to_string()))
        }
    }
}

/// The targets whose debug and info lines describe HTTP/2 frames, TLS records
/// and tower internals: below `warn` they drown every other line (66 lines
/// for one call at debug), so they stay at `warn` unless a directive names
/// them (`GAMEGATE_LOG=debug,h2=debug`).
pub const QUIET_TARGETS: [&str; 10] = [
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "rustls",
    "tokio_rustls",
    "axum",
    // The trace exporter's own lines (a failed export is an error).
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

/// The filter of `directives` (`GAMEGATE_LOG`; `info` when unset), with the
/// [`QUIET_TARGETS`] it does not name held at `warn`, and the call and
/// upstream spans ([`trace::TARGET`]) on unless it names them: a call's trace
/// id and its spans do not depend on the log level.
pub fn log_filter(directives: Option<&str>) -> EnvFilter {
    let directives = directives
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or("info");
    let named = |target: &str| {
        directives.split(',').any(|directive| {
            let name = directive
                .split(['=', '['])
                .next()
                .unwrap_or_default()
                .trim();
            name == target || name.starts_with(&format!("{target}::"))
        })
    };
    let mut all = directives.to_string();
    for target in QUIET_TARGETS.iter().filter(|target| !named(target)) {
        all.push_str(&format!(",{target}=warn"));
    }
    if !named(trace::TARGET) {
        all.push_str(&format!(",{}=info", trace::TARGET));
    }
    EnvFilter::try_new(&all).unwrap_or_else(|_| {
        // A directive that does not parse: say so on stderr (the log is not
        // installed yet) and keep the default.
        eprintln!("gamegate: {LOG_FILTER_VARIABLE} does not parse; logging at info");
        log_filter(None)
    })
}

/// The format lines are written in: `GAMEGATE_LOG_FORMAT` if set, else the
/// configuration's `log_format`, else text on a terminal and JSON elsewhere
/// (a log collector reads JSON; a person at a terminal reads text).
pub fn chosen_format(configured: Option<LogFormat>) -> Result<LogFormat, TelemetryError> {
    match std::env::var_os(LOG_FORMAT_VARIABLE) {
        // Set but empty, as manifests sometimes leave a variable: not set.
        Some(value) if !value.is_empty() => value.to_string_lossy().parse(),
        _ => Ok(configured.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                LogFormat::Text
            } else {
                LogFormat::Json
            }
        })),
    }
}

/// Installs the process's log subscriber: the format [`chosen_format`]
/// picks, the filter of `GAMEGATE_LOG`, colours only on a terminal (and not
/// with `NO_COLOR`); spans exported through `traces` when given.
pub fn init_logging(
    configured: Option<LogFormat>,
    traces: Option<&trace::Exporter>,
) -> Result<(), TelemetryError> {
    let format = chosen_format(configured)?;
    let directives = std::env::var(LOG_FILTER_VARIABLE).ok();
    let filter = log_filter(directives.as_deref());
    let ansi = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    traced_subscriber(format, filter, ansi, std::io::stdout, traces).try_init()?;
    Ok(())
}

/// The subscriber [`init_logging`] installs without an exporter, writing to
/// `writer`; tests install it with a writer of their own.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    traced_subscriber(format, filter, ansi, writer, None)
}

/// [`subscriber`], exporting the call and upstream spans through `traces`.
/// Without it no OpenTelemetry layer is installed at all.
pub fn traced_subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
    traces: Option<&trace::Exporter>,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let calls = trace::CallTraceLayer::new(traces.is_some(), format == LogFormat::Text);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => {
            let logs = tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(ansi)
                .fmt_fields(EscapingFields::new())
                .with_writer(writer);
            let subscriber = registry.with(logs).with(calls);
            let otel = traces.map(|traces| traces.layer());
            Box::new(subscriber.with(otel))
        }
        LogFormat::Json => {
            // Span fields as JSON (`JsonFields`), events as `JsonLines` writes them.
            let logs = tracing_subscriber::fmt::layer()
                .json()
                .event_format(json::JsonLines)
                .with_writer(writer);
            let subscriber = registry.with(logs).with(calls);
            let otel = traces.map(|traces| traces.layer());
            Box::new(subscriber.with(otel))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use super::{escape::needs_escape, *};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A newline, a CR, a screen-clearing escape, BEL, a C1 CSI, DEL, a tab,
    /// a Unicode line separator and a right-to-left override.
    const HOSTILE: &str = "x\nFORGED line \u{1b}[2J \r\u{7}\u{9b}31m\u{7f}\t\u{2028}\u{202e}end";

    #[derive(Debug, thiserror::Error)]
    #[error("outer {0}")]
    struct Outer(String, #[source] std::io::Error);

    /// One event carrying HOSTILE in every way a value reaches a field, inside
    /// a span that carries it too.
    fn log_hostile_event() {
        let error = Outer(
            HOSTILE.into(),
            std::io::Error::other(format!("inner {HOSTILE}")),
        );
        let span = tracing::info_span!("call", path = %HOSTILE);
        let _entered = span.enter();
        tracing::warn!(
            display = %HOSTILE,
            debug = ?HOSTILE,
            text = HOSTILE,
            error = &error as &(dyn std::error::Error + 'static),
            count = 3,
            "message {HOSTILE}"
        );
    }

    fn capture(format: LogFormat) -> String {
        capture_with(format, log_hostile_event)
    }

    fn capture_with(format: LogFormat, event: impl Fn()) -> String {
        let captured = Captured::default();
        let subscriber = subscriber(format, EnvFilter::new("info"), false, captured.clone());
        tracing::subscriber::with_default(subscriber, event);
        captured.text()
    }

    fn assert_one_clean_line(output: &str) {
        let line = output
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("no line: {output:?}"));
        assert!(
            !line.chars().any(needs_escape),
            "a raw control character reached the output: {line:?}"
        );
        assert!(!line.contains("\nFORGED"));
    }

    #[test]
    fn tracing_subscribers_own_text_format_lets_a_forged_line_through() {
        // Why EscapingFields exists: with tracing-subscriber 0.3.23 alone, the
        // message and Display fields keep their newlines. If this starts
        // failing, tracing-subscriber escapes them itself.
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log_hostile_event);
        let output = captured.text();
        assert!(
            output.lines().any(|line| line.starts_with("FORGED")),
            "{output}"
        );
        assert!(output.contains('\u{9b}') || output.contains('\r'));
    }

    #[test]
    fn the_text_format_escapes_every_value_of_events_and_spans() {
        let output = capture(LogFormat::Text);
        assert_one_clean_line(&output);
        let line = output.trim_end();
        // Rust's notation, as a reader of the line expects it.
        let escaped = r"x\nFORGED line \u{1b}[2J \r\u{7}\u{9b}31m\u{7f}\t\u{2028}\u{202e}end";
        for field in [
            format!("message {escaped}"),
            format!("display={escaped}"),
            format!("error=outer {escaped}: inner {escaped}"),
            format!("call{{path={escaped}}}"),
            "count=3".to_string(),
        ] {
            assert!(line.contains(&field), "{field:?} not in {line}");
        }
        // Debug output was already escaped by Rust; it is not escaped twice.
        assert!(
            line.contains(r#"debug="x\nFORGED line \u{1b}[2J"#),
            "{line}"
        );
        assert!(line.contains(r#"text="x\nFORGED line \u{1b}[2J"#), "{line}");
    }

    #[test]
    fn the_json_format_is_one_clean_object_per_line_that_keeps_the_values() {
        let output = capture(LogFormat::Json);
        assert_one_clean_line(&output);
        let event: serde_json::Value = serde_json::from_str(output.trim_end())
            .unwrap_or_else(|e| panic!("not json ({e}): {output}"));
        let fields = &event["fields"];
        assert_eq!(fields["message"], format!("message {HOSTILE}"));
        assert_eq!(fields["display"], HOSTILE);
        assert_eq!(fields["debug"], format!("{HOSTILE:?}"));
        assert_eq!(fields["text"], HOSTILE);
        assert_eq!(event["span"]["path"], HOSTILE);
        assert_eq!(event["level"], "WARN");
    }

    #[test]
    fn json_lines_have_the_layout_of_tracing_subscribers_own_json_format() {
        let event = || {
            let span = tracing::info_span!("outer", path = "p", n = 7);
            let _entered = span.enter();
            let error = std::io::Error::other("gone");
            tracing::warn!(
                rpc = "/a.B/C",
                upstream_code = -3,
                count = 3u64,
                ms = 1.5,
                ok = true,
                error = &error as &(dyn std::error::Error + 'static),
                debug = ?("x", 1),
                "call {}",
                "done"
            );
        };
        let ours = capture_with(LogFormat::Json, event);
        let theirs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_target(false)
            .with_span_list(false)
            .with_writer(theirs.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let parse = |line: &str| -> serde_json::Value {
            let mut value: serde_json::Value =
                serde_json::from_str(line.trim_end()).unwrap_or_else(|e| panic!("{e}: {line}"));
            let timestamp = value["timestamp"].take();
            let timestamp = timestamp.as_str().expect("a timestamp");
            assert_eq!(
                timestamp.len(),
                "2026-12-06T21:48:19.752077Z".len(),
                "{timestamp}"
            );
            assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T');
            value
        };
        assert_eq!(parse(&ours), parse(&theirs.text()), "{ours}");
    }

    #[test]
    fn json_lines_of_the_log_crate_carry_its_level_and_no_bridge_fields() {
        // What rustls (through the `log` crate) writes: its record as an event.
        let output = capture_with(LogFormat::Json, || {
            let record = tracing_log::log::Record::builder()
                .level(tracing_log::log::Level::Warn)
                .target("rustls::conn")
                .args(format_args!("peer sent no close_notify"))
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
        let event: serde_json::Value = serde_json::from_str(output.trim_end())
            .unwrap_or_else(|e| panic!("not json ({e}): {output}"));
        assert_eq!(event["level"], "WARN", "{output}");
        assert_eq!(event["fields"]["message"], "peer sent no close_notify");
        let fields = event["fields"].as_object().unwrap();
        assert!(
            fields.keys().all(|key| !key.starts_with("log.")),
            "{output}"
        );
    }

    #[test]
    fn http2_and_tls_internals_stay_at_warn_unless_named() {
        let quiet = |directives: Option<&str>, target: &str| {
            let captured = Captured::default();
            let subscriber = subscriber(
                LogFormat::Text,
                log_filter(directives),
                false,
                captured.clone(),
            );
            tracing::subscriber::with_default(subscriber, || {
                tracing::debug!(target: "h2::codec", "frame");
                tracing::debug!(target: "gamegate::core", "call");
                let _ = target;
            });
            captured.text()
        };
        let debug = quiet(Some("debug"), "h2");
        assert!(
            !debug.contains("frame") && debug.contains("call"),
            "{debug}"
        );
        let asked = quiet(Some("debug,h2=debug"), "h2");
        assert!(asked.contains("frame") && asked.contains("call"), "{asked}");
        let default = quiet(None, "h2");
        assert!(default.is_empty(), "{default}");
    }

    #[test]
    fn every_line_of_a_call_carries_its_trace_id() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().unwrap());
        let lines = |format| {
            let captured = Captured::default();
            let subscriber = subscriber(format, log_filter(Some("warn")), false, captured.clone());
            tracing::subscriber::with_default(subscriber, || {
                tracing::warn!("before the call");
                let call = trace::CallTrace::start(
                    Some("/gamegate.v1.StorageService/SetUserStorage"),
                    &headers,
                );
                let _entered = call.span().enter();
                let inner = tracing::warn_span!("inner", path = "p");
                let _inner = inner.enter();
                tracing::warn!(rpc = "r", "rpc failed");
            });
            captured.text()
        };
        let json = lines(LogFormat::Json);
        let json: Vec<serde_json::Value> = json
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect();
        assert_eq!(json.len(), 2, "{json:?}");
        assert!(
            json[0].get("trace_id").is_none(),
            "outside a call: {:?}",
            json[0]
        );
        // First, whatever span is current: the line is the call's.
        assert_eq!(json[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(json[1]["fields"]["message"], "rpc failed");
        assert_eq!(json[1]["span"]["path"], "p");
        let text = lines(LogFormat::Text);
        let call_line = text.lines().nth(1).unwrap_or_default();
        assert!(
            call_line.contains("rpc{trace_id=4bf92f3577b34da6a3ce929d0e0e4736}:inner{path=\"p\"}"),
            "{text}"
        );
    }

    #[test]
    fn the_log_format_is_text_or_json() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("TEXT".parse::<LogFormat>().unwrap(), LogFormat::Text);
        let error = "yaml".parse::<LogFormat>().unwrap_err().to_string();
        assert!(error.contains(LOG_FORMAT_VARIABLE), "{error}");
    }
}

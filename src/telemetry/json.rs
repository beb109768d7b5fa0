//! The JSON log line, written straight into tracing-subscriber's line buffer:
//! `{"trace_id":…,"timestamp":…,"level":…,"fields":{…},"span":{…,"name":…}}`,
//! the layout of tracing-subscriber's own JSON format (with the call's trace
//! id first, what log collectors join traces on).
//!
//! Why not tracing-subscriber's `format().json()`: it builds every line
//! through serde (a serializer per field, a `write_all` per token, the span's
//! fields parsed back from their JSON text) and formats the time through
//! `fmt`; with the access line written on every call, that was 29,000
//! instructions of a 160,000-instruction storage call under callgrind
//! (bench/FINDINGS.md section 13). This writes the same objects for about a
//! tenth of that, escaping as it goes: what JSON requires, and the characters
//! of [`needs_escape`] (DEL, C1 codes, the Unicode separators and overrides),
//! so no raw control character reaches the output, whatever a caller sent.

use std::{
    cell::RefCell,
    fmt::{self, Write as _},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_log::NormalizeEvent;
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, format::Writer},
    registry::LookupSpan,
};

use super::{escape::needs_escape, trace::CallTraceId};

/// The event format of `GAMEGATE_LOG_FORMAT=json`. Span fields are those of
/// the layer's field formatter: it must be tracing-subscriber's `JsonFields`
/// (the layer's `.json()`), whose text is spliced in as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Events of the `log` crate (rustls, for one) carry their level as
        // theirs, not as the bridge's.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{")?;
        let trace_id = ctx.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<CallTraceId>().copied())
        });
        if let Some(CallTraceId(trace_id)) = trace_id {
            writer.write_str("\"trace_id\":\"")?;
            writer.write_str(trace_id.as_str())?;
            writer.write_str("\",")?;
        }
        writer.write_str("\"timestamp\":\"")?;
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(level_name(metadata.level()))?;
        writer.write_str("\",\"fields\":{")?;
        let mut fields = FieldsVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str("}")?;
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = current {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            if let Some(formatted) = extensions.get::<FormattedFields<N>>() {
                // JsonFields' text, `{"path":"p"}`: its members, escaped for
                // what serde_json leaves raw.
                let members = formatted.fields.trim();
                let members = members
                    .strip_prefix('{')
                    .and_then(|members| members.strip_suffix('}'))
                    .unwrap_or("");
                if !members.is_empty() {
                    write_unescaped_rest(&mut writer, members)?;
                    writer.write_str(",")?;
                }
            }
            writer.write_str("\"name\":")?;
            write_string(&mut writer, span.name())?;
            writer.write_str("}")?;
        }
        writer.write_str("}\n")
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// An event's fields as the members of `"fields"`, in the order recorded.
struct FieldsVisitor<'a, 'writer> {
    writer: &'a mut Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl FieldsVisitor<'_, '_> {
    /// Writes `"name":` and then the value, unless the field is one of the
    /// `log` bridge's own (`log.target`, …: already in the metadata).
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let writer = &mut *self.writer;
        // Field names are the code's own identifiers (`tracing` macros take
        // no name from a caller): written as they are.
        let opening = if std::mem::take(&mut self.first) {
            "\""
        } else {
            ",\""
        };
        self.result = (|| {
            writer.write_str(opening)?;
            writer.write_str(field.name())?;
            writer.write_str("\":")?;
            value(writer)
        })();
    }
}

impl FieldsVisitor<'_, '_> {
    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        self.member(field, |writer| {
            writer.write_str(itoa::Buffer::new().format(value))
        });
    }
}

impl Visit for FieldsVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |writer| write_string(writer, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |writer| {
            writer.write_str("\"")?;
            write!(StringContents(writer), "{value:?}")?;
            writer.write_str("\"")
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.member(field, |writer| {
            writer.write_str("\"")?;
            write!(StringContents(writer), "{value}")?;
            writer.write_str("\"")
        });
    }

    // Numbers through itoa and ryu (serde_json's own): `fmt` costs several
    // times as much per number.
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.integer(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.integer(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too.
        self.member(field, |writer| match value.is_finite() {
            true => writer.write_str(ryu::Buffer::new().format_finite(value)),
            false => writer.write_str("null"),
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |writer| {
            writer.write_str(if value { "true" } else { "false" })
        });
    }
}

/// `text` as a JSON string, quotes included.
fn write_string(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    writer.write_str("\"")?;
    write_string_contents(writer, text)?;
    writer.write_str("\"")
}

/// What goes between the quotes of a JSON string holding `text`: `"`, `\`
/// and control characters escaped as JSON requires, the other characters of
/// [`needs_escape`] as `\uXXXX`.
fn write_string_contents(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let bytes = text.as_bytes();
    let mut clean_from = 0;
    let mut at = 0;
    while at < bytes.len() {
        if PLAIN[usize::from(bytes[at])] {
            at += 1;
            continue;
        }
        let c = text[at..].chars().next().expect("at is a char boundary");
        let width = c.len_utf8();
        let escape = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ if needs_escape(c) => None,
            // Any other non-ASCII character is written as it is.
            _ => {
                at += width;
                continue;
            }
        };
        writer.write_str(&text[clean_from..at])?;
        match escape {
            Some(escape) => writer.write_str(escape)?,
            None => write_u_escape(writer, c)?,
        }
        at += width;
        clean_from = at;
    }
    writer.write_str(&text[clean_from..])
}

/// The bytes written as they are, one look-up each: printable ASCII but the
/// quote and the backslash (the usual case).
static PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut byte = 0x20;
    while byte < 0x7f {
        plain[byte] = byte != b'"' as usize && byte != b'\\' as usize;
        byte += 1;
    }
    plain
};

/// `\uXXXX` of a character of the Basic Multilingual Plane (every character
/// of [`needs_escape`] is one).
fn write_u_escape(writer: &mut impl fmt::Write, c: char) -> fmt::Result {
    write!(writer, "\\u{:04x}", c as u32)
}

/// JSON text whose strings are escaped as JSON requires (serde_json's): the
/// other characters of [`needs_escape`] written as `\uXXXX`, valid inside
/// the strings, the only place such a character can be.
fn write_unescaped_rest(writer: &mut impl fmt::Write, json: &str) -> fmt::Result {
    let mut clean_from = 0;
    for (at, c) in json.char_indices() {
        if (c as u32) < 0x7f || !needs_escape(c) {
            continue;
        }
        writer.write_str(&json[clean_from..at])?;
        write_u_escape(writer, c)?;
        clean_from = at + c.len_utf8();
    }
    writer.write_str(&json[clean_from..])
}

/// A `fmt::Write` that writes what it is given as JSON string contents.
struct StringContents<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for StringContents<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_string_contents(self.0, text)
    }
}

thread_local! {
    /// The second a line was last written in, and its text up to the
    /// seconds (`2026-12-06T21:48:19`): lines of one second share it.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `at` in RFC 3339, UTC, to the microsecond (`2026-12-06T21:48:19.752077Z`),
/// as tracing-subscriber writes it.
fn write_timestamp(writer: &mut impl fmt::Write, at: SystemTime) -> fmt::Result {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != seconds {
            let time = i64::try_from(seconds)
                .ok()
                .and_then(|seconds| time::OffsetDateTime::from_unix_timestamp(seconds).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let text = &mut second.1;
            text.clear();
            write!(
                text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                time.year(),
                u8::from(time.month()),
                time.day(),
                time.hour(),
                time.minute(),
                time.second()
            )?;
            second.0 = seconds;
        }
        writer.write_str(&second.1)
    })?;
    write!(writer, ".{:06}Z", since_epoch.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(text: &str) -> String {
        let mut out = String::new();
        write_string_contents(&mut out, text).unwrap();
        out
    }

    #[test]
    fn strings_are_escaped_as_json_requires_and_as_a_terminal_needs() {
        assert_eq!(contents("plain text"), "plain text");
        assert_eq!(contents("caf\u{e9} \u{4e2d}"), "caf\u{e9} \u{4e2d}");
        assert_eq!(contents("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(contents("x\ny\r\tz"), "x\\ny\\r\\tz");
        assert_eq!(
            contents("\u{1b}[2J\u{7}\u{7f}\u{9b}\u{2028}\u{202e}"),
            "\\u001b[2J\\u0007\\u007f\\u009b\\u2028\\u202e"
        );
        // What comes out parses back to what went in.
        let hostile = "x\nFORGED \u{1b}[2J \r\u{7}\u{9b}31m\u{7f}\t\u{2028}\u{202e}\"\\end";
        let parsed: String = serde_json::from_str(&format!("\"{}\"", contents(hostile))).unwrap();
        assert_eq!(parsed, hostile);
    }

    #[test]
    fn spliced_json_keeps_its_escapes_and_loses_its_raw_c1_codes() {
        let mut out = String::new();
        write_unescaped_rest(&mut out, "\"path\":\"a\\n\u{85}\u{2029}caf\u{e9}\"").unwrap();
        assert_eq!(out, "\"path\":\"a\\n\\u0085\\u2029caf\u{e9}\"");
    }

    #[test]
    fn timestamps_are_rfc_3339_to_the_microsecond() {
        let at = UNIX_EPOCH + std::time::Duration::from_micros(1_796_600_899_752_077);
        let mut out = String::new();
        write_timestamp(&mut out, at).unwrap();
        assert_eq!(out, "2026-12-06T23:48:19.752077Z");
        // The same second again, from the cache; then the next one.
        let mut again = String::new();
        write_timestamp(&mut again, at + std::time::Duration::from_micros(5)).unwrap();
        assert_eq!(again, "2026-12-06T23:48:19.752082Z");
        let mut next = String::new();
        write_timestamp(&mut next, at + std::time::Duration::from_secs(41)).unwrap();
        assert_eq!(next, "2026-12-06T23:49:00.752077Z");
    }
}

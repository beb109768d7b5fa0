//! Control characters never reach the log output. Callers choose some of what
//! gamegate logs (an `app_id` inside an error, a path): a newline in it would
//! forge a log line of its own, an ESC would drive the operator's terminal.
//!
//! tracing-subscriber 0.3.23 sanitises only part of this: the `message` and
//! errors recorded as `&dyn Error` lose ESC, BEL, BS, FF, DEL and C1 codes, but
//! keep newlines and carriage returns; a field recorded with `%` (Display, how
//! gamegate logs `%error`) is written untouched. So the text format records
//! every value through [`EscapingFields`], and the JSON format
//! (`telemetry::json`) escapes these characters itself.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    field::{MakeVisitor, VisitFmt, VisitOutput},
    fmt::format::DefaultFields,
};

/// What is written escaped: control characters (C0, DEL, C1, which includes
/// NEL), the Unicode line and paragraph separators (some log viewers break
/// lines there) and the bidirectional overrides and isolates (they reorder what
/// a terminal shows).
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// A `fmt::Write` that writes `\n`, `\r`, `\t` and `\u{1b}` (Rust's own
/// notation) in place of the characters of [`needs_escape`].
struct EscapingWrite<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for EscapingWrite<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut clean_from = 0;
        for (at, c) in text.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            self.0.write_str(&text[clean_from..at])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{{{:x}}}", other as u32)?,
            }
            clean_from = at + c.len_utf8();
        }
        self.0.write_str(&text[clean_from..])
    }
}

/// A value whose Debug output is written escaped.
struct Escaped<'a>(&'a dyn fmt::Debug);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::write(&mut EscapingWrite(f), format_args!("{:?}", self.0))
    }
}

/// An error and its sources, `error: source: source`, as Debug.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// The field formatter of the text format: tracing-subscriber's own
/// ([`DefaultFields`], or any other), fed every value escaped. Events and span
/// fields both go through it. Numbers and booleans pass as they are.
#[derive(Debug, Default)]
pub struct EscapingFields<M = DefaultFields>(pub M);

impl EscapingFields {
    /// tracing-subscriber's default field format, escaped.
    pub fn new() -> Self {
        EscapingFields(DefaultFields::new())
    }
}

impl<T, M: MakeVisitor<T>> MakeVisitor<T> for EscapingFields<M> {
    type Visitor = EscapingVisitor<M::Visitor>;

    fn make_visitor(&self, target: T) -> Self::Visitor {
        EscapingVisitor(self.0.make_visitor(target))
    }
}

/// The visitor of [`EscapingFields`].
#[derive(Debug)]
pub struct EscapingVisitor<V>(V);

impl<V: Visit> Visit for EscapingVisitor<V> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.record_debug(field, &Escaped(value))
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        // As the default formatter does: the message as text, other strings quoted.
        if field.name() == "message" {
            self.0
                .record_debug(field, &Escaped(&format_args!("{value}")))
        } else {
            self.0.record_debug(field, &Escaped(&value))
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.record_debug(field, &Escaped(&ErrorChain(value)))
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.record_i64(field, value)
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.record_u64(field, value)
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.0.record_i128(field, value)
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.0.record_u128(field, value)
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.record_f64(field, value)
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.record_bool(field, value)
    }
}

impl<V: VisitOutput<fmt::Result>> VisitOutput<fmt::Result> for EscapingVisitor<V> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl<V: VisitFmt> VisitFmt for EscapingVisitor<V> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

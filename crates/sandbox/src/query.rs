//! Query-string parsing that keeps what signatures need: every pair in order, decoded to bytes.
//!
//! axum's `Query` would fold duplicates and reject what it cannot decode; the platforms sign the
//! decoded values of every parameter they received, so the sandbox parses the query itself.

use std::borrow::Cow;

use percent_encoding::percent_decode;

/// The decoded `name=value` pairs of a query string, in the order received.
#[derive(Debug, Default)]
pub(crate) struct QueryParams {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl QueryParams {
    /// Parses with form semantics (`+` is a space, then percent-decoding), as the platforms'
    /// servers do. A literal `+` therefore has to be sent as `%2B`, which is what SIGNING.md asks
    /// of clients for the base64 `sig`.
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
                (decode(name), decode(value))
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `name`, if present (lossy for invalid UTF-8, which then simply fails
    /// the checks that use it).
    pub(crate) fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v))
    }

    /// The first value of `name` if present and not empty.
    pub(crate) fn get_non_empty(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get(name).filter(|value| !value.is_empty())
    }

    /// Every pair except those named `excluded`, as raw decoded bytes.
    pub(crate) fn pairs_except<'a>(
        &'a self,
        excluded: &'a str,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n != excluded.as_bytes())
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }
}

fn decode(component: &str) -> Vec<u8> {
    let spaced = component.replace('+', " ");
    percent_decode(spaced.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let params = QueryParams::parse(Some("sig=d%2FbuL2n%2B%3D&note=a+b%20c&empty=&flag&&x=1"));
        assert_eq!(params.get("sig").as_deref(), Some("d/buL2n+="));
        assert_eq!(params.get("note").as_deref(), Some("a b c"));
        assert_eq!(params.get("empty").as_deref(), Some(""));
        assert_eq!(params.get_non_empty("empty"), None);
        assert_eq!(params.get("flag").as_deref(), Some(""));
        assert_eq!(params.get("missing"), None);
        let names: Vec<&[u8]> = params.pairs_except("sig").map(|(n, _)| n).collect();
        assert_eq!(
            names,
            vec![&b"note"[..], &b"empty"[..], &b"flag"[..], &b"x"[..]]
        );
    }

    #[test]
    fn first_duplicate_wins_for_lookups() {
        let params = QueryParams::parse(Some("a=1&a=2"));
        assert_eq!(params.get("a").as_deref(), Some("1"));
        assert_eq!(params.pairs_except("sig").count(), 2);
    }

    #[test]
    fn no_query_is_empty() {
        assert_eq!(QueryParams::parse(None).get("a"), None);
    }
}

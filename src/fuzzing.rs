//! What the fuzz targets of `fuzz/` run: one function per target, taking the
//! fuzzer's bytes, and the properties each checks. Behind the `fuzzing` feature
//! (off by default), so that none of it is gamegate's API; it sits above every
//! module (`layering`) and no module uses it.
//!
//! Everything gamegate refuses (a message that is not protobuf, a broken limit,
//! an answer that is not json or not http) is an expected outcome. A function
//! panics only where gamegate itself would (a bug), or where a property fails.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::HeaderMap;
use prost::Message;
use prost_reflect::DynamicMessage;
use tokio::io::AsyncWriteExt;

use crate::{
    errors::GatewayError,
    plan::{self, Route, RouteTable},
    platform::{
        envelope, minigame,
        msdk::{self, msdktea},
        openapi, signing,
    },
    proto::{DESCRIPTOR_POOL, Platform},
    upstream::{self, ErrorKind, UpstreamAnswer},
};

/// Every declared route, by gRPC path: a corpus file's first byte keeps naming
/// the same route as long as no route is added or removed.
pub static ROUTES: LazyLock<Vec<Arc<Route>>> = LazyLock::new(|| {
    let table = RouteTable::from_pool(&DESCRIPTOR_POOL).expect("the declared routes compile");
    let mut routes: Vec<Arc<Route>> = DESCRIPTOR_POOL
        .services()
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .map(|method| format!("/{}/{}", method.parent_service().full_name(), method.name()))
        .filter_map(|path| table.get(&path).cloned())
        .collect();
    routes.sort_by(|a, b| a.grpc_path.cmp(&b.grpc_path));
    assert!(routes.len() <= 256, "one input byte must reach every route");
    routes
});

/// The index of a route in [`ROUTES`]: the first byte of its corpus files.
pub fn route_index(grpc_path: &str) -> Option<u8> {
    let index = ROUTES.iter().position(|r| r.grpc_path == grpc_path)?;
    u8::try_from(index).ok()
}

/// The route an input's first byte picks, and the rest of the input.
fn route_of(input: &[u8]) -> Option<(&'static Route, &[u8])> {
    let (first, rest) = input.split_first()?;
    let route: &'static Route = &ROUTES[usize::from(*first) % ROUTES.len()];
    Some((route, rest))
}

/// What every error becomes before it leaves gamegate: a status with details,
/// then the headers of a gRPC answer.
fn reported(error: &GatewayError) -> tonic::Status {
    let status = error.to_status();
    let _ = status.clone().into_http::<()>();
    status
}

/// `[route] protobuf`: the request decoded as the route's input type (as the
/// gRPC codec does), validated and mapped; then what the platform clients do
/// with a mapped request.
pub fn request(input: &[u8]) {
    let Some((route, bytes)) = route_of(input) else {
        return;
    };
    let Ok(message) = DynamicMessage::decode(route.method_descriptor.input(), bytes) else {
        return;
    };
    match plan::build_request(route, &message) {
        Ok(request) => {
            // The json body of POST interfaces, and every query parameter in
            // the target: the upstream client refuses a target with a space or
            // a control character, which would let a value rewrite the request.
            let _ = serde_json::to_vec(&request.body).expect("a json map always serializes");
            let mut target = format!("{}?", route.path);
            signing::push_query_pairs(&mut target, request.query.iter().map(|(n, v)| (n, v)));
            assert!(
                !target.bytes().any(|b| b <= b' ' || b == 0x7f),
                "{}: a mapped query holds a byte a target may not: {target:?}",
                route.grpc_path
            );
        }
        Err(error) => {
            assert!(
                matches!(&error, GatewayError::InvalidRequest { violations } if !violations.is_empty()),
                "{}: a refused request names no violation: {error:?}",
                route.grpc_path
            );
            assert_eq!(reported(&error).code(), tonic::Code::InvalidArgument);
        }
    }
}

/// `[route] json`: an upstream answer decoded leniently into the route's
/// output type, which must then survive the protobuf encoding of the answer.
pub fn response(input: &[u8]) {
    let Some((route, json)) = route_of(input) else {
        return;
    };
    let Ok(object) = envelope::json_object(route.platform, &route.path, json) else {
        return;
    };
    let Ok(message) = plan::decode_response(&route.response, &object) else {
        return;
    };
    // What the gateway sends (api::wire's one-pass encoding) is what
    // prost-reflect would have encoded.
    let wire = crate::api::wire::encode_to_vec(&message);
    assert_eq!(
        wire,
        message.encode_to_vec(),
        "{}: the one-pass encoding differs from prost-reflect's",
        route.grpc_path
    );
    let decoded = DynamicMessage::decode(route.response.descriptor.clone(), wire.as_slice())
        .unwrap_or_else(|e| {
            panic!(
                "{}: a decoded answer encodes to bad protobuf: {e}",
                route.grpc_path
            )
        });
    assert_eq!(
        decoded.encode_to_vec(),
        wire,
        "{}: the encoded answer changed through a decode",
        route.grpc_path
    );
}

/// `[route] [flags] body`: the answer body of the route's platform through that
/// platform's envelope. Flags: bit 0, MSDK's `Content-Encrypt: msdktea` header;
/// bit 1, MSDK's body encrypted first (so that the envelope behind decryption is
/// reached); bit 2, a mini-game `getToken` answer instead.
pub fn envelope(input: &[u8]) {
    let Some((route, rest)) = route_of(input) else {
        return;
    };
    let Some((flags, body)) = rest.split_first() else {
        return;
    };
    let outcome = match route.platform {
        Platform::QqMinigame if flags & 4 != 0 => {
            minigame::token::read_token_answer("1112345678", body).map(|_| ())
        }
        Platform::QqMinigame => minigame::read_answer(route, body).map(|_| ()),
        Platform::QqOpenapi => openapi::read_answer(route, body).map(|_| ()),
        Platform::Msdk => {
            let mut headers = HeaderMap::new();
            if flags & 3 != 0 {
                headers.insert("content-encrypt", http::HeaderValue::from_static("msdktea"));
            }
            let body = if flags & 2 != 0 {
                let mut random = body.iter().copied().cycle();
                Bytes::from(msdktea::encrypt_with(body, || random.next().unwrap_or(0)))
            } else {
                Bytes::copy_from_slice(body)
            };
            msdk::read_answer(
                route,
                &UpstreamAnswer {
                    status: 200,
                    headers,
                    body,
                },
            )
            .map(|_| ())
        }
        Platform::Unspecified => unreachable!("every route names its platform"),
    };
    if let Err(error) = outcome {
        let _ = reported(&error);
    }
}

/// Any bytes decrypted as an msdktea body; then `[8 random bytes] data`
/// encrypted with those bytes and decrypted back.
pub fn msdktea(input: &[u8]) {
    if let Ok(plain) = msdktea::decrypt(input) {
        // A header byte, two salt bytes and seven zeros frame the data.
        assert!(plain.len() + 10 <= input.len());
    }
    let (random, data) = input.split_at(input.len().min(8));
    let mut random = random.iter().copied().cycle();
    let cipher = msdktea::encrypt_with(data, || random.next().unwrap_or(0x5a));
    assert_eq!(cipher.len(), (data.len() + 10).div_ceil(8) * 8);
    assert_eq!(msdktea::decrypt(&cipher).as_deref(), Ok(data));
}

/// A parsed answer, as far as a caller of the upstream client can tell.
#[derive(Debug, PartialEq)]
struct Parsed {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    keep_alive: bool,
}

thread_local! {
    /// One runtime for every input: building one per input would cost more than
    /// most parses.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
}

/// Reads `answer` as the upstream client does, the platform writing at most
/// `chunk` bytes at a time.
fn parse_answer(answer: &[u8], chunk: usize) -> Result<Parsed, ErrorKind> {
    RUNTIME.with(|runtime| {
        runtime.block_on(async {
            let (ours, mut platform) = tokio::io::duplex(chunk);
            let writing = async move {
                // Fails once the parser stops reading (an error, or an answer
                // complete before the input ends): nothing to check.
                let _ = platform.write_all(answer).await;
                let _ = platform.shutdown().await;
            };
            let ((), parsed) = tokio::join!(writing, upstream::read_answer_from(ours));
            let (status, UpstreamAnswer { headers, body, .. }, keep_alive) = parsed?;
            Ok(Parsed {
                status,
                headers,
                body,
                keep_alive,
            })
        })
    })
}

/// Limits are checked on what has been read so far, so they may cut an answer
/// at a different byte depending on how it arrived.
fn is_limit(outcome: &Result<Parsed, ErrorKind>) -> bool {
    matches!(
        outcome,
        Err(ErrorKind::TooLarge(_) | ErrorKind::Protocol("chunk size line too long"))
    )
}

/// `[chunk] answer`: an upstream HTTP/1.1 answer read as it arrives `chunk + 1`
/// bytes at a time, and read as it arrives in large reads: the two readings
/// must agree (framing does not depend on how the bytes were cut), except where
/// a limit cut one of them. An accepted answer must also obey the framing
/// rules (`upstream::connection`'s module doc), checked here from what the
/// caller sees: [`framing_holds`].
pub fn http_answer(input: &[u8]) {
    let Some((chunk, answer)) = input.split_first() else {
        return;
    };
    let trickled = parse_answer(answer, usize::from(*chunk) + 1);
    let whole = parse_answer(answer, 1 << 20);
    let same = match (&trickled, &whole) {
        (Ok(a), Ok(b)) => a == b,
        (Err(a), Err(b)) => a.to_string() == b.to_string(),
        _ => false,
    };
    assert!(
        same || is_limit(&trickled) || is_limit(&whole),
        "the answer read {} bytes at a time gave {trickled:?}, read whole {whole:?}",
        usize::from(*chunk) + 1
    );
    if let Ok(parsed) = &whole {
        framing_holds(answer, parsed);
    }
}

/// The values of every `name` field, as comma-separated elements without
/// their surrounding whitespace (empty ones left out).
fn elements<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h [u8]> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(|element| element.trim_ascii())
        .filter(|element| !element.is_empty())
        .collect()
}

/// What an accepted answer must be: a final status (never 1xx); a body within
/// the limit; `Transfer-Encoding`, when present, exactly `chunked`; a body as
/// long as its one declared `Content-Length` when that frames it; and never
/// kept alive after ambiguous framing (both fields; `Transfer-Encoding` in
/// HTTP/1.0), a `Connection: close`, or a body delimited by the close.
fn framing_holds(answer: &[u8], parsed: &Parsed) {
    let shown = || String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
    assert!(
        parsed.status >= 200,
        "accepted a {} as final: {:?}",
        parsed.status,
        shown()
    );
    assert!(parsed.body.len() <= upstream::DEFAULT_MAX_ANSWER_BYTES);
    let codings = elements(&parsed.headers, "transfer-encoding");
    let lengths = elements(&parsed.headers, "content-length");
    let chunked = parsed.headers.contains_key("transfer-encoding");
    if chunked {
        assert!(
            codings.len() == 1 && codings[0].eq_ignore_ascii_case(b"chunked"),
            "accepted a transfer-encoding other than chunked: {:?}",
            shown()
        );
    }
    let declared: Vec<u64> = lengths
        .iter()
        .map(|length| {
            std::str::from_utf8(length)
                .ok()
                .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse().ok())
                .unwrap_or_else(|| panic!("accepted a content-length {length:?}: {:?}", shown()))
        })
        .collect();
    assert!(
        declared.windows(2).all(|pair| pair[0] == pair[1]),
        "accepted conflicting content-lengths: {:?}",
        shown()
    );
    let bodiless = matches!(parsed.status, 204 | 304);
    if let (Some(length), false, false) = (declared.first(), chunked, bodiless) {
        assert_eq!(
            parsed.body.len() as u64,
            *length,
            "a body unlike its content-length: {:?}",
            shown()
        );
    }
    if !parsed.keep_alive {
        return;
    }
    let closing = elements(&parsed.headers, "connection")
        .iter()
        .any(|token| token.eq_ignore_ascii_case(b"close"));
    assert!(
        !closing,
        "kept alive after connection: close: {:?}",
        shown()
    );
    assert!(
        !chunked || declared.is_empty(),
        "kept alive after both transfer-encoding and content-length: {:?}",
        shown()
    );
    assert!(
        chunked || !declared.is_empty() || bodiless,
        "kept alive after a body delimited by the close: {:?}",
        shown()
    );
    // The final head's version: the last head in the input that parses
    // before the body (1xx heads come first, each of them bodiless).
    let mut rest = answer;
    loop {
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut slots);
        let Ok(httparse::Status::Complete(len)) = head.parse(rest) else {
            panic!(
                "an accepted answer whose head does not parse: {:?}",
                shown()
            );
        };
        if head.code.is_some_and(|code| (100..200).contains(&code)) {
            rest = &rest[len..];
            continue;
        }
        assert!(
            head.version != Some(0) || !chunked,
            "kept alive an http/1.0 answer with transfer-encoding: {:?}",
            shown()
        );
        break;
    }
}

//! The README's grpcurl examples work: each `-d` JSON is parsed with the method's
//! descriptor (as grpcurl does through reflection) and invoked on a live gamegate.

use gamegate::{api::DynamicCodec, proto::DESCRIPTOR_POOL};
use prost_reflect::DynamicMessage;
use tonic::client::Grpc;

use crate::common::Harness;

/// (method path, request JSON) of every `grpcurl ... -d '<json>' ... <service>/<method>`.
/// A login code in an example (`"js_code":"'"$CODE"'"`) is read as `$CODE`,
/// which the test replaces with one the sandbox minted.
fn readme_examples() -> Vec<(String, String)> {
    let readme = include_str!("../../README.md")
        .replace("\\\n", " ")
        .replace("'\"$CODE\"'", "$CODE");
    readme
        .lines()
        .filter(|line| line.trim_start().starts_with("grpcurl") && line.contains(" -d '"))
        .map(|line| {
            let json = line
                .split(" -d '")
                .nth(1)
                .unwrap()
                .split('\'')
                .next()
                .unwrap();
            let method = line.split_whitespace().last().unwrap();
            (method.to_string(), json.to_string())
        })
        .filter(|(method, _)| method.starts_with("gamegate."))
        .collect()
}

#[tokio::test]
async fn readme_grpcurl_examples_succeed() {
    let harness = Harness::start().await;
    let examples = readme_examples();
    // At least one example per gamegate service.
    let services: std::collections::BTreeSet<&str> = examples
        .iter()
        .map(|(method, _)| method.split('/').next().unwrap())
        .collect();
    let served: Vec<_> = DESCRIPTOR_POOL
        .services()
        .filter(|s| s.package_name() == "gamegate.v1")
        .map(|s| s.full_name().to_string())
        .collect();
    for service in &served {
        assert!(
            services.contains(service.as_str()),
            "README has no example of {service}"
        );
    }
    for (method, mut json) in examples {
        if json.contains("$CODE") {
            let minted = harness
                .admin_post(
                    "/minigame/codes",
                    serde_json::json!({
                        "appid": crate::common::demo::MINIGAME_APPID,
                        "openid": crate::common::demo::MINIGAME_BOB_OPENID,
                    }),
                )
                .await;
            json = json.replace("$CODE", minted["js_code"].as_str().unwrap());
        }
        let (service, rpc) = method.split_once('/').unwrap();
        let descriptor = DESCRIPTOR_POOL
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == rpc))
            .unwrap_or_else(|| panic!("README names an unknown method {method}"));
        let mut deserializer = serde_json::Deserializer::from_str(&json);
        let request = DynamicMessage::deserialize(descriptor.input(), &mut deserializer)
            .unwrap_or_else(|e| panic!("README example of {method} is not its request: {e}"));
        let mut grpc = Grpc::new(harness.channel.clone());
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::try_from(format!("/{method}")).unwrap();
        let answer = grpc
            .unary(
                tonic::Request::new(request),
                path,
                DynamicCodec::new(descriptor.output()),
            )
            .await
            .unwrap_or_else(|e| panic!("README example of {method} failed: {e:?}"));
        let _ = answer.into_inner();
    }
}

/// One README `curl` line, read the way curl reads it.
#[derive(Debug)]
struct CurlExample {
    line: String,
    url: String,
    headers: Vec<(String, String)>,
    /// `-d` bodies, in order (joined with `&` as curl does).
    data: Vec<String>,
    /// `-G`: the data goes into the query of a GET.
    get: bool,
}

/// Splits a shell line into words: single-quoted strings and bare words (all the README uses).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for quoted in chars.by_ref() {
                    if quoted == '\'' {
                        break;
                    }
                    word.push(quoted);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' | '\\' | '$' | '`' => panic!("README curl line needs a real shell ({c:?}): {line}"),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Every `curl ...` line of the README (continuations joined), with `127.0.0.1:50051` (the
/// documented address) replaced by `endpoint`.
fn readme_curl_examples(endpoint: &str) -> Vec<CurlExample> {
    let readme = include_str!("../../README.md")
        .replace("\\\n", " ")
        .replace("'\"$CODE\"'", "$CODE");
    readme
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("curl "))
        .map(|line| {
            let mut example = CurlExample {
                line: line.to_string(),
                url: String::new(),
                headers: Vec::new(),
                data: Vec::new(),
                get: false,
            };
            let mut words = shell_words(line).into_iter().skip(1);
            while let Some(word) = words.next() {
                let mut value = || {
                    words
                        .next()
                        .unwrap_or_else(|| panic!("{word} without a value: {line}"))
                };
                match word.as_str() {
                    "-s" | "-S" | "-sS" | "--fail-with-body" => {}
                    "-G" | "--get" => example.get = true,
                    "-H" | "--header" => {
                        let header = value();
                        let (name, value) = header
                            .split_once(':')
                            .unwrap_or_else(|| panic!("bad header {header:?}: {line}"));
                        example
                            .headers
                            .push((name.trim().to_string(), value.trim().to_string()));
                    }
                    "-d" | "--data" => example.data.push(value()),
                    "--data-urlencode" => {
                        // name=content: content percent-encoded, as curl does
                        let pair = value();
                        let (name, content) = pair.split_once('=').unwrap_or(("", &pair));
                        let encoded = percent_encoding::utf8_percent_encode(
                            content,
                            percent_encoding::NON_ALPHANUMERIC,
                        )
                        .to_string();
                        example.data.push(if name.is_empty() {
                            encoded
                        } else {
                            format!("{name}={encoded}")
                        });
                    }
                    url if url.starts_with("http://") => {
                        example.url = url.replace("http://127.0.0.1:50051", endpoint);
                    }
                    other => panic!("README curl option {other:?} is not understood here: {line}"),
                }
            }
            assert!(
                !example.url.is_empty(),
                "README curl line without a URL: {line}"
            );
            example
        })
        .collect()
}

#[tokio::test]
async fn readme_curl_examples_succeed_over_connect() {
    let harness = Harness::start().await;
    let endpoint = harness.gateway.as_ref().unwrap().endpoint();
    let examples = readme_curl_examples(&endpoint);
    // At least one Connect example per gamegate service, and at least one by GET.
    let services: std::collections::BTreeSet<String> = examples
        .iter()
        .filter_map(|example| {
            let path = example.url.strip_prefix(&endpoint)?;
            Some(path.trim_start_matches('/').split('/').next()?.to_string())
        })
        .collect();
    for service in DESCRIPTOR_POOL
        .services()
        .filter(|s| s.package_name() == "gamegate.v1")
    {
        assert!(
            services.contains(service.full_name()),
            "README has no curl example of {}",
            service.full_name()
        );
    }
    assert!(
        examples.iter().any(|example| example.get),
        "README has no curl example by GET"
    );
    // curl speaks HTTP/1.1 to an http:// URL.
    let client = reqwest::Client::builder().http1_only().build().unwrap();
    for example in examples {
        let mut body = example.data.join("&");
        if body.contains("$CODE") {
            let minted = harness
                .admin_post(
                    "/minigame/codes",
                    serde_json::json!({
                        "appid": crate::common::demo::MINIGAME_APPID,
                        "openid": crate::common::demo::MINIGAME_BOB_OPENID,
                    }),
                )
                .await;
            body = body.replace("$CODE", minted["js_code"].as_str().unwrap());
        }
        let mut request = if example.get {
            let separator = if example.url.contains('?') { '&' } else { '?' };
            client.get(format!("{}{separator}{body}", example.url))
        } else if example.data.is_empty() {
            client.get(&example.url)
        } else {
            // curl's -d: a POST, `application/x-www-form-urlencoded` unless a header says otherwise
            let request = client.post(&example.url).body(body);
            if example
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            {
                request
            } else {
                request.header("content-type", "application/x-www-form-urlencoded")
            }
        };
        for (name, value) in &example.headers {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("README curl example failed: {e}\n{}", example.line));
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        assert_eq!(
            status,
            reqwest::StatusCode::OK,
            "README curl example answered {status}: {text}\n{}",
            example.line
        );
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{}",
            example.line
        );
        let answer: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("README curl example answered no JSON ({e}): {text}"));
        assert!(answer.is_object(), "{answer}\n{}", example.line);
    }
}

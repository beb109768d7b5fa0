use std::time::{Duration, Instant};

use gamegate_sandbox::demo;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const TOKEN: &str = "/api/getToken";

fn token_query() -> String {
    format!(
        "{TOKEN}?grant_type=client_credential&appid={}&secret={}",
        demo::MINIGAME_APPID,
        demo::MINIGAME_SECRET
    )
}

impl Harness {
    async fn fault(&self, spec: Value) -> u64 {
        let (status, answer) = self.admin(Method::POST, "/_sandbox/faults", spec).await;
        assert_eq!(status, 200, "{answer}");
        answer["id"].as_u64().unwrap()
    }
}

#[tokio::test]
async fn busy_answers_each_platforms_busy_code_once() {
    let h = start().await;
    h.fault(json!({"path": TOKEN, "busy": true})).await;
    h.fault(json!({"path": DAWANKA_INFO, "busy": true})).await;

    assert_eq!(
        h.get_json(&token_query()).await,
        json!({"errcode": -1, "errmsg": "system busy"})
    );
    assert_eq!(h.get_json(&token_query()).await["errcode"], 0, "consumed");
    assert_eq!(
        h.openapi(DAWANKA_INFO, &super_player()).await,
        json!({"ret": 2_000_030, "msg": "backend error"})
    );
    assert_eq!(h.openapi(DAWANKA_INFO, &super_player()).await["ret"], 0);
}

#[tokio::test]
async fn code_fault_answers_that_code_in_the_platform_envelope() {
    let h = start().await;
    h.fault(json!({"path": TOKEN, "code": 45009})).await;
    h.fault(json!({"path": DAWANKA_PAY, "code": 2_000_007}))
        .await;
    let answer = h.get_json(&token_query()).await;
    assert_eq!(answer["errcode"], 45009);
    assert!(answer["errmsg"].is_string());
    let answer = h.openapi(DAWANKA_PAY, &super_player()).await;
    assert_eq!(answer["ret"], 2_000_007);
    // The faulted report did not reach the handler: nothing was used.
    assert_eq!(h.openapi(DAWANKA_PAY, &super_player()).await["use"], 1);
}

#[tokio::test]
async fn http_status_fault() {
    let h = start().await;
    h.fault(json!({"path": SET, "http_status": 503})).await;
    let response = h
        .client
        .post(h.url(&format!("{SET}?whatever=1")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.unwrap(), "503 Service Unavailable");
}

#[tokio::test]
async fn malformed_fault_is_200_without_json() {
    let h = start().await;
    h.fault(json!({"malformed": true})).await;
    let response = h.client.get(h.url(&token_query())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn drop_connection_closes_without_an_answer() {
    let h = start().await;
    h.fault(json!({"path": DAWANKA_INFO, "drop_connection": true}))
        .await;
    let url = h.url(&openapi_path(
        demo::OPENAPI_APPKEY,
        DAWANKA_INFO,
        &super_player(),
    ));
    // A fresh client, so that no pooled connection or retry logic is involved.
    let error = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert!(error.status().is_none());
    // The server goes on serving.
    assert_eq!(h.openapi(DAWANKA_INFO, &super_player()).await["ret"], 0);
    let stats = h.get_json("/_sandbox/stats").await;
    assert_eq!(stats["requests"][DAWANKA_INFO], 2, "faulted requests count");
}

#[tokio::test]
async fn latency_alone_delays_then_answers_normally() {
    let h = start().await;
    h.fault(json!({"path": TOKEN, "latency_ms": 300})).await;
    let started = Instant::now();
    let answer = h.get_json(&token_query()).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer["errcode"], 0);
}

#[tokio::test]
async fn latency_combines_with_a_misbehaviour() {
    let h = start().await;
    h.fault(json!({"path": TOKEN, "latency_ms": 200, "busy": true}))
        .await;
    let started = Instant::now();
    let answer = h.get_json(&token_query()).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(answer["errcode"], -1);
    // A client timeout shorter than the latency sees a timeout.
    h.fault(json!({"path": TOKEN, "latency_ms": 500})).await;
    let error = h
        .client
        .get(h.url(&token_query()))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
}

#[tokio::test]
async fn times_fifo_path_matching_and_clearing() {
    let h = start().await;
    // Only set_user_storage is affected by the first one.
    h.fault(json!({"path": SET, "code": 1, "times": 2})).await;
    h.fault(json!({"code": 2, "times": 0})).await;
    h.fault(json!({"path": TOKEN, "code": 3})).await;

    let code = |answer: Value| answer["errcode"].as_i64().unwrap();
    // getToken: the unlimited catch-all comes before the getToken one in the queue.
    assert_eq!(code(h.get_json(&token_query()).await), 2);
    assert_eq!(code(h.get_json(&token_query()).await), 2);
    let set_code = |h: &Harness| {
        let request = h.client.post(h.url(&format!("{SET}?a=b"))).body("{}");
        async move {
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            answer["errcode"].as_i64().unwrap()
        }
    };
    assert_eq!(set_code(&h).await, 1);
    assert_eq!(set_code(&h).await, 1);
    assert_eq!(set_code(&h).await, 2, "then the catch-all");

    let (_, listed) = h.admin(Method::GET, "/_sandbox/faults", json!(null)).await;
    assert_eq!(listed["faults"].as_array().unwrap().len(), 2);
    assert_eq!(listed["faults"][0]["times_left"], 0);

    let (status, cleared) = h
        .admin(Method::DELETE, "/_sandbox/faults", json!(null))
        .await;
    assert_eq!((status, cleared), (200, json!({"cleared": 2})));
    assert_eq!(code(h.get_json(&token_query()).await), 0);
    assert_eq!(set_code(&h).await, -4, "normal handling again");
}

#[tokio::test]
async fn bad_fault_specs_are_refused() {
    let h = start().await;
    for spec in [
        json!({"path": "/api/unknown", "busy": true}),
        json!({"busy": true, "code": 5}),
        json!({"times": 3}),
        json!({"http_status": 42}),
        json!({"bussy": true}),
    ] {
        let (status, answer) = h
            .admin(Method::POST, "/_sandbox/faults", spec.clone())
            .await;
        assert_eq!(status, 400, "{spec}");
        assert!(answer["error"].is_string());
    }
    let response = h
        .client
        .post(h.url("/_sandbox/faults"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn drop_connection_under_a_foreign_server_breaks_the_answer() {
    // Served by axum::serve instead of the sandbox's own loop, the router answers with a body
    // that fails at once; hyper then aborts the connection before it has flushed the head.
    let sandbox = gamegate_sandbox::Sandbox::new(gamegate_sandbox::SandboxConfig::demo());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, sandbox.router()).into_future());
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/_sandbox/faults"))
        .body(json!({"drop_connection": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let outcome = match client.get(format!("{base}{}", token_query())).send().await {
        Ok(response) => response.text().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(outcome.is_err());
    server.abort();
}

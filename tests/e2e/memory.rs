//! What the largest request each RPC accepts costs a real gamegate process: a
//! spawned binary (so that its peak RSS, `VmHWM`, is its own) against the
//! sandbox, sent for every route the largest request its declared limits
//! allow: every list at its item bound, every string at its byte bound.

use std::{
    collections::HashMap,
    io::Write as _,
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    str::FromStr,
    time::{Duration, Instant},
};

use gamegate::{
    api::DynamicCodec,
    plan::{MessagePlan, Route, RouteTable},
    proto::{Charset, DESCRIPTOR_POOL, FieldRole, Platform},
    sandbox::{self, SandboxConfig},
};
use prost::Message as _;
use prost_reflect::{DynamicMessage, Kind, Value};
use tonic::{Code, transport::Channel};

use crate::common::{demo, loopback, rich};

/// The peak RSS growth of gamegate (a debug build) over serving the largest
/// request of every route, one after another. Measured: 3.7 MiB over the 56
/// routes, the largest step 2 MiB (ReportQqScores, 412 KB sent); before the
/// limits, one 600 KB ReportWxBattle took 404 MiB.
const MAX_PEAK_GROWTH_MIB: u64 = 16;

/// A string of `len` bytes that the rules' charset admits.
fn text(len: usize, charset: Charset) -> String {
    let unit = match charset {
        Charset::Decimal => '1',
        _ => 'a',
    };
    std::iter::repeat_n(unit, len).collect()
}

/// The largest value of one item of `field` within its rules.
fn largest_item(plan: &gamegate::plan::FieldPlan, share: usize, app_id: &str) -> Value {
    let rules = plan.rules.clone().unwrap_or_default();
    match plan.field.kind() {
        // The configured app, so that the call goes all the way.
        Kind::String if plan.role == FieldRole::AppId => Value::String(app_id.to_string()),
        Kind::String => {
            if let Some(value) = rules.allowed_values.first() {
                return Value::String(value.clone());
            }
            if let Some((_, max)) = rules.decimal_range {
                return Value::String(max.min(999_999_999).to_string());
            }
            let len = rules
                .exact_bytes
                .or(rules.max_bytes)
                .unwrap_or(16)
                .min(share);
            Value::String(text(len, rules.charset))
        }
        Kind::Bytes => {
            let len = rules.exact_bytes.or(rules.max_bytes).unwrap_or(16);
            Value::Bytes(vec![b'a'; len].into())
        }
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let max = rules
                .int_range
                .map_or(1, |(_, max)| max.min(i64::from(i32::MAX)));
            Value::I32(max as i32)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(rules.int_range.map_or(1, |(_, max)| max))
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(1),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(1),
        Kind::Bool => Value::Bool(true),
        Kind::Float => Value::F32(1.0),
        Kind::Double => Value::F64(1.0),
        Kind::Enum(enumeration) => Value::EnumNumber(
            enumeration
                .values()
                .map(|v| v.number())
                .find(|n| *n != 0)
                .unwrap_or(0),
        ),
        Kind::Message(descriptor) if plan.is_timestamp => {
            let mut timestamp = DynamicMessage::new(descriptor);
            timestamp.set_field_by_name("seconds", Value::I64(1_700_000_000));
            Value::Message(timestamp)
        }
        Kind::Message(descriptor) if plan.is_free_form_json => {
            // One member holding most of the field's byte bound.
            let budget = rules.max_bytes.unwrap_or(4096).saturating_sub(32);
            let member = prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue(text(
                    budget,
                    Charset::Unspecified,
                ))),
            };
            let structure = prost_types::Struct {
                fields: [("k".to_string(), member)].into(),
            };
            Value::Message(
                DynamicMessage::decode(descriptor, structure.encode_to_vec().as_slice()).unwrap(),
            )
        }
        Kind::Message(_) => Value::Message(largest(plan.nested.as_ref().expect("a plan"), app_id)),
    }
}

/// The largest message of `plan` its rules accept.
fn largest(plan: &MessagePlan, app_id: &str) -> DynamicMessage {
    let mut message = DynamicMessage::new(plan.descriptor.clone());
    let strings = plan
        .fields
        .iter()
        .filter(|f| matches!(f.field.kind(), Kind::String))
        .count()
        .max(1);
    // Strings share a message's total byte bound (a key and its value).
    let share = plan
        .max_total_bytes
        .map_or(usize::MAX, |(total, _)| total / strings);
    for field in &plan.fields {
        let value = if field.field.is_list() {
            let items = field.rules.as_ref().and_then(|r| r.max_items).unwrap_or(1);
            Value::List(
                (0..items)
                    .map(|_| largest_item(field, share, app_id))
                    .collect(),
            )
        } else {
            largest_item(field, share, app_id)
        };
        message.set_field(&field.field, value);
    }
    message
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `VmHWM` (peak resident set) and `VmRSS` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config_toml(listen: SocketAddr, sandbox: &str) -> String {
    format!(
        r#"listen = "{listen}"

[qq_minigame]
base_url = "{sandbox}"
[qq_minigame.apps.{mg}]
secret = "{mg_secret}"

[qq_openapi]
base_url = "{sandbox}"
[qq_openapi.apps.{oa}]
appkey = "{oa_key}"

[msdk]
base_url = "{sandbox}"
[msdk.apps.{qq}]
msdkkey = "{qq_key}"
appkey = "{qq_appkey}"
[msdk.apps.{wx}]
msdkkey = "{wx_key}"
appkey = "{wx_appkey}"
"#,
        mg = demo::MINIGAME_APPID,
        mg_secret = demo::MINIGAME_SECRET,
        oa = demo::OPENAPI_APPID,
        oa_key = demo::OPENAPI_APPKEY,
        qq = demo::MSDK_QQ_APPID,
        qq_key = demo::MSDK_QQ_MSDKKEY,
        qq_appkey = demo::MSDK_QQ_APPKEY,
        wx = demo::MSDK_WX_APPID,
        wx_key = demo::MSDK_WX_MSDKKEY,
        wx_appkey = demo::MSDK_WX_APPKEY,
    )
}

#[tokio::test]
async fn the_largest_request_of_every_rpc_costs_a_bounded_peak() {
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let listen = free_port();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(config_toml(listen, &sandbox.base_url()).as_bytes())
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gamegate"))
        .args(["serve", "--config"])
        .arg(file.path())
        .env_remove("GAMEGATE_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gamegate starts");
    let pid = child.id();
    let _child = Spawned(child);
    let started = Instant::now();
    let channel = loop {
        match Channel::from_shared(format!("http://{listen}"))
            .unwrap()
            .connect()
            .await
        {
            Ok(channel) => break channel,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("gamegate does not listen: {error}"),
        }
    };

    let table = RouteTable::from_pool(&DESCRIPTOR_POOL).unwrap();
    let mut paths: Vec<String> = DESCRIPTOR_POOL
        .services()
        .flat_map(|service| {
            let name = service.full_name().to_string();
            service
                .methods()
                .map(move |method| format!("/{name}/{}", method.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    paths.sort();
    let routes: Vec<&std::sync::Arc<Route>> =
        paths.iter().filter_map(|path| table.get(path)).collect();
    assert!(routes.len() >= 56, "every seed interface: {}", routes.len());

    let call = |route: &Route, message: DynamicMessage| {
        let channel = channel.clone();
        let path = http::uri::PathAndQuery::from_str(&route.grpc_path).unwrap();
        let codec = DynamicCodec::new(route.method_descriptor.output());
        async move {
            let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
            grpc.ready().await.unwrap();
            grpc.unary(tonic::Request::new(message), path, codec).await
        }
    };

    // Warm up: one small call per route, so that lazily built state (pools,
    // tokens, the allocator's arenas) is there before the peaks are read.
    for route in &routes {
        let _ = call(route, DynamicMessage::new(route.method_descriptor.input())).await;
    }
    let (start_peak, start_rss) = memory_kib(pid);
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    let mut worst = (0u64, String::new(), 0usize);
    for route in &routes {
        let app_id = match route.platform {
            Platform::QqMinigame => demo::MINIGAME_APPID,
            Platform::QqOpenapi => demo::OPENAPI_APPID,
            _ if route.grpc_path.contains("Wx") => demo::MSDK_WX_APPID,
            _ => demo::MSDK_QQ_APPID,
        };
        let message = largest(&route.request, app_id);
        let size = message.encoded_len();
        assert!(
            size <= route.request.max_wire_bytes,
            "{}: the largest request ({size} bytes) is within the bound the route declares ({})",
            route.grpc_path,
            route.request.max_wire_bytes
        );
        let (before, _) = memory_kib(pid);
        let outcome = call(route, message).await;
        let (after, _) = memory_kib(pid);
        let reason = match &outcome {
            Ok(_) => "OK".to_string(),
            Err(status) if status.code() == Code::Ok => "OK".to_string(),
            Err(status) => rich(status).reason,
        };
        assert!(
            !matches!(reason.as_str(), "REQUEST_TOO_LARGE" | "REQUEST_UNREADABLE"),
            "{}: the largest request it accepts was refused: {outcome:?}",
            route.grpc_path
        );
        *outcomes.entry(reason).or_default() += 1;
        if after.saturating_sub(before) >= worst.0 {
            worst = (after - before, route.grpc_path.clone(), size);
        }
    }
    let (end_peak, end_rss) = memory_kib(pid);
    let growth_mib = end_peak.saturating_sub(start_peak) / 1024;
    println!(
        "peak RSS {start_peak} -> {end_peak} KiB (RSS {start_rss} -> {end_rss} KiB) over {} routes; \
         largest single step {} KiB on {} ({} bytes sent); outcomes {outcomes:?}",
        routes.len(),
        worst.0,
        worst.1,
        worst.2
    );
    assert!(
        growth_mib <= MAX_PEAK_GROWTH_MIB,
        "the largest requests raised gamegate's peak RSS by {growth_mib} MiB"
    );
}

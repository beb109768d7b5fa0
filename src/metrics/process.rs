//! Values read at scrape time: the standard `process_*` metrics (Linux
//! `/proc/self`; absent elsewhere) and the age of each app's access token.
//!
//! The process metrics are read by hand: `prometheus-client` has no process
//! collector, and the three files and one directory read here do not justify
//! the `procfs` crate's weight.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Unit,
};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
/// `process_start_time_seconds`, as Prometheus's own clients name them.
#[derive(Debug)]
pub(super) struct ProcessCollector {
    start_time_seconds: f64,
}

impl ProcessCollector {
    pub(super) fn new() -> Self {
        ProcessCollector {
            start_time_seconds: unix_now(),
        }
    }
}

/// What `/proc/self/stat` says (see proc(5)).
struct Stat {
    cpu_seconds: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`): 100 on every Linux
/// architecture gamegate builds for.
const CLOCK_TICKS: f64 = 100.0;
const PAGE_SIZE: u64 = 4096;

fn read_stat() -> Option<Stat> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields count from
    // the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15, vsize 23, rss 24.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / CLOCK_TICKS,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * PAGE_SIZE,
    })
}

fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files   <soft>   <hard>   files"
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue + Send + Sync + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: V,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(stat) = read_stat() {
            let cpu = ConstCounter::new(stat.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?)?;
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size",
                Some(&Unit::Bytes),
                stat.resident_bytes as i64,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory",
                "Virtual memory size",
                Some(&Unit::Bytes),
                stat.virtual_bytes as i64,
            )?;
        }
        if let Some(open) = open_fds() {
            // Less the directory handle this count itself held.
            gauge(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors",
                None,
                open.saturating_sub(1) as i64,
            )?;
        }
        if let Some(max) = max_fds() {
            gauge(
                &mut encoder,
                "process_max_fds",
                "The limit of open file descriptors",
                None,
                max as i64,
            )?;
        }
        gauge(
            &mut encoder,
            "process_start_time",
            "When the process started, in seconds since the Unix epoch",
            Some(&Unit::Seconds),
            self.start_time_seconds,
        )
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    platform: &'static str,
    app_id: String,
}

/// When each app's token in use was issued (ms since the Unix epoch), as
/// `gamegate_access_token_age_seconds` at each scrape.
#[derive(Clone, Debug, Default)]
pub(super) struct TokenAges {
    issued: Arc<Mutex<HashMap<TokenLabels, u64>>>,
}

impl TokenAges {
    pub(super) fn set(&self, platform: &'static str, app_id: &str, issued_at_unix_ms: u64) {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let labels = TokenLabels {
            platform,
            app_id: app_id.to_owned(),
        };
        match issued.get_mut(&labels) {
            Some(at) => *at = issued_at_unix_ms,
            None => {
                issued.insert(labels, issued_at_unix_ms);
            }
        }
    }
}

impl Collector for TokenAges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if issued.is_empty() {
            return Ok(());
        }
        let now = unix_now();
        let mut family = encoder.encode_descriptor(
            "gamegate_access_token_age",
            "How long ago the access token in use for an app was issued",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (labels, at) in issued.iter() {
            let age = (now - *at as f64 / 1000.0).max(0.0);
            ConstGauge::new(age).encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}

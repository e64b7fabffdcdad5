//! What the server tells its operator: counters kept in memory and rendered in Prometheus text
//! format by `GET /metrics`. Routes are recorded by their pattern (`/device`, `/app/{app_id}`),
//! never by raw path, so the number of series is bounded by the routes that exist.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sweep::SweepReport;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Methods counted by name; anything else is `OTHER`.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OTHER"];

fn method_index(method: &str) -> u8 {
    METHODS[..6].iter().position(|m| *m == method).unwrap_or(6) as u8
}

#[derive(Debug, Default)]
struct RouteStats {
    /// (method index, status) -> count
    counts: BTreeMap<(u8, u16), u64>,
    latency: Histogram,
}

#[derive(Debug, Default)]
struct Requests {
    routes: BTreeMap<String, RouteStats>,
}

/// Devices per app, recomputed at most every `DEVICE_COUNT_TTL`.
#[derive(Debug, Default)]
struct DeviceCounts {
    at: Option<Instant>,
    counts: Vec<(String, usize)>,
}

pub const DEVICE_COUNT_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    sweep_runs: AtomicU64,
    sweep_devices: AtomicU64,
    sweep_overrides: AtomicU64,
    sweep_audit: AtomicU64,
    sweep_failed_batches: AtomicU64,
    device_counts: Mutex<DeviceCounts>,
    /// Held while the devices are counted, so that concurrent scrapes share one scan.
    device_count_refresh: tokio::sync::Mutex<()>,
    device_count_scans: AtomicU64,
    export_failures: AtomicU64,
    /// Rollout guards that acted, by (app, channel, action).
    guard_triggers: Mutex<std::collections::BTreeMap<(String, String, &'static str), u64>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one request; allocates only the first time a route is seen.
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if !requests.routes.contains_key(route) {
            requests
                .routes
                .insert(route.to_owned(), RouteStats::default());
        }
        let Some(stats) = requests.routes.get_mut(route) else {
            return;
        };
        *stats
            .counts
            .entry((method_index(method), status))
            .or_default() += 1;
        let histogram = &mut stats.latency;
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// A rollout guard acted.
    pub fn record_guard(&self, app_id: &str, channel: &str, action: crate::model::GuardAction) {
        let mut triggers = self
            .guard_triggers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *triggers
            .entry((app_id.to_owned(), channel.to_owned(), action.as_str()))
            .or_default() += 1;
    }

    /// The guards' lines of `/metrics`, for the apps `visible` lets the caller see.
    pub fn render_guard_triggers(&self, out: &mut String, visible: impl Fn(&str) -> bool) {
        let triggers = self
            .guard_triggers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP device_registry_rollout_guard_triggers_total Times a rollout's guard acted (pause, rollback, notify).\n# TYPE device_registry_rollout_guard_triggers_total counter\n");
        for ((app_id, channel, action), count) in triggers.iter() {
            if visible(app_id) {
                let _ = writeln!(
                    out,
                    "device_registry_rollout_guard_triggers_total{{app_id=\"{}\",channel=\"{}\",action=\"{action}\"}} {count}",
                    escape(app_id),
                    escape(channel)
                );
            }
        }
    }

    pub fn record_sweep(&self, report: &SweepReport) {
        self.sweep_runs.fetch_add(1, Ordering::Relaxed);
        self.sweep_devices
            .fetch_add(report.devices as u64, Ordering::Relaxed);
        self.sweep_overrides
            .fetch_add(report.orphan_overrides as u64, Ordering::Relaxed);
        self.sweep_failed_batches
            .fetch_add(report.failed_batches as u64, Ordering::Relaxed);
    }

    /// Devices per app: the cached figures while fresh, else counted by `scan`; scrapes that
    /// arrive while a scan runs wait for it and share its result (a scan reads every device key).
    pub async fn device_counts<E>(
        &self,
        scan: impl std::future::Future<Output = Result<Vec<(String, usize)>, E>>,
    ) -> Result<Vec<(String, usize)>, E> {
        if let Some(counts) = self.cached_device_counts() {
            return Ok(counts);
        }
        let _scanning = self.device_count_refresh.lock().await;
        if let Some(counts) = self.cached_device_counts() {
            return Ok(counts);
        }
        let counts = scan.await?;
        self.device_count_scans.fetch_add(1, Ordering::Relaxed);
        self.store_device_counts(counts.clone());
        Ok(counts)
    }

    /// An export that the store failed in the middle of (its answer ends with a failure line).
    pub fn export_failed(&self) {
        self.export_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The cached devices-per-app, when fresh enough.
    fn cached_device_counts(&self) -> Option<Vec<(String, usize)>> {
        let cached = self.device_counts.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .at
            .filter(|at| at.elapsed() < DEVICE_COUNT_TTL)
            .map(|_| cached.counts.clone())
    }

    fn store_device_counts(&self, counts: Vec<(String, usize)>) {
        let mut cached = self.device_counts.lock().unwrap_or_else(|e| e.into_inner());
        cached.at = Some(Instant::now());
        cached.counts = counts;
    }

    /// The Prometheus text exposition of everything, plus the gauges the caller read.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        out.push_str("# HELP device_registry_requests_total HTTP requests by route pattern, method and status.\n");
        out.push_str("# TYPE device_registry_requests_total counter\n");
        for (route, stats) in &requests.routes {
            let route = escape(route);
            for ((method, status), count) in &stats.counts {
                let method = METHODS[usize::from(*method)];
                let _ = writeln!(
                    out,
                    "device_registry_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str(
            "# HELP device_registry_request_duration_seconds Time to answer, by route pattern.\n",
        );
        out.push_str("# TYPE device_registry_request_duration_seconds histogram\n");
        for (route, stats) in &requests.routes {
            let route = escape(route);
            let histogram = &stats.latency;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                let _ = writeln!(
                    out,
                    "device_registry_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "device_registry_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "device_registry_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "device_registry_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        drop(requests);

        let counters = [
            (
                "sweep_runs_total",
                "Retention sweeps run.",
                self.sweep_runs.load(Ordering::Relaxed),
            ),
            (
                "sweep_devices_removed_total",
                "Devices removed by the sweep.",
                self.sweep_devices.load(Ordering::Relaxed),
            ),
            (
                "sweep_overrides_removed_total",
                "Overrides of devices that never checked in, removed by the sweep.",
                self.sweep_overrides.load(Ordering::Relaxed),
            ),
            (
                "sweep_audit_entries_removed_total",
                "Audit entries removed by the sweep.",
                self.sweep_audit.load(Ordering::Relaxed),
            ),
            (
                "sweep_failed_batches_total",
                "Sweep batches that failed.",
                self.sweep_failed_batches.load(Ordering::Relaxed),
            ),
            (
                "durable_commits_total",
                "Management writes made durable before their answer.",
                gauges.commits,
            ),
            (
                "store_flushes_total",
                "Flushes run for them (fewer when writers share one).",
                gauges.flushes,
            ),
            (
                "override_writes_total",
                "Link and unlink requests written.",
                gauges.override_writes,
            ),
            (
                "override_batches_total",
                "Transactions they were written in (fewer when concurrent requests share one).",
                gauges.override_batches,
            ),
            (
                "check_in_writes_total",
                "Check-ins that changed a device and were written.",
                gauges.check_in_writes,
            ),
            (
                "check_in_batches_total",
                "Transactions they were written in (fewer when concurrent requests share one).",
                gauges.check_in_batches,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP device_registry_{name} {help}\n# TYPE device_registry_{name} counter\ndevice_registry_{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP device_registry_store_size_bytes Bytes the store occupies on disk.\n# TYPE device_registry_store_size_bytes gauge\ndevice_registry_store_size_bytes {}",
            gauges.store_size_bytes
        );
        out.push_str(
            "# HELP device_registry_devices Devices registered, by app (refreshed every 30 s).\n",
        );
        out.push_str("# TYPE device_registry_devices gauge\n");
        for (app_id, count) in &gauges.devices_per_app {
            let _ = writeln!(
                out,
                "device_registry_devices{{app_id=\"{}\"}} {count}",
                escape(app_id)
            );
        }
        let _ = writeln!(
            out,
            "# HELP device_registry_device_count_scans_total Scans of the device keys made to count devices per app.\n# TYPE device_registry_device_count_scans_total counter\ndevice_registry_device_count_scans_total {}",
            self.device_count_scans.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP device_registry_export_failures_total Exports the store failed in the middle of (their answer ends with a failure line).\n# TYPE device_registry_export_failures_total counter\ndevice_registry_export_failures_total {}",
            self.export_failures.load(Ordering::Relaxed)
        );
        out
    }
}

/// Values read from elsewhere for one rendering.
#[derive(Debug, Default)]
pub struct Gauges {
    pub store_size_bytes: u64,
    pub devices_per_app: Vec<(String, usize)>,
    pub commits: u64,
    pub flushes: u64,
    pub override_writes: u64,
    pub override_batches: u64,
    pub check_in_writes: u64,
    pub check_in_batches: u64,
}

/// Label values escaped as the text format wants.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_triggers_render_per_app_channel_and_action_for_visible_apps() {
        let metrics = Metrics::new();
        metrics.record_guard("a", "production", crate::model::GuardAction::Notify);
        metrics.record_guard("a", "production", crate::model::GuardAction::Notify);
        metrics.record_guard("b", "beta", crate::model::GuardAction::Pause);
        let mut out = String::new();
        metrics.render_guard_triggers(&mut out, |app| app == "a");
        assert!(out.ends_with(
            "device_registry_rollout_guard_triggers_total{app_id=\"a\",channel=\"production\",action=\"notify\"} 2\n"
        ), "{out}");
        assert!(!out.contains("app_id=\"b\""));
    }

    #[test]
    fn requests_render_as_counters_and_histograms() {
        let metrics = Metrics::new();
        metrics.record_request("/device", "GET", 200, Duration::from_micros(300));
        metrics.record_request("/device", "GET", 200, Duration::from_millis(30));
        metrics.record_request("/device", "POST", 404, Duration::from_millis(3));
        let text = metrics.render(&Gauges::default());
        assert!(text.contains(
            "device_registry_requests_total{route=\"/device\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "device_registry_requests_total{route=\"/device\",method=\"POST\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "device_registry_request_duration_seconds_bucket{route=\"/device\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "device_registry_request_duration_seconds_bucket{route=\"/device\",le=\"0.05\"} 3"
        ));
        assert!(
            text.contains("device_registry_request_duration_seconds_count{route=\"/device\"} 3")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}

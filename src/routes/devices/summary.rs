//! `GET /device/summary`: how an app's devices are spread.

use super::*;

/// `GET /device/summary?app_id=[&filters]`: how the app's devices are spread. Without filters it
/// reads counters kept with the records; with the list's filters it scans the matching devices.
pub(super) async fn summary(
    caller: Authorized<needs::DevicesRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let filter = parse_filter(&input)?;
    visible_app(&state, &caller, &app_id).await?;
    let now = state.clock.now();
    let filtered = filter != DeviceFilter::default();
    let counted_app = app_id.clone();
    let counted = off_workers(
        &state.store,
        move |store| -> crate::store::StoreResult<(
            crate::model::DeviceSummary,
            Vec<crate::model::Channel>,
        )> {
            let channels = store.channels(&counted_app)?;
            if !filtered {
                return Ok((store.device_summary(&counted_app, now)?, channels));
            }
            let mut summary = crate::model::DeviceSummary::default();
            for devices in crate::export::pages(store, &counted_app, &filter) {
                for entry in &devices? {
                    summary.add(entry, now);
                }
            }
            Ok((summary, channels))
        },
    )
    .await?;
    let (counted, channels) = counted;
    // The current rollouts, with the devices they selected (decisions of earlier rollouts stay
    // counted under their own ids until their devices check in again).
    let rollouts: Vec<serde_json::Value> = channels
        .iter()
        .filter_map(|channel| {
            let rollout = channel.rollout.as_ref()?;
            let selected = counted
                .rollouts_selected
                .get(&(channel.id, rollout.id))
                .copied()
                .unwrap_or(0);
            Some(json!({
                "channel": channel.name,
                "rollout_id": rollout.id,
                "version": rollout.version,
                "percentage_bps": rollout.percentage_bps,
                "paused": rollout.paused,
                "selected": selected,
            }))
        })
        .collect();
    let total = counted.total;
    let share = |count: u64| {
        if total == 0 {
            0.0
        } else {
            (count as f64 / total as f64 * 10_000.0).round() / 10_000.0
        }
    };
    let mut versions: Vec<(&String, &u64)> = counted.version_names.iter().collect();
    versions.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let versions: Vec<serde_json::Value> = versions
        .into_iter()
        .map(|(name, count)| {
            let name = if name.is_empty() {
                serde_json::Value::Null
            } else {
                json!(name)
            };
            json!({"version_name": name, "devices": count, "share": share(*count)})
        })
        .collect();
    let natives: Vec<serde_json::Value> = counted
        .version_builds
        .iter()
        .map(|(build, count)| json!({"version_build": build, "devices": count}))
        .collect();
    let channel_counts: Vec<serde_json::Value> = counted
        .channels
        .iter()
        .map(|(channel, count)| json!({"channel": channel, "devices": count}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "app_id": app_id,
        "total": total,
        "platforms": counted.platforms,
        "versions": versions,
        "native_versions": natives,
        "channels": channel_counts,
        "rollouts": rollouts,
        "prod": counted.prod,
        "dev": total - counted.prod.min(total),
        "emulator": counted.emulator,
        "physical": total - counted.emulator.min(total),
        "seen": {"1d": counted.seen[0], "7d": counted.seen[1], "30d": counted.seen[2]},
        "source": if filtered { "scan" } else { "counters" },
    })))
}

//! Operating the server: `/health` for liveness checks, `/metrics` for Prometheus.

use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;
use serde_json::json;

use super::{needs, resource, Authorized};
use crate::error::{ApiError, Code};
use crate::metrics::Gauges;
use crate::state::AppState;
use crate::store::off_workers;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(resource("/health").route(crate::routes::get().to(health)))
        .service(resource("/metrics").route(crate::routes::get().to(metrics)))
        .service(resource("/dump").route(crate::routes::get().to(dump)))
        .service(resource("/openapi.json").route(crate::routes::get().to(openapi)));
}

/// The OpenAPI document of everything this server serves.
async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document())
}

/// 200 while the store is open and takes writes; no key needed.
async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match crate::store::read(&state.store, |store| store.health()).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ok"}))),
        Err(error) => {
            log::error!("health check failed: {error}");
            Err(ApiError::new(Code::StoreUnavailable))
        }
    }
}

/// `GET /dump`: the whole store as a dump (see `store::backup`). Written first to an unlinked
/// temporary file, then sent: the snapshot (which, on sled, holds writes back) lasts as long as
/// the disk takes, never as long as a slow client.
async fn dump(
    caller: Authorized<needs::All>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !caller.limited_to_apps.is_empty() {
        return Err(ApiError::new(Code::InsufficientPermissions)
            .message("A dump holds every app: it needs a key not limited to apps"));
    }
    let file = off_workers(&state.store, |store| {
        let mut file = crate::backup_file::unlinked()?;
        {
            let mut out = std::io::BufWriter::new(&mut file);
            let mut writer = crate::store::backup::DumpWriter::new(&mut out)?;
            store.dump(&mut |record| writer.record(record))?;
            let records = writer.finish()?;
            log::info!("dump: {records} records");
        }
        crate::backup_file::rewind(&mut file)?;
        Ok(file)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(crate::backup_file::chunks(file)))
}

/// Prometheus text format. Needs a key (it names apps); per-app figures only for the apps the
/// key may see.
async fn metrics(
    caller: Authorized<needs::Read>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let devices_per_app = state
        .metrics
        .device_counts(off_workers(&state.store, |store| store.device_counts()))
        .await?;
    let store_size_bytes = off_workers(&state.store, |store| store.size_on_disk()).await?;
    let writes = state.store.current()?.write_stats();
    let gauges = Gauges {
        store_size_bytes,
        devices_per_app: devices_per_app
            .into_iter()
            .filter(|(app_id, _)| caller.can_access(app_id))
            .collect(),
        commits: writes.commits,
        flushes: writes.flushes,
        override_writes: writes.override_writes,
        override_batches: writes.override_batches,
        check_in_writes: writes.check_in_writes,
        check_in_batches: writes.check_in_batches,
    };
    let mut text = state.metrics.render(&gauges);
    state
        .metrics
        .render_guard_triggers(&mut text, |app_id| caller.can_access(app_id));
    if let Some(https) = &state.https {
        https.certificates.status.render(&mut text);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

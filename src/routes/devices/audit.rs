//! `GET /device/audit`: who changed which override, newest first.

use super::*;
use crate::error::Field;

/// An audit cursor: `<at>|<seq>` of the last entry of the previous page.
pub(super) fn parse_audit_cursor(text: &str) -> Option<(u64, u64)> {
    let (at, seq) = text.split_once('|')?;
    let at = u64::try_from(parse_rfc3339(at)?).ok()?;
    Some((at, seq.parse().ok()?))
}

/// `GET /device/audit?app_id=[&device_id=][&cursor=][&limit=]`: who changed which override and
/// when, newest first.
pub(super) async fn audit_log(
    caller: Authorized<needs::DevicesRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let device_id = input.device_id()?;
    let limit = parse_limit(&input)?;
    let before = input.parsed(
        Field::Cursor,
        "expected the nextCursor of a previous page",
        parse_audit_cursor,
    )?;
    visible_app(&state, &caller, &app_id).await?;
    let app = app_id.clone();
    let page = off_workers(&state.store, move |store| {
        store.audit(&app, device_id.as_deref(), before, limit)
    })
    .await?;
    let data: Vec<serde_json::Value> = page
        .entries
        .iter()
        .map(|entry| match &entry.rollout {
            None => json!({
                "at": format_micros(entry.at),
                "device_id": entry.device_id,
                "actor": entry.actor.label(),
                "action": entry.action.as_str(),
                "before": overrides_json(&entry.before),
                "after": overrides_json(&entry.after),
            }),
            Some(change) => {
                let mut json = json!({
                    "at": format_micros(entry.at),
                    "channel": change.channel,
                    "actor": entry.actor.label(),
                    "action": entry.action.as_str(),
                    "before": change.before.as_ref().map(crate::routes::channels::rollout_json),
                    "after": change.after.as_ref().map(crate::routes::channels::rollout_json),
                });
                if let Some(reason) = &change.reason {
                    json["reason"] = json!(reason);
                }
                json
            }
        })
        .collect();
    let mut body = json!({"data": data, "hasMore": page.next.is_some()});
    if let Some((at, seq)) = page.next {
        body["nextCursor"] = json!(format!("{}|{seq}", format_micros(at)));
    }
    Ok(HttpResponse::Ok().json(body))
}

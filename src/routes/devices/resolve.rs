//! `GET /device/resolve`: what `/updates` would answer a device, and why.

use super::*;

/// `GET /device/resolve?app_id=&device_id=`: what `/updates` would answer this device now, from
/// its last reported fields, and why: each precedence step, then each channel rule checked. The
/// decisions are `/updates`' own code, with recording on; nothing is written.
pub(super) async fn resolve_device(
    caller: Authorized<needs::DevicesRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let input = Input::from_query(req.query_string())?;
    let app_id = input.app_id()?;
    let device_id = input.required_device_id()?;
    visible_app(&state, &caller, &app_id).await?;
    let (app, device) = (app_id.clone(), device_id.clone());
    let resolved = crate::store::read(&state.store, move |store| {
        let Some(entry) = store.device(&app, &device)? else {
            return Ok(None);
        };
        let report = &entry.device.report;
        let mut trace = crate::resolve::Trace::on();
        let (answer, source) = match crate::resolve::coerce_native_version(&report.version_build) {
            None => {
                let refusal = crate::resolve::Refusal::new(
                    "semver_error",
                    crate::resolve::semver_message(&report.version_build),
                    crate::resolve::Kind::Failed,
                );
                let answer = crate::resolve::Answer::Refused {
                    refusal,
                    source: None,
                };
                (plugin::answer_json(&answer, &report.plugin_version), None)
            }
            Some(native) => {
                // Its kept decision. Where `/updates` would roll the dice, nothing is rolled
                // here: the answer is the one a device not selected gets (exact at 0% and
                // 100%), and the trace says that the next check-in decides.
                let kept = entry.device.rollout.clone();
                let mut stored = move || Ok(kept.clone());
                let undecided = Undecided::default();
                let mut rollouts = crate::resolve::Rollouts {
                    stored: &mut stored,
                    dice: &undecided,
                    decided: None,
                };
                let answer = crate::resolve::resolve(
                    store,
                    &app,
                    report,
                    &native,
                    &entry.overrides,
                    &mut rollouts,
                    &mut trace,
                )?;
                if undecided.0.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(step) = trace.precedence.iter_mut().find(|s| s.step == "rollout") {
                        step.detail
                            .push_str("; not decided yet: the next check-in rolls the dice");
                    }
                }
                let source = match &answer {
                    crate::resolve::Answer::Update { source, .. } => Some(*source),
                    crate::resolve::Answer::Refused { source, .. } => *source,
                };
                (plugin::answer_json(&answer, &report.plugin_version), source)
            }
        };
        Ok(Some((answer, source, trace)))
    })
    .await?;
    let Some((answer, source, trace)) = resolved else {
        return Err(ApiError::new(Code::DeviceNotFound).info("device_id", device_id.as_str()));
    };
    Ok(HttpResponse::Ok().json(json!({
        "app_id": app_id,
        "device_id": device_id,
        "answer": answer,
        "source": source.map(crate::resolve::Source::as_str),
        "precedence": trace.precedence,
        "rules": trace.rules,
    })))
}

/// The dice of a preview: never selects (but at 100%, where every roll selects), and notes
/// that a roll was asked for.
#[derive(Default)]
struct Undecided(std::sync::atomic::AtomicBool);

impl crate::rollout::Dice for Undecided {
    fn roll_bps(&self) -> u16 {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        crate::rollout::MAX_BPS - 1
    }
}

// Watching a version spread: a channel's rollout (start, widen or narrow, pause, promote,
// abort) and what devices report about a bundle, day by day.

import { session, api } from './api.js';
import { el, append, show, flash, wantFocus, table, select, input } from './ui.js';
import { route, appHref, errorBox, askInPlace, problem, appTabs } from './nav.js';
import { barChart } from './charts.js';

const percent = (bps) => `${(bps / 100).toFixed(2)}%`;

/** Failures come by the plugin's action (`update_fail`, `download_fail`, ...): their sum. */
const failed = (failures) => Object.values(failures || {}).reduce((sum, count) => sum + count, 0);
const byAction = (failures) => Object.entries(failures || {}).map(([action, count]) => `${action} ${count}`).join(', ');

/** A share typed in percent (`12.5` or `12,5`, up to two decimals), in basis points as the
 * API takes it. */
function basisPoints(text) {
  const typed = String(text).trim().replace(',', '.');
  const value = Number(typed);
  if (!/^\d{1,3}(\.\d{1,2})?$/.test(typed) || value > 100) {
    throw problem('The share is a percentage from 0 to 100, with at most two decimals.');
  }
  return Math.round(value * 100);
}

let panels = 0;

/** A channel's rollout: its state and how many devices it selected, and, for a key that may
 * write, the controls that change it. Every change names the rollout shown (`rollout_id`): one
 * replaced meanwhile is refused, never changed unseen. */
export function rolloutPanel(app, channel, bundles, selected) {
  const id = `rollout-${++panels}`;
  const area = el('div', { class: 'rollout-area' });
  const writable = session.canWrite();
  const section = el('section', { id, class: 'panel rollout', 'data-channel': channel.name, 'aria-labelledby': `${id}-title` });
  const busy = (on) => {
    for (const control of section.querySelectorAll('button, input, select')) control.disabled = on;
  };
  const send = async (path, body, done) => {
    area.replaceChildren();
    busy(true);
    try {
      const answer = await api('POST', path, { body: { app_id: app, channel: channel.name, ...body } });
      flash(done(answer.channel));
      wantFocus();
      route();
    } catch (failure) {
      busy(false);
      area.replaceChildren(errorBox(failure, null));
    }
  };
  const guarded = (action) => () => {
    try {
      action();
    } catch (failure) {
      area.replaceChildren(errorBox(failure, null));
    }
  };
  /** Promote and abort change what every device of the channel gets: asked first, in place. */
  const confirmEnd = (action, question, opener) => {
    const promote = action === 'promote';
    askInPlace(area, question, promote ? 'Promote' : 'Abort',
      { class: promote ? 'primary rollout-confirm' : 'danger rollout-confirm' }, opener,
      () => send('/channel/rollout', { action, rollout_id: channel.rollout_id },
        (after) => (promote
          ? `${channel.rollout_version} promoted: every device of ${after.name} gets ${after.version}`
          : `Rollout aborted: ${after.name} is back on ${after.version ?? 'no bundle'}`)));
  };
  let state;
  let controls = null;
  if (channel.rollout_version) {
    const guard = channel.rollout_guard;
    const stoppedByGuard = channel.rollout_paused && channel.rollout_guard_triggered_at;
    state = [
      el('p', { class: 'rollout-state' },
        `${channel.rollout_version} to ${percent(channel.rollout_percentage_bps)} of the channel's devices`,
        channel.rollout_paused ? ', paused' : '', `: ${selected ?? '?'} selected so far. `,
        el('a', { href: appHref(app, `health/${encodeURIComponent(channel.rollout_version)}`) }, `How ${channel.rollout_version} fares`)),
      guard && el('p', { class: stoppedByGuard ? 'rollout-guard error' : 'rollout-guard muted' },
        stoppedByGuard
          ? `Its guard stopped it (${channel.rollout_guard_triggered_at}): resuming overrides the guard's verdict.`
          : `Guarded: ${guard.action} when the failure rate's lower bound reaches ${percent(guard.threshold_bps)}.`),
    ];
    if (writable) {
      const share = input('share', 'Share (%)', String(channel.rollout_percentage_bps / 100), { class: 'rollout-share', inputmode: 'decimal' });
      controls = el('div', { class: 'row' }, share,
        el('button', { type: 'button', class: 'rollout-set', onclick: guarded(() => send('/channel',
          { rollout_id: channel.rollout_id, rollout_percentage_bps: basisPoints(share.querySelector('input').value) },
          (after) => `Rollout on ${after.name}: ${after.rollout_version} to ${percent(after.rollout_percentage_bps)}`)) }, 'Set share'),
        el('button', { type: 'button', class: 'rollout-pause', onclick: () => send('/channel',
          { rollout_id: channel.rollout_id, rollout_paused: !channel.rollout_paused },
          (after) => (after.rollout_paused ? `Rollout on ${after.name} paused` : `Rollout on ${after.name} resumed`)) },
        channel.rollout_paused ? 'Resume' : 'Pause'),
        el('button', { type: 'button', class: 'primary rollout-promote', onclick: (event) => confirmEnd('promote',
          `Promote ${channel.rollout_version}? Every device of ${channel.name} then gets it.`, event.target) }, 'Promote…'),
        el('button', { type: 'button', class: 'danger rollout-abort', onclick: (event) => confirmEnd('abort',
          `Abort? Every device of ${channel.name} goes back to ${channel.version ?? 'no bundle'}.`, event.target) }, 'Abort…'));
    }
  } else {
    state = el('p', { class: 'rollout-state muted' }, 'No rollout.');
    const candidates = bundles.filter((b) => b.version !== channel.version);
    if (writable && candidates.length > 0) {
      const bundle = select('rollout_version', 'Bundle to roll out', [['', '(choose)'], ...candidates.map((b) => [b.version, b.version])], '', { class: 'rollout-bundle' });
      const share = input('share', 'Share (%)', '1', { class: 'rollout-share', inputmode: 'decimal' });
      controls = el('div', { class: 'row' }, bundle, share,
        el('button', { type: 'button', class: 'primary rollout-start', onclick: guarded(() => {
          const version = bundle.querySelector('select').value;
          if (!version) throw problem('Choose the bundle to roll out.');
          send('/channel', { rollout_version: version, rollout_percentage_bps: basisPoints(share.querySelector('input').value) },
            (after) => `Rollout on ${after.name} started: ${after.rollout_version} to ${percent(after.rollout_percentage_bps)}`);
        }) }, 'Start'));
    }
  }
  section.append(el('h3', { id: `${id}-title` }, `Rollout on ${channel.name}`));
  append(section, [state, controls, area]);
  return section;
}

/** What production devices reported about a bundle over the last days: downloads, installs and
 * failures per day, and the failure rate over them. */
export async function renderHealth(app, version, current, params) {
  const days = params.get('days') || '7';
  const health = await api('GET', '/bundle/health', { query: { app_id: app, version, days } });
  if (!current()) return;
  const count = (day, field) => (field === 'failures' ? failed(day.failures) : day[field]);
  const perDay = (field) => health.days.map((day) => [day.date, count(day, field)]);
  const most = (field) => Math.max(1, ...health.days.map((day) => count(day, field)));
  const totals = health.totals;
  show(...appTabs(app, 'bundles'),
    el('h2', {}, `Bundle ${version}: the last ${health.days.length} days`),
    el('p', { id: 'health-totals' },
      `${totals.downloads} downloads, ${totals.installs} installs, ${failed(totals.failures)} failure${failed(totals.failures) === 1 ? '' : 's'}`,
      failed(totals.failures) > 0 ? ` (${byAction(totals.failures)})` : '', ': ',
      `failure rate ${percent(health.failure_rate_bps)} of ${totals.attempts} attempts.`),
    el('div', { class: 'charts' },
      barChart('chart-installs', 'Installs per day', perDay('installs'), most('installs'), { shares: false }),
      barChart('chart-failures', 'Failures per day', perDay('failures'), most('failures'), { shares: false }),
      barChart('chart-downloads', 'Downloads per day', perDay('downloads'), most('downloads'), { shares: false })),
    table('health', ['Day', 'Downloads', 'Installs', 'Failures'], health.days.map((day) => el('tr', {},
      el('td', {}, day.date), el('td', {}, String(day.downloads)), el('td', {}, String(day.installs)),
      el('td', {}, String(failed(day.failures)), failed(day.failures) > 0 ? ` (${byAction(day.failures)})` : ''))), null, 'Per day'),
    el('p', {}, el('a', { class: 'back', href: appHref(app, 'bundles') }, '← Bundles')));
}

// Watching a version spread: a channel's rollout (start, widen or narrow, pause, promote,
// abort) and what devices report about a bundle, day by day.

import { session, api } from './api.js';
import { el, show, flash, table, select, input } from './ui.js';
import { route, appHref, errorBox, problem, appTabs } from './nav.js';
import { barChart } from './charts.js';

const percent = (bps) => `${(bps / 100).toFixed(2)}%`;

/** Failures come by the plugin's action (`update_fail`, `download_fail`, ...): their sum. */
const failed = (failures) => Object.values(failures || {}).reduce((sum, count) => sum + count, 0);
const byAction = (failures) => Object.entries(failures || {}).map(([action, count]) => `${action} ${count}`).join(', ');

/** A share typed in percent (up to two decimals), in basis points as the API takes it. */
function basisPoints(text) {
  const value = Number(String(text).trim());
  if (String(text).trim() === '' || !Number.isFinite(value) || value < 0 || value > 100) {
    throw problem('The share is a percentage from 0 to 100.');
  }
  return Math.round(value * 100);
}

/** A channel's rollout: its state and how many devices it selected, and, for a key that may
 * write, the controls that change it. */
export function rolloutPanel(app, channel, bundles, selected) {
  const id = `rollout-${channel.name}`;
  const area = el('div', { class: 'rollout-area' });
  const send = async (path, body, done) => {
    area.replaceChildren();
    try {
      await api('POST', path, { body: { app_id: app, channel: channel.name, ...body } });
      flash(done);
      route();
    } catch (failure) {
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
  const writable = session.canWrite();
  let state;
  let controls = null;
  if (channel.rollout_version) {
    state = el('p', { class: 'rollout-state' },
      `${channel.rollout_version} to ${percent(channel.rollout_percentage_bps)} of the channel's devices`,
      channel.rollout_paused ? ', paused' : '', `: ${selected ?? 0} selected so far. `,
      el('a', { href: appHref(app, `health/${encodeURIComponent(channel.rollout_version)}`) }, `How ${channel.rollout_version} fares`));
    if (writable) {
      const share = input('share', 'Share (%)', String(channel.rollout_percentage_bps / 100), { class: 'rollout-share', inputmode: 'decimal' });
      controls = el('div', { class: 'row' }, share,
        el('button', { type: 'button', class: 'rollout-set', onclick: guarded(() => send('/channel',
          { rollout_percentage_bps: basisPoints(share.querySelector('input').value) }, `Rollout on ${channel.name} set`)) }, 'Set share'),
        el('button', { type: 'button', class: 'rollout-pause', onclick: () => send('/channel',
          { rollout_paused: !channel.rollout_paused }, channel.rollout_paused ? 'Rollout resumed' : 'Rollout paused') },
        channel.rollout_paused ? 'Resume' : 'Pause'),
        el('button', { type: 'button', class: 'primary rollout-promote', onclick: () => send('/channel/rollout',
          { action: 'promote' }, `${channel.rollout_version} promoted: every device of ${channel.name} gets it`) }, 'Promote'),
        el('button', { type: 'button', class: 'danger rollout-abort', onclick: () => send('/channel/rollout',
          { action: 'abort' }, `Rollout aborted: ${channel.name} is back on ${channel.version ?? 'no bundle'}`) }, 'Abort'));
    }
  } else {
    state = el('p', { class: 'rollout-state muted' }, 'No rollout.');
    const candidates = bundles.filter((b) => b.version !== channel.version);
    if (writable && candidates.length > 0) {
      const bundle = select('rollout_version', 'Bundle to roll out', candidates.map((b) => [b.version, b.version]), '', { class: 'rollout-bundle' });
      const share = input('share', 'Share (%)', '1', { class: 'rollout-share', inputmode: 'decimal' });
      controls = el('div', { class: 'row' }, bundle, share,
        el('button', { type: 'button', class: 'primary rollout-start', onclick: guarded(() => send('/channel', {
          rollout_version: bundle.querySelector('select').value,
          rollout_percentage_bps: basisPoints(share.querySelector('input').value),
        }, `Rollout on ${channel.name} started`)) }, 'Start'));
    }
  }
  return el('section', { id, class: 'panel rollout', 'aria-labelledby': `${id}-title` },
    el('h3', { id: `${id}-title` }, `Rollout on ${channel.name}`), state, controls, area);
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
      `${totals.downloads} downloads, ${totals.installs} installs, ${failed(totals.failures)} failures`,
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

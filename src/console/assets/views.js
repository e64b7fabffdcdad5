// The other pages: signing in, the summary's charts, the audit log and API keys.

import { session, api } from './api.js';
import { barChart } from './charts.js';
import { el, show, flash, wantFocus, when, text, overridesText, table, select, input } from './ui.js';
import { go, route, appHref, deviceHref, errorBox, askInPlace, appTabs, pageOf, pageButtons } from './nav.js';

export function renderSignIn() {
  // Masked, and not offered to the password manager as a site password.
  const key = el('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'one-time-code', required: true, spellcheck: 'false' });
  const status = el('div', { id: 'sign-in-error' });
  const form = el('form', { id: 'sign-in-form', class: 'panel', onsubmit: async (event) => {
    event.preventDefault();
    status.replaceChildren();
    const secret = key.value.trim();
    try {
      const who = await api('GET', '/apikey/current', { key: secret });
      session.signIn(secret, who);
      key.value = '';
      flash(`Signed in as ${who.name}`);
      wantFocus();
      route();
    } catch (failure) {
      status.replaceChildren(errorBox(failure, '#/'));
    }
  } },
  el('label', { for: 'key' }, 'API key'), key,
  el('p', { class: 'muted' }, 'The key is kept in this tab only, until you sign out or close it.'),
  el('button', { id: 'sign-in', class: 'primary', type: 'submit' }, 'Sign in'));
  show(el('h1', {}, 'Sign in'), form, status);
  key.focus();
}

// ---------------------------------------------------------------- apps

export async function renderSummary(app, current) {
  const summary = await api('GET', '/device/summary', { query: { app_id: app } });
  if (!current()) return;
  const total = summary.total;
  const versions = (summary.versions || []).map((v) => [v.version_name ?? '(unknown)', v.devices]);
  const platforms = Object.entries(summary.platforms || {});
  const seen = [['last day', summary.seen['1d']], ['last 7 days', summary.seen['7d']], ['last 30 days', summary.seen['30d']]];
  const builds = (summary.native_versions || []).map((v) => [v.version_build || '(none)', v.devices]);
  const channels = (summary.channels || []).map((c) => [c.channel ?? c.name, c.devices]);
  show(...appTabs(app, 'summary'),
    el('p', { id: 'summary-total' }, `${total} device${total === 1 ? '' : 's'}`),
    el('div', { class: 'charts' },
      barChart('chart-versions', 'Versions', versions, total),
      barChart('chart-platforms', 'Platforms', platforms, total),
      barChart('chart-seen', 'Seen in the last…', seen, total),
      barChart('chart-builds', 'Native builds', builds, total),
      barChart('chart-prod', 'Production / development', [['production', summary.prod], ['development', summary.dev]], total),
      barChart('chart-emulator', 'Physical / emulator', [['physical', summary.physical], ['emulator', summary.emulator]], total),
      barChart('chart-channels', 'Channel overrides', channels, total)));
}

// ---------------------------------------------------------------- audit log

function rolloutText(rollout) {
  if (!rollout) return 'none';
  return `${rollout.version} to ${(rollout.percentage_bps / 100).toFixed(2)}%${rollout.paused ? ', paused' : ''}`;
}

export async function renderAudit(app, params, current) {
  const deviceId = params.get('device_id') || '';
  const page = await api('GET', '/device/audit', { query: { app_id: app, device_id: deviceId, cursor: pageOf(params).cursor } });
  if (!current()) return;
  const filter = el('form', { id: 'audit-filter', onsubmit: (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    const value = event.target.elements.device_id.value.trim();
    if (value) chosen.set('device_id', value);
    go(appHref(app, 'audit', chosen));
  } }, el('div', { class: 'row' }, input('device_id', 'Device id', deviceId),
    el('button', { type: 'submit', class: 'primary' }, 'Show'),
    el('button', { type: 'button', onclick: () => go(appHref(app, 'audit')) }, 'All devices')));
  // Entries are a device's overrides, or a channel's rollout (no device: the channel instead).
  const rows = page.data.map((entry) => {
    const device = entry.device_id !== undefined;
    const shown = device ? overridesText : rolloutText;
    return el('tr', { class: device ? 'device-entry' : 'rollout-entry' },
      el('td', {}, when(entry.at)),
      el('td', {}, device ? el('a', { href: deviceHref(app, entry.device_id) }, entry.device_id) : `channel ${entry.channel}`),
      el('td', {}, entry.action),
      el('td', {}, entry.actor),
      el('td', {}, shown(entry.before)),
      el('td', {}, shown(entry.after)),
      el('td', {}, text(entry.reason)));
  });
  show(...appTabs(app, 'audit'), filter,
    page.data.length === 0 ? el('p', { class: 'muted' }, 'No change recorded.') : table('audit', ['When', 'Device or channel', 'Action', 'By', 'Before', 'After', 'Reason'], rows, null, 'Audit log'),
    pageButtons('audit', (next) => appHref(app, 'audit', next), params, page, null));
}

// ---------------------------------------------------------------- API keys

export async function renderKeys(current) {
  if (!session.isAll()) {
    show(el('h1', {}, 'API keys'), el('p', {}, 'Only a key of mode "all" manages keys.'), el('a', { class: 'back', href: '#/' }, 'Back to the apps'));
    return;
  }
  const keys = await api('GET', '/apikey');
  if (!current()) return;
  const area = el('div', { id: 'key-action' });
  const listArea = el('div', { id: 'keys-area' });
  const me = (session.who() || {}).id;

  function list(keys) {
    const rows = keys.map((key) => el('tr', { 'data-key-id': key.id },
      el('td', {}, String(key.id)), el('td', {}, key.name), el('td', {}, key.mode),
      el('td', {}, key.limited_to_apps.length ? key.limited_to_apps.join(', ') : 'all'),
      el('td', {}, key.expires_at ? key.expires_at : 'never'), el('td', {}, when(key.created_at)),
      el('td', {}, el('button', { type: 'button', class: 'danger delete-key', 'aria-label': `Delete key ${key.id}`, onclick: (event) => confirmDelete(key, event.target) }, 'Delete…'))));
    listArea.replaceChildren(keys.length === 0
      ? el('p', { class: 'muted' }, 'No stored key (the configured admin key is not listed).')
      : table('keys', ['Id', 'Name', 'Mode', 'Apps', 'Expires', 'Created', 'Actions'], rows, null, 'API keys'));
  }

  async function refresh() {
    try {
      list(await api('GET', '/apikey'));
    } catch (failure) {
      listArea.replaceChildren(errorBox(failure, null));
    }
  }

  function confirmDelete(key, opener) {
    const own = key.id === me;
    const question = [`Delete key ${key.id} "${key.name}"? Whoever uses it is refused from then on.`,
      own ? ' It is the key you are signed in with: you will be signed out.' : ''];
    askInPlace(area, question, 'Delete', { id: 'confirm-delete-key', class: 'danger' }, opener, async (event) => {
      event.target.disabled = true;
      try {
        await api('DELETE', `/apikey/${key.id}`);
      } catch (failure) {
        area.replaceChildren(errorBox(failure, null));
        return;
      }
      if (own) {
        session.signOut();
        flash(`Key ${key.id} deleted: signed out`, true);
        go('#/');
        return;
      }
      area.replaceChildren();
      flash(`Key ${key.id} deleted`);
      await refresh();
    });
  }

  const create = el('button', { id: 'create-key', class: 'primary', type: 'submit' }, 'Create');
  const form = el('form', { id: 'new-key', class: 'panel', 'aria-labelledby': 'new-key-title', onsubmit: async (event) => {
    event.preventDefault();
    if (create.disabled) return;
    const fields = event.target.elements;
    const body = { name: fields.name.value, mode: fields.mode.value };
    const apps = fields.limited_to_apps.value.split(',').map((a) => a.trim()).filter(Boolean);
    if (apps.length) body.limited_to_apps = apps;
    if (fields.expires_at.value.trim()) body.expires_at = fields.expires_at.value.trim();
    // One key per click: the button stays disabled until the answer is in.
    create.disabled = true;
    area.replaceChildren();
    let key;
    try {
      key = await api('POST', '/apikey', { body });
    } catch (failure) {
      area.replaceChildren(errorBox(failure, null));
      create.disabled = false;
      return;
    }
    // The secret first, from the answer itself: it cannot be read again.
    area.replaceChildren(el('div', { class: 'panel', role: 'status' },
      el('p', {}, `Key "${key.name}" created. Its secret is shown this once: copy it now.`),
      el('div', { id: 'new-secret', class: 'secret', tabindex: 0 }, key.key)));
    area.querySelector('#new-secret').focus();
    event.target.reset();
    create.disabled = false;
    await refresh();
  } },
  el('h2', { id: 'new-key-title' }, 'New key'),
  el('div', { class: 'row' },
    input('name', 'Name', '', { id: 'new-key-name', required: true, maxlength: 128 }),
    select('mode', 'Mode', [['read', 'read'], ['upload', 'upload'], ['write', 'write'], ['all', 'all']], 'read', { id: 'new-key-mode' }),
    input('limited_to_apps', 'Only these apps (comma-separated, empty: all)', ''),
    input('expires_at', 'Expires at (RFC 3339, empty: never)', '', { placeholder: '2030-01-01T00:00:00Z' }),
    create));
  list(keys);
  show(el('h1', {}, 'API keys'), area, listArea, form);
}

// What the devices are checked against: apps, their channels and bundles, listed, created and
// removed (a new self-hoster starts here, with no app yet).

import { session, api } from './api.js';
import { el, show, flash, wantFocus, when, text, table, select, input } from './ui.js';
import { go, route, appHref, errorBox, askInPlace, problem, appTabs } from './nav.js';
import { rolloutPanel } from './rollouts.js';

/** A form that sends one request: its button is disabled until the answer, an error is shown in
 * place (keeping what was typed), success runs `done`. */
function requestForm(id, title, fields, label, send, done) {
  const area = el('div', { id: `${id}-area` });
  const button = el('button', { id: `${id}-submit`, class: 'primary', type: 'submit' }, label);
  return el('form', { id, class: 'panel', 'aria-labelledby': `${id}-title`, onsubmit: async (event) => {
    event.preventDefault();
    if (button.disabled) return;
    area.replaceChildren();
    button.disabled = true;
    try {
      const answer = await send(event.target.elements);
      done(answer);
    } catch (failure) {
      area.replaceChildren(errorBox(failure, null));
    } finally {
      button.disabled = false;
    }
  } },
  el('h2', { id: `${id}-title` }, title),
  el('div', { class: 'row' }, fields, button),
  area);
}

/** A "Delete…" button that asks first, in place, then sends `remove`. */
function deleteButton(area, what, remove, done) {
  return el('button', { type: 'button', class: 'danger delete', 'aria-label': `Delete ${what}`, onclick: (event) => {
    askInPlace(area, `Delete ${what}?`, 'Delete', { class: 'danger confirm-delete' }, event.target, async (confirm) => {
      confirm.target.disabled = true;
      try {
        await remove();
        flash(`Deleted ${what}`);
        wantFocus();
        done();
      } catch (failure) {
        area.replaceChildren(errorBox(failure, null));
      }
    });
  } }, 'Delete…');
}

export async function renderApps(current) {
  const apps = await api('GET', '/app');
  if (!current()) return;
  const create = session.isAll() && requestForm('new-app', 'New app', [
    input('app_id', 'App id (as the plugin sends it: com.example.app)', '', { id: 'new-app-id', required: true, maxlength: 128 }),
    input('name', 'Name', '', { id: 'new-app-name' }),
  ], 'Create', (fields) => {
    const body = { app_id: fields.app_id.value.trim() };
    if (fields.name.value.trim()) body.name = fields.name.value.trim();
    return api('POST', '/app', { body });
  }, (app) => {
    flash(`App ${app.app_id} created`, true);
    go(appHref(app.app_id, 'channels'));
  });
  show(el('h1', {}, 'Apps'),
    apps.length === 0
      ? el('p', { class: 'muted' }, session.isAll()
        ? 'No app yet: create one below, then its bundles and channels.'
        : 'No app this key may see.')
      : table('apps', ['App', 'Name', 'Created'], apps.map((app) => el('tr', {},
        el('td', {}, el('a', { class: 'app-link', href: appHref(app.app_id, 'devices') }, app.app_id)),
        el('td', {}, text(app.name)),
        el('td', {}, when(app.created_at)))), null, 'Apps'),
    create);
}

export async function renderChannels(app, current) {
  const [channels, bundles, summary] = await Promise.all([
    api('GET', '/channel', { query: { app_id: app } }),
    api('GET', '/bundle', { query: { app_id: app } }),
    // How many devices each rollout selected (counters: milliseconds at any size); the page
    // stands without it.
    api('GET', '/device/summary', { query: { app_id: app } }).catch(() => ({ rollouts: [] })),
  ]);
  if (!current()) return;
  const selected = new Map((summary.rollouts || []).map((r) => [r.channel, r.selected]));
  const writable = session.canWrite();
  const area = el('div', { id: 'channel-action' });
  const platforms = (c) => ['ios', 'android', 'electron'].filter((p) => c[p]).join(', ') || 'none';
  const rollout = (c) => (c.rollout_version
    ? `${c.rollout_version} to ${(c.rollout_percentage_bps / 100).toFixed(2)}%${c.rollout_paused ? ' (paused)' : ''}`
    : null);
  const rows = channels.map((c) => el('tr', { 'data-channel': c.name },
    el('td', {}, c.name), el('td', {}, text(c.version)), el('td', {}, c.public ? 'yes' : 'no'),
    el('td', {}, platforms(c)), el('td', {}, c.allow_device_self_set ? 'allowed' : 'no'),
    el('td', {}, text(rollout(c))), el('td', {}, when(c.updated_at)),
    writable && el('td', {}, deleteButton(area, `channel ${c.name}`,
      () => api('DELETE', '/channel', { body: { app_id: app, channel: c.name } }), () => route()))));
  // Upserts by name: only the fields sent are written, so an existing channel keeps the rest.
  const form = writable && requestForm('channel-form', 'Create or change a channel', [
    input('channel', 'Channel', '', { id: 'channel-name', required: true, maxlength: 128, list: 'channel-names' }),
    el('datalist', { id: 'channel-names' }, channels.map((c) => el('option', { value: c.name }))),
    select('version', 'Bundle', [['', '(keep)'], ['none', '(none)'], ...bundles.map((b) => [b.version, b.version])], '', { id: 'channel-version' }),
    select('public', 'Default for devices (takes it from the channels it overlaps)', [['', '(keep)'], ['true', 'yes: the default channel'], ['false', 'no']], '', { id: 'channel-public' }),
    select('allow_device_self_set', 'Devices may choose it', [['', '(keep)'], ['true', 'yes'], ['false', 'no']], '', { id: 'channel-self-set' }),
  ], 'Save', (fields) => {
    const body = { app_id: app, channel: fields.channel.value.trim() };
    if (fields.version.value === 'none') body.version = null;
    else if (fields.version.value) body.version = fields.version.value;
    if (fields.public.value) body.public = fields.public.value === 'true';
    if (fields.allow_device_self_set.value) body.allow_device_self_set = fields.allow_device_self_set.value === 'true';
    return api('POST', '/channel', { body });
  }, (answer) => {
    flash(`Channel ${answer.channel.name} saved`);
    wantFocus();
    route();
  });
  const headings = ['Channel', 'Bundle', 'Public', 'Platforms', 'Self-set', 'Rollout', 'Updated'];
  if (writable) headings.push('Actions');
  show(...appTabs(app, 'channels'), area,
    channels.length === 0 ? el('p', { class: 'muted' }, 'No channel.') : table('channels', headings, rows, null, 'Channels'),
    channels.length > 0 && el('h2', {}, 'Rollouts'),
    channels.map((c) => rolloutPanel(app, c, bundles, selected.get(c.name))),
    form);
}

export async function renderBundles(app, current) {
  const bundles = await api('GET', '/bundle', { query: { app_id: app } });
  if (!current()) return;
  const writable = session.canWrite();
  const area = el('div', { id: 'bundle-action' });
  const rows = bundles.map((b) => el('tr', { 'data-version': b.version },
    el('td', {}, b.version), el('td', {}, String(b.id)), el('td', { class: 'mono' }, b.external_url),
    el('td', { class: 'mono' }, text(b.checksum)), el('td', {}, text(b.min_update_version)), el('td', {}, when(b.created_at)),
    el('td', {}, el('a', { class: 'health-link', href: appHref(app, `health/${encodeURIComponent(b.version)}`) }, 'Health')),
    writable && el('td', {}, deleteButton(area, `bundle ${b.version}`,
      () => api('DELETE', '/bundle', { body: { app_id: app, version: b.version } }), () => route()))));
  const form = writable && requestForm('bundle-form', 'Register a bundle', [
    input('version', 'Version (semver)', '', { id: 'bundle-version', required: true, placeholder: '1.2.0' }),
    input('external_url', 'Where it is hosted (https://...zip)', '', { id: 'bundle-url', required: true, type: 'url' }),
    input('checksum', 'Checksum', '', { id: 'bundle-checksum', required: true }),
  ], 'Register', (fields) => {
    const version = fields.version.value.trim();
    if (!version) throw problem('Type the bundle\'s version.');
    return api('POST', '/bundle', { body: {
      app_id: app, version, external_url: fields.external_url.value.trim(), checksum: fields.checksum.value.trim(),
    } });
  }, (answer) => {
    flash(`Bundle ${answer.bundle.version} registered`);
    wantFocus();
    route();
  });
  const headings = ['Version', 'Id', 'URL', 'Checksum', 'Min. update version', 'Created', 'Reports'];
  if (writable) headings.push('Actions');
  show(...appTabs(app, 'bundles'), area,
    bundles.length === 0 ? el('p', { class: 'muted' }, 'No bundle.') : table('bundles', headings, rows, null, 'Bundles'),
    form);
}

// Devices: the list with its filters and pages, several at once (bulk), one device and why it
// gets its answer.

import { session, api, ApiFailure } from './api.js';
import { el, show, flash, wantFocus, ago, when, text, overridesText, table, select, input } from './ui.js';
import { go, route, appHref, deviceHref, errorBox, problem, appTabs, pageOf, pageButtons, lastList } from './nav.js';

const FILTERS = ['custom_id', 'custom_id_prefix', 'platform', 'version_name', 'channel', 'has_override', 'is_prod', 'is_emulator', 'order', 'limit'];

export async function renderDevices(app, params, current) {
  const query = { app_id: app, cursor: pageOf(params).cursor };
  for (const name of FILTERS) query[name] = params.get(name);
  const writable = session.canWrite();
  const [page, channels, bundles] = await Promise.all([
    api('GET', '/device', { query }),
    api('GET', '/channel', { query: { app_id: app } }),
    writable ? api('GET', '/bundle', { query: { app_id: app } }) : [],
  ]);
  if (!current()) return;
  lastList.set(app, window.location.hash);
  const selected = new Set();

  const channelNames = channels.map((c) => c.name);
  const chosenChannel = params.get('channel');
  if (chosenChannel && !channelNames.includes(chosenChannel)) channelNames.push(chosenChannel);
  const filters = el('form', { id: 'filters', 'aria-label': 'Filters', onsubmit: (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(event.target)) if (value !== '') chosen.set(name, value);
    go(appHref(app, 'devices', chosen));
  } },
  el('div', { class: 'row' },
    input('custom_id', 'Custom id', params.get('custom_id')),
    input('custom_id_prefix', 'Custom id prefix', params.get('custom_id_prefix')),
    select('platform', 'Platform', [['', 'any'], ['ios', 'iOS'], ['android', 'Android'], ['electron', 'Electron']], params.get('platform')),
    input('version_name', 'Version', params.get('version_name')),
    select('channel', 'Channel override', [['', 'any'], ...channelNames.map((c) => [c, c])], chosenChannel),
    select('has_override', 'Override', [['', 'any'], ['true', 'with an override'], ['false', 'without']], params.get('has_override')),
    select('is_prod', 'Build', [['', 'any'], ['true', 'production'], ['false', 'development']], params.get('is_prod')),
    select('is_emulator', 'Device', [['', 'any'], ['false', 'physical'], ['true', 'emulator']], params.get('is_emulator')),
    select('order', 'Order', [['', 'by device id'], ['desc', 'last seen, newest first'], ['asc', 'last seen, oldest first']], params.get('order')),
    select('limit', 'Per page', [['', '50'], ['20', '20'], ['100', '100'], ['500', '500']], params.get('limit')),
    el('button', { id: 'apply-filters', class: 'primary', type: 'submit' }, 'Apply'),
    el('button', { id: 'clear-filters', type: 'button', onclick: () => go(appHref(app, 'devices')) }, 'Clear')));

  const count = el('span', { id: 'selected-count', class: 'muted', 'aria-live': 'polite' }, '0 selected');
  const checkbox = (device) => el('input', { type: 'checkbox', class: 'select-device', 'aria-label': `Select ${device.device_id}`, onchange: (event) => {
    if (event.target.checked) selected.add(device.device_id); else selected.delete(device.device_id);
    count.textContent = `${selected.size} selected`;
  } });
  const rows = page.data.map((device) => el('tr', { 'data-device-id': device.device_id },
    writable && el('td', {}, checkbox(device)),
    el('td', {}, el('a', { class: 'device-link', href: deviceHref(app, device.device_id) }, device.device_id)),
    el('td', { class: 'custom-id' }, text(device.custom_id)),
    el('td', {}, text(device.platform)),
    el('td', {}, text(device.version_name)),
    el('td', {}, text(device.channel)),
    el('td', {}, text(device.version_override)),
    el('td', {}, device.is_prod ? 'production' : 'development', device.is_emulator ? ', emulator' : ''),
    el('td', {}, when(device.updated_at))));

  // A filter that matches few devices answers bounded pages, possibly empty, with more to come.
  let empty = null;
  if (page.data.length === 0) {
    empty = el('p', { id: 'no-devices', class: 'muted' }, page.hasMore
      ? 'None in this stretch of the list (the server reads a bounded number of devices a page): press Next to look further.'
      : 'No device matches.');
  }
  const headings = [writable && el('span', { class: 'muted' }, 'Select'), 'Device', 'Custom id', 'Platform', 'Version', 'Channel', 'Pinned version', 'Build', 'Last seen'].filter(Boolean);
  show(...appTabs(app, 'devices'), filters,
    empty || table('devices', headings, rows, null, 'Devices'),
    pageButtons('page', (next) => appHref(app, 'devices', next), params, page, `${page.data.length} device${page.data.length === 1 ? '' : 's'}`),
    writable && bulkPanel(app, selected, count, channels, bundles),
    writable && linkByIdPanel(app, channels, bundles));
}

/** The channel and version chosen in a pair of pickers, as the link body takes them. */
function chosenOverrides(channelPicker, versionPicker) {
  const body = {};
  const channel = channelPicker.querySelector('select').value;
  const version = versionPicker.querySelector('select').value;
  if (channel) body.channel = channel;
  if (version) body.version_id = version;
  return body;
}

function overridePickers(prefix, channels, bundles) {
  return [
    select('channel', 'Channel', [['', '(keep)'], ...channels.map((c) => [c.name, c.name])], '', { id: `${prefix}-channel` }),
    select('version', 'Pin version', [['', '(keep)'], ...bundles.map((b) => [b.version, b.version])], '', { id: `${prefix}-version` }),
  ];
}

/** Link or unlink the selected devices together: a dry run first, shown for confirmation. */
function bulkPanel(app, selected, count, channels, bundles) {
  const [channel, version] = overridePickers('bulk', channels, bundles);
  const preview = el('div', { id: 'bulk-preview-area' });
  let opener = null;

  async function propose(method, event) {
    opener = event.target;
    preview.replaceChildren();
    const body = { app_id: app, device_ids: [...selected] };
    if (method === 'POST') Object.assign(body, chosenOverrides(channel, version));
    if (selected.size === 0) {
      preview.replaceChildren(errorBox(problem('Select devices first.'), null));
      return;
    }
    if (method === 'POST' && !body.channel && !body.version_id) {
      preview.replaceChildren(errorBox(problem('Choose a channel or a version to link them to.'), null));
      return;
    }
    try {
      const dry = await api(method, '/device/bulk', { body: { ...body, dry_run: true } });
      const changes = dry.results.filter((r) => r.changed).length;
      preview.replaceChildren(el('div', { class: 'panel' },
        el('h3', {}, `${method === 'POST' ? 'Link' : 'Unlink'}: ${changes} of ${dry.results.length} device${dry.results.length === 1 ? '' : 's'} would change`),
        table('bulk-preview', ['Device', 'Before', 'After'], dry.results.map((r) => el('tr', { class: r.changed ? 'changed' : null },
          el('td', {}, r.device_id), el('td', {}, overridesText(r.before)), el('td', {}, overridesText(r.after)))), null, 'Preview'),
        el('div', { class: 'row' },
          el('button', { id: 'bulk-confirm', class: 'primary', type: 'button', onclick: async (confirm) => {
            confirm.target.disabled = true;
            try {
              const done = await api(method, '/device/bulk', { body });
              flash(`${done.results.filter((r) => r.changed).length} device(s) changed`);
              wantFocus();
              route();
            } catch (failure) {
              preview.replaceChildren(errorBox(failure, null));
            }
          } }, 'Apply'),
          el('button', { id: 'bulk-cancel', type: 'button', onclick: () => { preview.replaceChildren(); if (opener) opener.focus(); } }, 'Cancel'))));
      preview.querySelector('#bulk-confirm').focus();
    } catch (failure) {
      preview.replaceChildren(errorBox(failure, null));
    }
  }

  return el('section', { class: 'panel', 'aria-labelledby': 'bulk-title' },
    el('h2', { id: 'bulk-title' }, 'Selected devices'),
    el('div', { class: 'row' }, count, channel, version,
      el('button', { id: 'bulk-link', type: 'button', onclick: (event) => propose('POST', event) }, 'Link…'),
      el('button', { id: 'bulk-unlink', type: 'button', onclick: (event) => propose('DELETE', event) }, 'Unlink…')),
    preview);
}

/** A device by its id, seen or not: "beta device registration" links devices before their
 * first check-in. */
function linkByIdPanel(app, channels, bundles) {
  const [channel, version] = overridePickers('by-id', channels, bundles);
  const area = el('div', { id: 'by-id-area' });
  return el('form', { id: 'link-by-id', class: 'panel', 'aria-labelledby': 'by-id-title', onsubmit: (event) => {
    event.preventDefault();
    const deviceId = event.target.elements.device_id.value.trim();
    if (!deviceId) {
      area.replaceChildren(errorBox(problem('Type a device id.'), null));
      return;
    }
    go(deviceHref(app, deviceId.toLowerCase()));
  } },
  el('h2', { id: 'by-id-title' }, 'A device by its id'),
  el('p', { class: 'muted' }, 'Open any device, also one that has not checked in yet, to link it in advance.'),
  el('div', { class: 'row' }, input('device_id', 'Device id', '', { id: 'by-id-device' }),
    el('button', { id: 'by-id-open', type: 'submit' }, 'Open')),
  area);
}

// ---------------------------------------------------------------- one device

export async function renderDevice(app, deviceId, current) {
  const notSeen = (failure) => {
    if (failure instanceof ApiFailure && failure.body.error === 'device_not_found') return null;
    throw failure;
  };
  const [device, trace, channels, bundles] = await Promise.all([
    api('GET', '/device', { query: { app_id: app, device_id: deviceId } }).catch(notSeen),
    api('GET', '/device/resolve', { query: { app_id: app, device_id: deviceId } }).catch((failure) => failure),
    api('GET', '/channel', { query: { app_id: app } }),
    session.canWrite() ? api('GET', '/bundle', { query: { app_id: app } }) : [],
  ]);
  if (!current()) return;
  const back = lastList.get(app) || appHref(app, 'devices');
  const actionArea = el('div', { id: 'device-action' });

  async function act(method, body, done) {
    actionArea.replaceChildren();
    try {
      await api(method, '/device', { body: { app_id: app, device_id: device ? device.device_id : deviceId, ...body } });
      flash(done);
      wantFocus();
      route();
    } catch (failure) {
      actionArea.replaceChildren(errorBox(failure, null));
    }
  }

  let actions = null;
  if (session.canWrite()) {
    const [channel, version] = overridePickers('link', channels, bundles);
    actions = el('section', { class: 'panel', 'aria-labelledby': 'actions-title' },
      el('h2', { id: 'actions-title' }, 'Change its overrides'),
      el('div', { class: 'row' }, channel, version,
        el('button', { id: 'link', class: 'primary', type: 'button', onclick: () => {
          const body = chosenOverrides(channel, version);
          if (!body.channel && !body.version_id) {
            actionArea.replaceChildren(errorBox(problem('Choose a channel or a version to link it to.'), null));
            return;
          }
          act('POST', body, 'Linked');
        } }, 'Link'),
        el('button', { id: 'unlink', class: 'danger', type: 'button', onclick: () => act('DELETE', {}, 'Unlinked: back to the default channel') }, 'Unlink')),
      actionArea);
  }

  const about = device
    ? [el('dl', { id: 'device-fields', class: 'fields' },
      Object.entries(device).map(([name, value]) => [el('dt', {}, name), el('dd', { 'data-field': name }, name === 'updated_at' ? [String(value), ' (', ago(value), ')'] : text(value))])),
    el('p', { id: 'overrides' }, `Overrides: ${overridesText(device)}`)]
    : el('p', { id: 'not-seen', class: 'panel' }, 'This device has not checked in yet. A link made now applies from its first check-in; its audit log shows the links it has.');

  show(...appTabs(app, 'devices'),
    el('p', {}, el('a', { class: 'back', href: back }, '← Devices')),
    el('h2', {}, 'Device ', el('span', { class: 'mono' }, device ? device.device_id : deviceId)),
    about, actions,
    el('section', { id: 'resolve', 'aria-labelledby': 'resolve-title' },
      el('h2', { id: 'resolve-title' }, 'Why does it get this answer?'),
      trace instanceof Error
        ? (device ? errorBox(trace, null) : el('p', { class: 'muted' }, 'Nothing to explain until it checks in.'))
        : resolveTrace(trace)),
    el('p', {}, el('a', { id: 'device-audit', href: appHref(app, 'audit', new URLSearchParams({ device_id: device ? device.device_id : deviceId })) }, 'Its audit log')));
}

function resolveTrace(trace) {
  const answer = trace.answer || {};
  const outcome = answer.error
    ? `${answer.kind || 'refused'}: ${answer.message || answer.error}${answer.version ? ` (${answer.version})` : ''}`
    : `gets bundle ${answer.version}${answer.url ? ` from ${answer.url}` : ''}`;
  return [
    el('p', { id: 'resolve-answer' }, el('strong', {}, 'Answer: '), outcome,
      el('span', { class: 'muted' }, ` — decided by ${trace.source || 'nothing'}`)),
    el('h3', {}, 'Precedence, in order'),
    el('ol', { id: 'precedence', class: 'steps' }, (trace.precedence || []).map((step) =>
      el('li', { class: step.applied ? 'applied' : 'skipped' },
        el('strong', {}, step.applied ? 'applied ' : 'skipped '), step.step, ': ', step.detail))),
    el('h3', {}, 'Rules checked'),
    el('ul', { id: 'rules', class: 'rules' }, (trace.rules || []).map((rule) =>
      el('li', { class: rule.passed ? 'passed' : 'failed' },
        el('strong', {}, rule.passed ? 'passed ' : 'refused '), rule.rule, rule.detail ? `: ${rule.detail}` : ''))),
  ];
}

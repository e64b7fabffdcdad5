// device-registry console. Hand-written, no dependencies: it calls the public API with the key
// the user signed in with, kept in this tab's session storage only (never in a URL, a cookie or
// a log). Every value from the API is put in the page as text (textContent or an attribute),
// never parsed as markup: device fields come from unauthenticated plugins.
'use strict';

const KEY_ITEM = 'device-registry.key';
const WHO_ITEM = 'device-registry.who';
const MODES = { read: 0, upload: 1, write: 2, all: 3 };
const SVG_NS = 'http://www.w3.org/2000/svg';

// ---------------------------------------------------------------- elements

/** An element: attributes (`class`, `for`, any other; `on<event>` takes a function) and children
 * (strings become text nodes, null and false are skipped). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) {
      if (typeof value !== 'function') throw new Error(`handler ${name} must be a function`);
      node.addEventListener(name.slice(2), value);
    } else if ((name === 'href' || name === 'src' || name === 'action') && !String(value).startsWith('#')) {
      // Links stay inside the console: no URL built from API data can lead elsewhere.
      throw new Error(`${name} must be a console address`);
    } else if (value === true) {
      node.setAttribute(name, '');
    } else {
      node.setAttribute(name, String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const main = () => document.getElementById('main');

function show(...children) {
  const target = main();
  target.replaceChildren();
  append(target, children);
  focusView();
}

/** A message kept until the user goes elsewhere (cleared by `go` and on hashchange), or, with
 * `across`, until the navigation after the one under way. */
let flashAcross = false;

function flash(text, across) {
  document.getElementById('flash').textContent = text;
  flashAcross = Boolean(across);
}

function clearFlash() {
  if (flashAcross) {
    flashAcross = false;
    return;
  }
  document.getElementById('flash').textContent = '';
}

/** After a navigation or an action the page is rebuilt: focus goes to its heading, so that
 * keyboard and screen-reader users start from the top of the new content. */
let focusHeading = false;

function focusView() {
  if (!focusHeading) return;
  focusHeading = false;
  const heading = main().querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
    document.title = `${heading.textContent} · device-registry console`;
  }
}

// ---------------------------------------------------------------- session

const session = {
  key: () => sessionStorage.getItem(KEY_ITEM),
  who: () => JSON.parse(sessionStorage.getItem(WHO_ITEM) || 'null'),
  rank: () => MODES[(session.who() || {}).mode] ?? -1,
  canWrite: () => session.rank() >= MODES.write,
  isAll: () => session.rank() >= MODES.all,
  signIn(key, who) {
    sessionStorage.setItem(KEY_ITEM, key);
    sessionStorage.setItem(WHO_ITEM, JSON.stringify(who));
  },
  signOut() {
    sessionStorage.removeItem(KEY_ITEM);
    sessionStorage.removeItem(WHO_ITEM);
  },
};

// ---------------------------------------------------------------- the API

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** One call: `query` goes to the query string (empty values left out), `body` is sent as JSON.
 * Answers the parsed body, or throws an ApiFailure carrying the API's error body. */
async function api(method, path, { query, body, key } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const headers = { authorization: key || session.key() || '' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (_) {
    throw new ApiFailure(0, { error: 'network_error', message: 'The server could not be reached', moreInfo: {} });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    throw new ApiFailure(response.status, data || { error: `http_${response.status}`, message: response.statusText, moreInfo: {} });
  }
  return data;
}

/** The API's error, with a way back: a page's error leads `back` (or lets the user sign in
 * again when the key stopped working); an error inside a panel (`back` null) is dismissed in
 * place, keeping what the user chose or typed. */
function errorBox(failure, back) {
  const body = failure instanceof ApiFailure ? failure.body : { error: 'console_error', message: String(failure) };
  const info = body.moreInfo && Object.keys(body.moreInfo).length ? JSON.stringify(body.moreInfo) : null;
  const keyGone = failure.status === 401 && session.key();
  const box = el('div', { class: 'error', role: 'alert' },
    el('strong', {}, body.message || 'Something went wrong'),
    el('div', { class: 'code' }, `${failure.status || ''} ${body.error || ''}`.trim()),
    info && el('div', { class: 'mono' }, info));
  const actions = el('div', { class: 'row' });
  if (keyGone) {
    actions.append(el('button', { type: 'button', class: 'back', onclick: () => { session.signOut(); go('#/'); } }, 'Sign in again'));
  } else if (back === null) {
    actions.append(el('button', { type: 'button', class: 'dismiss', onclick: () => box.remove() }, 'Dismiss'));
  } else {
    actions.append(
      el('button', { type: 'button', class: 'back', onclick: () => go(back || '#/') }, 'Back'),
      el('button', { type: 'button', onclick: () => route() }, 'Try again'));
  }
  box.append(actions);
  return box;
}

/** A message of the console's own, shown like the API's errors. */
function problem(message) {
  return new ApiFailure(0, { error: 'invalid_choice', message, moreInfo: {} });
}

// ---------------------------------------------------------------- formatting

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];

function ago(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return String(iso);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') return relative.format(Math.round(seconds / size), unit);
  }
  return String(iso);
}

function when(iso) {
  return iso ? el('time', { datetime: iso, title: iso }, ago(iso)) : el('span', { class: 'muted' }, 'never');
}

function text(value) {
  if (value === undefined || value === null || value === '') return el('span', { class: 'muted' }, '—');
  if (typeof value === 'object') return el('span', { class: 'mono' }, JSON.stringify(value));
  return String(value);
}

function overridesText(o) {
  const parts = [];
  if (o && o.channel) parts.push(`channel ${o.channel}`);
  if (o && o.version_override) parts.push(`version ${o.version_override}`);
  return parts.length ? parts.join(', ') : 'none';
}

function table(id, headings, rows, caption, label) {
  // A focusable region: a table wider than the screen scrolls in its box, by keyboard too.
  return el('div', { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-label': label || caption || id },
    el('table', { id },
      caption && el('caption', { class: 'muted' }, caption),
      el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)));
}

function select(name, label, options, value, attrs) {
  return el('label', {}, label,
    el('select', { name, id: attrs && attrs.id, ...(attrs || {}) },
      options.map(([optionValue, optionLabel]) =>
        el('option', { value: optionValue, selected: optionValue === (value || '') }, optionLabel))));
}

function input(name, label, value, attrs) {
  return el('label', {}, label, el('input', { name, value: value || '', ...(attrs || {}) }));
}

// ---------------------------------------------------------------- routing

let renders = 0;

/** Navigates (to page 1 of a list); the same place again renders again. */
function go(hash) {
  if (window.location.hash === hash) {
    pager.at = null;
    clearFlash();
    focusHeading = true;
    route();
  } else {
    // The hashchange handler does the same.
    window.location.hash = hash;
  }
}

function appHref(app, view, params) {
  const query = params && params.toString();
  return `#/app/${encodeURIComponent(app)}/${view}${query ? `?${query}` : ''}`;
}

function deviceHref(app, deviceId) {
  return `#/app/${encodeURIComponent(app)}/device/${encodeURIComponent(deviceId)}`;
}

function route() {
  const render = ++renders;
  const current = () => render === renders;
  const hash = window.location.hash.slice(1) || '/';
  const [path, queryString] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map((part) => {
    try { return decodeURIComponent(part); } catch (_) { return part; }
  });
  const params = new URLSearchParams(queryString || '');
  renderHeader();
  if (!session.key()) return renderSignIn();
  const view = (async () => {
    if (parts.length === 0) return renderApps(current);
    if (parts[0] === 'keys') return renderKeys(current);
    if (parts[0] === 'app' && parts[1]) {
      const app = parts[1];
      switch (parts[2] || 'devices') {
        case 'devices': return renderDevices(app, params, current);
        case 'device':
          if (parts.length > 3) return renderDevice(app, parts.slice(3).join('/'), current);
          break;
        case 'summary': return renderSummary(app, current);
        case 'audit': return renderAudit(app, params, current);
        case 'channels': return renderChannels(app, current);
        case 'bundles': return renderBundles(app, current);
        default: break;
      }
    }
    return show(el('h1', {}, 'Not found'), el('p', {}, 'The console has no such page. '), el('a', { class: 'back', href: '#/' }, 'Back to the apps'));
  })();
  view.catch((failure) => {
    if (current()) show(errorBox(failure, parts[0] === 'app' && parts[2] && parts[2] !== 'devices' ? appHref(parts[1], 'devices') : '#/'));
  });
}

function renderHeader() {
  const nav = document.getElementById('nav');
  const who = session.who();
  const signedIn = Boolean(session.key());
  nav.replaceChildren();
  if (signedIn) {
    const onKeys = window.location.hash.startsWith('#/keys');
    append(nav, [
      el('a', { id: 'nav-apps', href: '#/', 'aria-current': onKeys ? null : 'page' }, 'Apps'),
      session.isAll() && el('a', { id: 'nav-keys', href: '#/keys', 'aria-current': onKeys ? 'page' : null }, 'API keys'),
    ]);
  }
  document.getElementById('who').textContent = signedIn && who ? `${who.name} (${who.mode})` : '';
  document.getElementById('sign-out').hidden = !signedIn;
}

function appTabs(app, active) {
  const tabs = [['devices', 'Devices'], ['summary', 'Summary'], ['audit', 'Audit log'], ['channels', 'Channels'], ['bundles', 'Bundles']];
  return [
    el('h1', {}, app),
    el('nav', { class: 'tabs', 'aria-label': 'App' }, tabs.map(([view, label]) =>
      el('a', { id: `tab-${view}`, href: appHref(app, view), 'aria-current': view === active ? 'page' : null }, label))),
  ];
}

// ---------------------------------------------------------------- sign in

function renderSignIn() {
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
      focusHeading = true;
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

async function renderApps(current) {
  const apps = await api('GET', '/app');
  if (!current()) return;
  show(el('h1', {}, 'Apps'),
    apps.length === 0
      ? el('p', { class: 'muted' }, 'No app yet: create one with POST /app (see the README).')
      : table('apps', ['App', 'Name', 'Created'], apps.map((app) => el('tr', {},
        el('td', {}, el('a', { class: 'app-link', href: appHref(app.app_id, 'devices') }, app.app_id)),
        el('td', {}, text(app.name)),
        el('td', {}, when(app.created_at))))));
}

// ---------------------------------------------------------------- devices

const FILTERS = ['custom_id', 'custom_id_prefix', 'platform', 'version_name', 'channel', 'has_override', 'is_prod', 'is_emulator', 'order', 'limit'];

/** Cursors of the pages before the one shown, for "Previous": the API's cursors only go forward. */
const pager = { at: null, cursors: [null] };

function pagerFor(where) {
  if (pager.at !== where) {
    pager.at = where;
    pager.cursors = [null];
  }
  return pager;
}

/** The list the user last looked at in each app, so that "← Devices" returns to it. */
const lastList = new Map();

/** Previous and Next: the stack of cursors moves once per click (both buttons are disabled
 * until the page has been read again). */
function pageButtons(prefix, pages, page, label) {
  const number = pages.cursors.length;
  const turn = (move) => (event) => {
    for (const button of event.target.parentNode.querySelectorAll('button')) button.disabled = true;
    move();
    route();
  };
  return el('div', { class: 'row' },
    el('button', { id: `${prefix}-prev`, type: 'button', disabled: number === 1, onclick: turn(() => pages.cursors.pop()) }, 'Previous'),
    el('span', { id: `${prefix}-info`, class: 'muted', 'aria-live': 'polite' }, `Page ${number}${label ? `, ${label}` : ''}`),
    el('button', { id: `${prefix}-next`, type: 'button', disabled: !page.hasMore, onclick: turn(() => pages.cursors.push(page.nextCursor)) }, 'Next'));
}

async function renderDevices(app, params, current) {
  const where = `${app}?${params.toString()}`;
  const pages = pagerFor(where);
  const query = { app_id: app, cursor: pages.cursors[pages.cursors.length - 1] };
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
    pageButtons('page', pages, page, `${page.data.length} device${page.data.length === 1 ? '' : 's'}`),
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
              focusHeading = true;
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

async function renderDevice(app, deviceId, current) {
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
      focusHeading = true;
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

// ---------------------------------------------------------------- summary

/** A horizontal bar chart: one row per entry, its share of `total` drawn, its count written. */
function barChart(id, title, entries, total) {
  const rowHeight = 28;
  const width = 400;
  const labelWidth = 120;
  const barWidth = width - labelWidth - 100;
  const height = Math.max(1, entries.length) * rowHeight + 4;
  // Read out as one sentence: the picture's numbers, not only its title.
  const spoken = entries.map(([label, value]) => `${label ?? '(unknown)'}: ${value}`).join(', ');
  const chart = svg('svg', { id, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${title}. ${spoken || 'none'} of ${total}` },
    svg('title', {}, title));
  entries.forEach(([label, value], index) => {
    const y = index * rowHeight + 2;
    const share = total > 0 ? value / total : 0;
    const name = String(label ?? '(unknown)');
    const shortLabel = name.length > 13 ? `${name.slice(0, 12)}…` : name;
    chart.append(
      svg('text', { x: 0, y: y + 19 }, svg('title', {}, name), shortLabel),
      svg('rect', { class: 'track', x: labelWidth, y: y + 4, width: barWidth, height: rowHeight - 8, rx: 3 }),
      svg('rect', { class: 'bar', x: labelWidth, y: y + 4, width: Math.max(share > 0 ? 2 : 0, share * barWidth), height: rowHeight - 8, rx: 3 }),
      svg('text', { class: 'value', x: labelWidth + barWidth + 6, y: y + 19 }, `${value} · ${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`));
  });
  if (entries.length === 0) chart.append(svg('text', { class: 'value', x: 0, y: 17 }, 'none'));
  return el('figure', { class: 'chart panel' }, el('figcaption', {}, el('strong', {}, title)), chart);
}

async function renderSummary(app, current) {
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

async function renderAudit(app, params, current) {
  const deviceId = params.get('device_id') || '';
  const pages = pagerFor(`audit:${app}?${params.toString()}`);
  const page = await api('GET', '/device/audit', { query: { app_id: app, device_id: deviceId, cursor: pages.cursors[pages.cursors.length - 1] } });
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
    pageButtons('audit', pages, page, null));
}

// ---------------------------------------------------------------- channels and bundles

async function renderChannels(app, current) {
  const channels = await api('GET', '/channel', { query: { app_id: app } });
  if (!current()) return;
  const platforms = (c) => ['ios', 'android', 'electron'].filter((p) => c[p]).join(', ') || 'none';
  const rollout = (c) => (c.rollout_version
    ? `${c.rollout_version} to ${(c.rollout_percentage_bps / 100).toFixed(2)}%${c.rollout_paused ? ' (paused)' : ''}`
    : null);
  show(...appTabs(app, 'channels'),
    channels.length === 0 ? el('p', { class: 'muted' }, 'No channel.') : table('channels', ['Channel', 'Bundle', 'Public', 'Platforms', 'Self-set', 'Rollout', 'Updated'],
      channels.map((c) => el('tr', {},
        el('td', {}, c.name), el('td', {}, text(c.version)), el('td', {}, c.public ? 'yes' : 'no'),
        el('td', {}, platforms(c)), el('td', {}, c.allow_device_self_set ? 'allowed' : 'no'),
        el('td', {}, text(rollout(c))), el('td', {}, when(c.updated_at))))));
}

async function renderBundles(app, current) {
  const bundles = await api('GET', '/bundle', { query: { app_id: app } });
  if (!current()) return;
  show(...appTabs(app, 'bundles'),
    bundles.length === 0 ? el('p', { class: 'muted' }, 'No bundle.') : table('bundles', ['Version', 'Id', 'URL', 'Checksum', 'Min. update version', 'Created'],
      bundles.map((b) => el('tr', {},
        el('td', {}, b.version), el('td', {}, String(b.id)), el('td', { class: 'mono' }, b.external_url),
        el('td', { class: 'mono' }, text(b.checksum)), el('td', {}, text(b.min_update_version)), el('td', {}, when(b.created_at))))));
}

// ---------------------------------------------------------------- API keys

async function renderKeys(current) {
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
    area.replaceChildren(el('div', { class: 'panel', role: 'alert' },
      el('p', {}, `Delete key ${key.id} "${key.name}"? Whoever uses it is refused from then on.`,
        own ? ' It is the key you are signed in with: you will be signed out.' : ''),
      el('div', { class: 'row' },
        el('button', { id: 'confirm-delete-key', class: 'danger', type: 'button', onclick: async (event) => {
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
        } }, 'Delete'),
        el('button', { type: 'button', onclick: () => { area.replaceChildren(); opener.focus(); } }, 'Cancel'))));
    area.querySelector('#confirm-delete-key').focus();
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

// ---------------------------------------------------------------- start

window.addEventListener('error', (event) => {
  flash(`The console hit an error: ${event.message}`);
});
window.addEventListener('unhandledrejection', (event) => {
  flash(`The console hit an error: ${event.reason && event.reason.message ? event.reason.message : event.reason}`);
});
window.addEventListener('hashchange', () => {
  pager.at = null;
  clearFlash();
  focusHeading = true;
  window.scrollTo(0, 0);
  route();
});
// A link to the page already shown renders it again from its start (no hashchange fires).
document.addEventListener('click', (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#/"]');
  if (link && link.getAttribute('href') === window.location.hash) {
    event.preventDefault();
    go(link.getAttribute('href'));
  }
});
document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-out').addEventListener('click', () => {
    session.signOut();
    flash('Signed out', true);
    go('#/');
  });
  route();
});

// device-registry console. Hand-written, no dependencies, no build step: it calls the public API
// with the key the user signed in with, kept in this tab's session storage only (never in a URL,
// a cookie or a log). Every value from the API is put in the page as text (textContent or an
// attribute), never parsed as markup: device fields come from unauthenticated plugins.
//
// api.js       the API and the signed-in key
// ui.js        elements (always text), messages, focus, formatting
// nav.js       addresses, navigation, errors with a way back, pages of a list
// devices.js   the devices list, bulk changes, one device and its trace
// registry.js  apps, channels, bundles: listed, created, removed
// rollouts.js  a channel's rollout and its controls, a bundle's health per day
// charts.js    the SVG bar charts
// views.js     sign in, summary charts, audit log, API keys

import { session } from './api.js';
import { el, append, show, flash } from './ui.js';
import { go, leave, setRouter, appHref, errorBox } from './nav.js';
import { renderDevices, renderDevice } from './devices.js';
import { renderSignIn, renderSummary, renderAudit, renderKeys } from './views.js';
import { renderApps, renderChannels, renderBundles } from './registry.js';
import { renderHealth } from './rollouts.js';

let renders = 0;

/** Shows the page of the current address; an answer for a page the user has left is dropped. */
function showCurrent() {
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
        case 'health':
          if (parts.length > 3) return renderHealth(app, parts.slice(3).join('/'), current, params);
          break;
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

window.addEventListener('error', (event) => {
  flash(`The console hit an error: ${event.message}`);
});
window.addEventListener('unhandledrejection', (event) => {
  flash(`The console hit an error: ${event.reason && event.reason.message ? event.reason.message : event.reason}`);
});
window.addEventListener('hashchange', () => {
  leave();
  window.scrollTo(0, 0);
  showCurrent();
});
// A link to the page already shown renders it again from its start (no hashchange fires).
document.addEventListener('click', (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#/"]');
  if (link && link.getAttribute('href') === window.location.hash) {
    event.preventDefault();
    go(link.getAttribute('href'));
  }
});
setRouter(showCurrent);
document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-out').addEventListener('click', () => {
    session.signOut();
    flash('Signed out', true);
    go('#/');
  });
  showCurrent();
});

// Where the user is: addresses, going somewhere, the way back from an error, pages of a list.

import { session, ApiFailure } from './api.js';
import { el, clearFlash, wantFocus } from './ui.js';

let router = () => {};

/** The function that shows the page of the current address (set once by console.js). */
export function setRouter(show) {
  router = show;
}

/** Shows the page of the current address again. */
export function route() {
  router();
}

/** Navigates (to page 1 of a list); the same place again renders again. */
export function go(hash) {
  if (window.location.hash === hash) {
    leave();
    route();
  } else {
    // The hashchange handler does the same.
    window.location.hash = hash;
  }
}

export function appHref(app, view, params) {
  const query = params && params.toString();
  return `#/app/${encodeURIComponent(app)}/${view}${query ? `?${query}` : ''}`;
}

export function deviceHref(app, deviceId) {
  return `#/app/${encodeURIComponent(app)}/device/${encodeURIComponent(deviceId)}`;
}

/** What every navigation does before the next page: the message of the last page goes, the
 * new page takes the focus. */
export function leave() {
  clearFlash();
  wantFocus();
}

/** The API's error, with a way back: a page's error leads `back` (or lets the user sign in
 * again when the key stopped working); an error inside a panel (`back` null) is dismissed in
 * place, keeping what the user chose or typed. */
export function errorBox(failure, back) {
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

/** Asks in place before an action that cannot be taken back: `question`, then a button
 * (`label`, `attrs`) that runs `confirm`, or Cancel, which gives the focus back to `opener`. */
export function askInPlace(area, question, label, attrs, opener, confirm) {
  area.replaceChildren(el('div', { class: 'panel', role: 'alert' },
    el('p', {}, question),
    el('div', { class: 'row' },
      el('button', { type: 'button', ...attrs, onclick: confirm }, label),
      el('button', { type: 'button', onclick: () => { area.replaceChildren(); opener.focus(); } }, 'Cancel'))));
  area.querySelector('.row button').focus();
}

/** A message of the console's own, shown like the API's errors. */
export function problem(message) {
  return new ApiFailure(0, { error: 'invalid_choice', message, moreInfo: {} });
}

export function appTabs(app, active) {
  const tabs = [['devices', 'Devices'], ['summary', 'Summary'], ['audit', 'Audit log'], ['channels', 'Channels'], ['bundles', 'Bundles']];
  return [
    el('h1', {}, app),
    el('nav', { class: 'tabs', 'aria-label': 'App' }, tabs.map(([view, label]) =>
      el('a', { id: `tab-${view}`, href: appHref(app, view), 'aria-current': view === active ? 'page' : null }, label))),
  ];
}

/** The list the user last looked at in each app, so that "← Devices" returns to it. */
export const lastList = new Map();

/** The page of a list the address names: its cursor and its number (`cursor`, `page`), so that
 * a reload shows the same page and the browser's Back goes to the page before. */
export function pageOf(params) {
  const number = Number.parseInt(params.get('page') || '1', 10);
  return { cursor: params.get('cursor'), number: Number.isFinite(number) && number > 0 ? number : 1 };
}

/** Previous and Next. Next adds an entry to the tab's history (the next page's address);
 * Previous goes back to the entry before when Next made this one, else to the list's first page
 * (an address opened as it was, a reload in a new tab). Both buttons are disabled once clicked. */
export function pageButtons(prefix, href, params, page, label) {
  const { number } = pageOf(params);
  const at = (cursor, n) => {
    const next = new URLSearchParams(params);
    next.delete('cursor');
    next.delete('page');
    if (cursor) {
      next.set('cursor', cursor);
      next.set('page', String(n));
    }
    return href(next);
  };
  const freeze = (event) => {
    for (const button of event.target.parentNode.querySelectorAll('button')) button.disabled = true;
  };
  return el('div', { class: 'row' },
    el('button', { id: `${prefix}-prev`, type: 'button', disabled: number === 1, onclick: (event) => {
      freeze(event);
      if (window.history.state && window.history.state.paged) window.history.back();
      else go(at(null, 1));
    } }, 'Previous'),
    el('span', { id: `${prefix}-info`, class: 'muted', 'aria-live': 'polite' }, `Page ${number}${label ? `, ${label}` : ''}`),
    el('button', { id: `${prefix}-next`, type: 'button', disabled: !page.hasMore, onclick: (event) => {
      freeze(event);
      // A history entry of its own, without a hashchange: the page is drawn here.
      window.history.pushState({ paged: true }, '', at(page.nextCursor, number + 1));
      leave();
      route();
    } }, 'Next'));
}

// Building the page: elements from data (always as text), messages, focus, formatting.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An element: attributes (`class`, `for`, any other; `on<event>` takes a function) and children
 * (strings become text nodes, null and false are skipped). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

export function svg(tag, attrs, ...children) {
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

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const main = () => document.getElementById('main');

export function show(...children) {
  const target = main();
  target.replaceChildren();
  append(target, children);
  focusView();
}

/** A message kept until the user goes elsewhere (cleared by `go` and on hashchange), or, with
 * `across`, until the navigation after the one under way. */
let flashAcross = false;

export function flash(text, across) {
  document.getElementById('flash').textContent = text;
  flashAcross = Boolean(across);
}

export function clearFlash() {
  if (flashAcross) {
    flashAcross = false;
    return;
  }
  document.getElementById('flash').textContent = '';
}

/** After a navigation or an action the page is rebuilt: focus goes to its heading, so that
 * keyboard and screen-reader users start from the top of the new content. */
let focusHeading = false;

/** The next page shown takes the focus to its heading. */
export function wantFocus() {
  focusHeading = true;
}

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

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];

export function ago(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return String(iso);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') return relative.format(Math.round(seconds / size), unit);
  }
  return String(iso);
}

export function when(iso) {
  return iso ? el('time', { datetime: iso, title: iso }, ago(iso)) : el('span', { class: 'muted' }, 'never');
}

export function text(value) {
  if (value === undefined || value === null || value === '') return el('span', { class: 'muted' }, '—');
  if (typeof value === 'object') return el('span', { class: 'mono' }, JSON.stringify(value));
  return String(value);
}

export function overridesText(o) {
  const parts = [];
  if (o && o.channel) parts.push(`channel ${o.channel}`);
  if (o && o.version_override) parts.push(`version ${o.version_override}`);
  return parts.length ? parts.join(', ') : 'none';
}

export function table(id, headings, rows, caption, label) {
  // A focusable region: a table wider than the screen scrolls in its box, by keyboard too.
  return el('div', { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-label': label || caption || id },
    el('table', { id },
      caption && el('caption', { class: 'muted' }, caption),
      el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)));
}

export function select(name, label, options, value, attrs) {
  return el('label', {}, label,
    el('select', { name, id: attrs && attrs.id, ...(attrs || {}) },
      options.map(([optionValue, optionLabel]) =>
        el('option', { value: optionValue, selected: optionValue === (value || '') }, optionLabel))));
}

export function input(name, label, value, attrs) {
  return el('label', {}, label, el('input', { name, value: value || '', ...(attrs || {}) }));
}

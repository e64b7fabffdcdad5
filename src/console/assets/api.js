// The public API as the console calls it, and the signed-in key.

const KEY_ITEM = 'device-registry.key';
const WHO_ITEM = 'device-registry.who';
const MODES = { read: 0, upload: 1, write: 2, all: 3 };

/** The key (this tab's session storage only: never a URL, a cookie or a log) and what it is. */
export const session = {
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

export class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** One call: `query` goes to the query string (empty values left out), `body` is sent as JSON.
 * Answers the parsed body, or throws an ApiFailure carrying the API's error body. */
export async function api(method, path, { query, body, key } = {}) {
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

// The JSON API (GET only), the access token, and the paths of our own pages.
//
// The token: a page opened as `/?token=…` keeps it for the tab (sessionStorage), sends it
// as `X-Rewind-Token` on every API call and puts it back on every link it builds. The
// server also sets a cookie; the header is the fallback when cookies are off.

import { el } from './dom.js';

const TOKEN_KEY = 'rewind.token';
const TOKEN_HEADER = 'X-Rewind-Token';
let memoryToken = null; // when sessionStorage is unavailable

/** Keep `?token=` from the page's URL, if there is one. */
export function keepToken(search) {
  const found = new URLSearchParams(search).get('token');
  if (!found) return;
  memoryToken = found;
  try {
    sessionStorage.setItem(TOKEN_KEY, found);
  } catch {
    /* private mode: the in-memory copy serves this page */
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || memoryToken;
  } catch {
    return memoryToken;
  }
}

/** A page's `path?query#hash`, with the token appended when one is set; empty values left out. */
export function withQuery(path, query = {}, hash = '') {
  const search = queryString({ ...query, token: token() });
  return path + search + (hash ? `#${hash}` : '');
}

function queryString(query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const search = params.toString();
  return search ? `?${search}` : '';
}

const part = (value) => encodeURIComponent(String(value));

/** Our pages: the only hrefs the viewer makes. */
export const paths = {
  sessions: () => '/',
  session: (id) => `/s/${part(id)}`,
  step: (id, n) => `/s/${part(id)}/step/${part(n)}`,
  lineage: (id) => `/s/${part(id)}/lineage`,
  compare: (a, b) => `/compare/${part(a)}/${part(b)}`,
};

/** An `<a>` to one of our pages (`path` from `paths`), keeping the token. */
export function link(path, query, ...children) {
  return el('a', { href: withQuery(path, query || {}) }, ...children);
}

export class ApiError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint || null;
  }
}

/** GET an API document: `{text, doc}` (the text lets a poller skip unchanged documents). */
export async function fetchDoc(path, query = {}) {
  const headers = { Accept: 'application/json' };
  if (token()) headers[TOKEN_HEADER] = token();
  let response;
  try {
    response = await fetch(path + queryString(query), { headers, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'cannot reach the rewind ui server', 'is `rewind ui` still running?');
  }
  const text = await response.text();
  if (!response.ok) throw failure(response.status, text);
  try {
    return { text, doc: JSON.parse(text) };
  } catch {
    throw new ApiError(response.status, `the server sent something that is not JSON for ${path}`);
  }
}

function failure(status, text) {
  try {
    const body = JSON.parse(text);
    return new ApiError(status, body.error || `HTTP ${status}`, body.hint);
  } catch {
    return new ApiError(status, `HTTP ${status}`);
  }
}

/** The API's routes (ids are references: a full id, a unique prefix or a name). */
export const api = {
  sessions: (query) => fetchDoc('/api/sessions', query),
  tree: () => fetchDoc('/api/tree'),
  session: (id, query) => fetchDoc(`/api/sessions/${part(id)}`, query),
  step: (id, n) => fetchDoc(`/api/sessions/${part(id)}/steps/${part(n)}`),
  conversation: (id) => fetchDoc(`/api/sessions/${part(id)}/conversation`),
  diff: (a, b) => fetchDoc('/api/diff', { a, b }),
  bisect: (good, bad) => fetchDoc('/api/bisect', { good, bad }),
};

// In-page navigation: every view has a URL a user can paste (the server answers every path
// outside /api and /static with index.html). Links are real <a href> elements; a plain
// left click on one of ours is turned into history.pushState, anything else (middle click,
// ctrl/cmd click, a new tab) is left to the browser.
//
//     /                         sessions          ?text=&failed=1&since=&page=
//     /s/<id>                   a session         ?page=
//     /s/<id>/step/<n>          a session, step n open in the step panel
//     /s/<id>/lineage           the fork tree around a session
//     /compare/<a>/<b>          two sessions compared          ?page=

import { withQuery } from './api.js';

let onRoute = () => {};

/** The route of a location: `{name, id?, step?, a?, b?, query}`. */
export function parseRoute(loc = window.location) {
  const query = Object.fromEntries(new URLSearchParams(loc.search));
  delete query.token;
  const parts = loc.pathname.split('/').filter(Boolean).map(decode);
  if (parts.includes(null)) return { name: 'notfound', query };
  const [first, id, sub, n, ...rest] = parts;
  if (parts.length === 0) return { name: 'sessions', query };
  if (first === 's' && id !== undefined && sub === undefined) return { name: 'session', id, step: null, query };
  if (first === 's' && sub === 'step' && n !== undefined && !rest.length) return { name: 'session', id, step: n, query };
  if (first === 's' && sub === 'lineage' && n === undefined) return { name: 'lineage', id, query };
  if (first === 'compare' && parts.length === 3) return { name: 'compare', a: id, b: sub, query };
  return { name: 'notfound', query };
}

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

/** Go to one of our pages (`href` as built by `withQuery`/`link`) without reloading. */
export function navigate(href, { replace = false } = {}) {
  const here = location.pathname + location.search + location.hash;
  if (href !== here) history[replace ? 'replaceState' : 'pushState'](null, '', href);
  onRoute(parseRoute());
}

/** Change the current page's query (filters, page) in place, keeping the token. */
export function setQuery(changes) {
  const query = { ...parseRoute().query, ...changes };
  history.replaceState(null, '', withQuery(location.pathname, query));
  return parseRoute();
}

/** Start routing: `render(route)` now and on every navigation. */
export function startRouter(render) {
  onRoute = render;
  window.addEventListener('popstate', () => onRoute(parseRoute()));
  document.addEventListener('click', interceptLink);
  onRoute(parseRoute());
}

function interceptLink(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const anchor = event.target instanceof Element ? event.target.closest('a[href]') : null;
  if (!anchor || anchor.target || anchor.hasAttribute('download')) return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || /^\/(api|static)\//.test(url.pathname)) return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
}

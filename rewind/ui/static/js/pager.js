// Pages of 100 rows, and the links between them.

import { el } from './dom.js';

export const PAGE_SIZE = 100;

export function pageCount(rows) {
  return Math.max(1, Math.ceil(rows / PAGE_SIZE));
}

/** The 1-based page holding the row at `index` (0-based). */
export function pageOf(index) {
  return Math.floor(Math.max(0, index) / PAGE_SIZE) + 1;
}

/** A page number from a query value, within 1..pages. */
export function clampPage(value, pages) {
  const n = Number.parseInt(value, 10);
  return Number.isFinite(n) ? Math.min(Math.max(n, 1), pages) : 1;
}

/** The rows of page `page`. */
export function pageRows(rows, page) {
  return rows.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
}

/** "rows 101–200 of 10,000". */
export function rangeText(total, page, noun) {
  if (total === 0) return `no ${noun}`;
  const first = (page - 1) * PAGE_SIZE + 1;
  const last = Math.min(page * PAGE_SIZE, total);
  return `${noun} ${first.toLocaleString('en-US')}–${last.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`;
}

/**
 * Links to the pages around `page` (first, previous, a window, next, last); `hrefFor(p)` is
 * the page's URL. Empty when everything fits on one page.
 */
export function pager(page, pages, hrefFor) {
  const nav = el('nav', { class: 'pager', testid: 'pager', 'aria-label': 'pages' });
  if (pages <= 1) return nav;
  const step = (p, rel, label) =>
    p >= 1 && p <= pages
      ? el('a', { href: hrefFor(p), rel, data: { rel } }, label)
      : el('span', { class: 'off' }, label);
  const number = (p) =>
    p === page
      ? el('span', { class: 'current', 'aria-current': 'page', data: { page: p } }, String(p))
      : el('a', { href: hrefFor(p), data: { page: p } }, String(p));
  nav.append(step(page - 1, 'prev', '‹ prev'));
  let last = 0;
  for (const p of shownPages(page, pages)) {
    if (p > last + 1) nav.append(el('span', { class: 'gap' }, '…'));
    nav.append(number(p));
    last = p;
  }
  nav.append(step(page + 1, 'next', 'next ›'));
  return nav;
}

function shownPages(page, pages) {
  const shown = new Set([1, pages]);
  for (let p = page - 2; p <= page + 2; p += 1) if (p >= 1 && p <= pages) shown.add(p);
  return [...shown].sort((a, b) => a - b);
}

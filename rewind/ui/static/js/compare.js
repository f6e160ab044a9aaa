// Two sessions compared (/compare/<a>/<b>): `rewind diff A B` aligned side by side, 100
// pairs to a page, the first divergence from `rewind bisect A B` highlighted and its likely
// cause shown, and what changed in each changed pair (values, or text diffs line by line).

import { el, errorBox, fill, note } from './dom.js';
import { api, link, paths, withQuery } from './api.js';
import { clampPage, pageCount, pageOf, pageRows, pager, rangeText } from './pager.js';
import * as fmt from './format.js';

const STATUS_TEXT = { same: 'same', changed: 'changed', only_a: 'only in A', only_b: 'only in B' };

export class CompareView {
  constructor(root, route) {
    this.root = root;
    this.a = route.a;
    this.b = route.b;
    this.diff = null;
    this.bisect = null;
    this.head = el('div');
    this.cause = el('section', { class: 'cause', testid: 'bisect-cause' });
    this.pagerTop = el('div');
    this.rows = el('div', { class: 'table-scroll' });
    this.pagerBottom = el('div');
    this.title = el('h2', {}, 'Steps');
    root.append(this.head, this.cause, el('div', { class: 'section-head' }, this.title, this.pagerTop), this.rows, this.pagerBottom);
  }

  matches(route) {
    return route.name === 'compare' && route.a === this.a && route.b === this.b;
  }

  async update(route) {
    this.route = route;
    document.title = 'Compare · rewind';
    if (this.diff === null && !(await this.load())) return;
    this.renderPage();
  }

  destroy() {}

  async load() {
    fill(this.head, note('Comparing…'));
    const [diff, bisect] = await Promise.allSettled([api.diff(this.a, this.b), api.bisect(this.a, this.b)]);
    if (diff.status === 'rejected') {
      fill(this.head, el('h1', {}, 'Compare'), errorBox(diff.reason));
      return false;
    }
    this.diff = diff.value.doc;
    this.bisect = bisect.status === 'fulfilled' ? bisect.value.doc : null;
    this.first = this.bisect ? firstPairIndex(this.diff.steps, this.bisect.first_divergence) : -1;
    document.title = `${this.diff.a.name || this.diff.a.id} ↔ ${this.diff.b.name || this.diff.b.id} · rewind`;
    fill(this.head, compareHeader(this.diff));
    fill(this.cause, bisect.status === 'fulfilled' ? causeView(this.bisect, this.jumpHref()) : errorBox(bisect.reason));
    return true;
  }

  jumpHref() {
    if (this.first < 0) return null;
    return withQuery(paths.compare(this.a, this.b), { page: pageOf(this.first) }, `pair-${this.first}`);
  }

  renderPage() {
    const pairs = this.diff.steps;
    const pages = pageCount(pairs.length);
    const fallback = this.first >= 0 ? pageOf(this.first) : 1;
    const page = this.route.query.page ? clampPage(this.route.query.page, pages) : fallback;
    const hrefFor = (p) => withQuery(paths.compare(this.a, this.b), { page: p });
    fill(this.title, rangeText(pairs.length, page, 'aligned steps'));
    fill(this.pagerTop, pager(page, pages, hrefFor));
    fill(this.pagerBottom, pager(page, pages, hrefFor));
    const offset = (page - 1) * 100;
    const body = pageRows(pairs, page).map((pair, i) => pairRows(pair, offset + i, offset + i === this.first, this.diff));
    fill(this.rows, el('table', { class: 'compare' }, tableHead(), body));
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView({ block: 'center' });
  }
}

/** The index of bisect's first divergence among diff's pairs (-1 when there is none). */
function firstPairIndex(pairs, first) {
  if (!first) return -1;
  const a = first.good ? first.good.step : null;
  const b = first.bad ? first.bad.step : null;
  return pairs.findIndex((p) => p.a === a && p.b === b);
}

function compareHeader(diff) {
  const side = (label, s) =>
    el('div', { class: 'side' }, el('span', { class: 'side-label' }, label), link(paths.session(s.id), {}, s.name || s.id), ' ', el('code', {}, s.id), ` · ${fmt.int(s.steps)} steps`);
  const counts = diff.counts || {};
  return [
    el('h1', {}, 'Compare', diff.identical ? el('span', { class: 'badge status-complete' }, 'identical') : null),
    el('div', { class: 'sides' }, side('A (good)', diff.a), side('B (bad)', diff.b)),
    el(
      'p',
      { class: 'counts' },
      Object.keys(STATUS_TEXT).map((k) => el('span', { class: `count status-${k}` }, `${STATUS_TEXT[k]}: ${fmt.int(counts[k] ?? 0)}`)),
      el('span', { class: 'count' }, `same answers: ${fmt.int(diff.matched)} of ${fmt.int(diff.total)}`),
    ),
    el('nav', { class: 'actions' }, link(paths.compare(diff.b.id, diff.a.id), {}, 'swap A and B')),
  ];
}

function causeView(bisect, jump) {
  if (bisect.identical || !bisect.first_divergence) {
    return [el('h2', {}, 'Bisect'), el('p', {}, 'No divergence: every step got the same answer.')];
  }
  const first = bisect.first_divergence;
  const cause = bisect.cause;
  const later = bisect.later || [];
  const propagated = later.filter((d) => d.propagated).length;
  return [
    el('h2', {}, 'Bisect: the first divergence and its likely cause'),
    cause ? el('p', { class: 'cause-line' }, el('span', { class: 'badge cause-kind' }, cause.kind), ' ', cause.detail) : null,
    cause && cause.evidence && cause.evidence.length ? el('ul', { class: 'evidence' }, cause.evidence.map((e) => el('li', {}, el('code', {}, e)))) : null,
    el(
      'p',
      {},
      `First divergence: A step ${first.good ? first.good.step : '—'} ↔ B step ${first.bad ? first.bad.step : '—'} (${first.kind ?? '?'})`,
      jump ? [' · ', el('a', { href: jump }, 'show it')] : null,
    ),
    later.length ? el('p', { class: 'note' }, `${fmt.int(later.length)} later divergence(s): ${fmt.int(propagated)} propagated from an earlier change, ${fmt.int(later.length - propagated)} independent.`) : null,
  ];
}

function tableHead() {
  const cols = ['', 'A step', 'B step', 'kind', 'endpoint', 'request', 'response'];
  return el('thead', {}, el('tr', {}, cols.map((c) => el('th', { scope: 'col' }, c))));
}

/** One aligned pair: a <tbody> holding its row and, when it changed, what changed. */
function pairRows(pair, index, isFirst, diff) {
  const status = STATUS_TEXT[pair.status] ? pair.status : 'changed';
  const stepLink = (id, n) => (n === null || n === undefined ? '—' : link(paths.step(id, n), {}, String(n)));
  const same = (flag) => (flag === undefined ? '' : flag ? 'same' : 'differs');
  const main = el(
    'tr',
    {},
    el('td', {}, el('span', { class: `status status-${status}` }, STATUS_TEXT[status]), isFirst ? el('span', { class: 'badge first', testid: 'first-divergence' }, 'first divergence') : null),
    el('td', { class: 'num' }, stepLink(diff.a.id, pair.a)),
    el('td', { class: 'num' }, stepLink(diff.b.id, pair.b)),
    el('td', {}, pair.kind ?? ''),
    el('td', { class: 'url' }, pair.endpoint ?? ''),
    el('td', {}, same(pair.request_same)),
    el('td', {}, same(pair.response_same)),
  );
  const details = pair.status === 'changed' ? el('tr', { class: 'changes-row' }, el('td', { colspan: 7 }, changesView(pair.changes))) : null;
  return el(
    'tbody',
    {
      testid: 'compare-row',
      id: `pair-${index}`,
      class: `pair status-${status}${isFirst ? ' first' : ''}`,
      data: { status: pair.status, a: pair.a ?? '', b: pair.b ?? '', firstDivergence: isFirst ? 'true' : null },
    },
    main,
    details,
  );
}

function changesView(changes) {
  if (changes === null || changes === undefined) return note('Not worked out: more steps changed than the diff details.');
  if (!changes.length) return note('No field-level difference found.');
  return el('div', { class: 'changes', testid: 'changes' }, changes.map(changeView));
}

function changeView(change) {
  const head = el('div', { class: 'change-head' }, el('span', { class: 'side-label' }, change.side), ' ', el('code', {}, change.field));
  if (change.diff) return el('div', { class: 'change', testid: 'change' }, head, diffLines(change.diff));
  const values = el(
    'table',
    { class: 'pairs values' },
    el('tbody', {}, el('tr', {}, el('th', {}, 'A'), el('td', {}, el('pre', {}, fmt.json(change.a)))), el('tr', {}, el('th', {}, 'B'), el('td', {}, el('pre', {}, fmt.json(change.b))))),
  );
  return el('div', { class: 'change', testid: 'change' }, head, values);
}

/** Unified diff lines, each coloured by its first character. */
function diffLines(lines) {
  const kind = (line) => (line.startsWith('@@') ? 'hunk' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : 'ctx');
  return el('pre', { class: 'diff', testid: 'text-diff' }, lines.map((line) => el('span', { class: `line ${kind(line)}` }, `${line}\n`)));
}

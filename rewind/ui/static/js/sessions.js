// The sessions page (/): every session, newest first, filtered by text, failure and date,
// 100 to a page; polled every second so a new recording appears without a reload. Two
// sessions picked with their checkboxes open /compare/<a>/<b>.

import { el, errorBox, every, fill, note } from './dom.js';
import { api, link, paths, withQuery } from './api.js';
import { setQuery } from './router.js';
import { statusBadge, tagList } from './badges.js';
import { clampPage, pageCount, pageRows, pager, rangeText } from './pager.js';
import * as fmt from './format.js';

const POLL_MS = 1000;
const TYPING_MS = 250;
const COLUMNS = ['', 'name', 'started', 'command', 'mode', 'parent', 'steps', 'tokens', 'cost', 'duration', 'exit', 'failures'];

export class SessionsView {
  constructor(root) {
    this.root = root;
    this.picked = []; // ids, in the order picked: [a, b]
    this.sessions = [];
    this.lastText = null;
    this.seq = 0;
    this.filters = new Filters((changes) => this.filter(changes));
    this.errors = el('div', { class: 'errors' });
    this.compareBar = el('div', { class: 'compare-bar' });
    this.summary = el('p', { class: 'note' });
    this.list = el('div', { class: 'table-scroll' });
    this.pagerBox = el('div');
    root.append(el('h1', {}, 'Sessions'), this.filters.box, this.compareBar, this.errors, this.summary, this.list, this.pagerBox);
    this.renderCompareBar();
    this.stopPolling = every(POLL_MS, () => this.load());
  }

  matches(route) {
    return route.name === 'sessions';
  }

  update(route) {
    this.route = route;
    this.filters.show(route.query);
    document.title = 'Sessions · rewind';
    this.lastText = null;
    return this.load();
  }

  destroy() {
    this.stopPolling();
    this.filters.stop();
  }

  filter(changes) {
    this.update(setQuery({ ...changes, page: null }));
  }

  async load() {
    const seq = ++this.seq;
    const q = this.route.query;
    try {
      const { text, doc } = await api.sessions({ text: q.text, failed: q.failed === '1' ? '1' : null, since: q.since });
      if (seq !== this.seq) return;
      this.errors.replaceChildren();
      if (text === this.lastText) return;
      this.lastText = text;
      this.sessions = doc;
      this.render();
    } catch (err) {
      if (seq === this.seq) fill(this.errors, errorBox(err));
    }
  }

  render() {
    const pages = pageCount(this.sessions.length);
    const page = clampPage(this.route.query.page, pages);
    const rows = pageRows(this.sessions, page);
    fill(this.summary, rangeText(this.sessions.length, page, 'sessions'));
    const hrefFor = (p) => withQuery(paths.sessions(), { ...this.route.query, page: p > 1 ? p : null });
    fill(this.pagerBox, pager(page, pages, hrefFor));
    if (!rows.length) {
      fill(this.list, note(this.anyFilter() ? 'No session matches these filters.' : 'No sessions recorded yet: run `rewind record -- <your agent>`.'));
      return;
    }
    const head = el('thead', {}, el('tr', {}, COLUMNS.map((c) => el('th', { scope: 'col' }, c))));
    const body = el('tbody', {}, rows.map((s) => this.row(s)));
    fill(this.list, el('table', { class: 'sessions', testid: 'sessions-table' }, head, body));
    this.renderCompareBar();
  }

  anyFilter() {
    const q = this.route.query;
    return Boolean(q.text || q.failed || q.since);
  }

  row(s) {
    return el(
      'tr',
      { testid: 'session-row', data: { sessionId: s.id, status: s.status ?? '' }, class: s.failed ? 'failed' : null },
      el('td', {}, this.pickBox(s)),
      el('td', { class: 'name' }, link(paths.session(s.id), {}, s.name || fmt.shortId(s.id)), ' ', liveBadge(s), el('div', { class: 'sub' }, el('code', {}, s.id))),
      el('td', { class: 'nowrap', title: s.started_at ?? '' }, fmt.when(s.started_at)),
      el('td', { class: 'command', title: fmt.command(s.command) }, fmt.command(s.command)),
      el('td', {}, s.mode ?? ''),
      el('td', {}, s.parent ? link(paths.session(s.parent), {}, fmt.shortId(s.parent), s.fork_step ? ` @${s.fork_step}` : '') : ''),
      el('td', { class: 'num' }, fmt.int(s.steps), s.lost ? el('span', { class: 'bad' }, ` (${s.lost} lost)`) : null),
      el('td', { class: 'num' }, fmt.tokens(s.input_tokens, s.output_tokens)),
      el('td', { class: 'num' }, fmt.usd(s.cost_usd)),
      el('td', { class: 'num' }, s.status === 'recording' ? '…' : fmt.duration(s.started_at, s.ended_at)),
      el('td', { class: `num ${s.exit_code ? 'bad' : ''}` }, s.exit_code == null ? '' : String(s.exit_code)),
      el('td', {}, tagList(s.tags), s.fault ? el('span', { class: 'tag fault' }, `fault: ${s.fault}`) : null),
    );
  }

  pickBox(s) {
    return el('input', {
      type: 'checkbox',
      testid: 'compare-pick',
      'aria-label': `pick ${s.name || s.id} to compare`,
      data: { sessionId: s.id },
      checked: this.picked.includes(s.id),
      on: { change: (event) => this.pick(s.id, event.target.checked) },
    });
  }

  pick(id, on) {
    this.picked = this.picked.filter((p) => p !== id);
    if (on) this.picked = [...this.picked, id].slice(-2);
    this.showPicks();
  }

  showPicks() {
    for (const box of this.list.querySelectorAll('input[data-testid="compare-pick"]')) {
      box.checked = this.picked.includes(box.dataset.sessionId);
    }
    this.renderCompareBar();
  }

  renderCompareBar() {
    const name = (id) => {
      const s = this.sessions.find((x) => x.id === id);
      return s ? s.name || fmt.shortId(id) : fmt.shortId(id);
    };
    const [a, b] = this.picked;
    if (!b) {
      fill(this.compareBar, note(a ? `Picked ${name(a)} (A); pick one more to compare.` : 'Pick two sessions to compare them.'));
      return;
    }
    const go = link(paths.compare(a, b), {}, `Compare A: ${name(a)} with B: ${name(b)}`);
    go.dataset.testid = 'compare-link';
    go.classList.add('button');
    fill(this.compareBar, go, ' ', el('button', { type: 'button', on: { click: () => this.clearPicks() } }, 'clear'));
  }

  clearPicks() {
    this.picked = [];
    this.showPicks();
  }
}

/** "● recording" for a live session, "interrupted" for one that did not end cleanly. */
function liveBadge(s) {
  return s.status === 'complete' ? null : statusBadge(s.status);
}

/** The filter inputs: text (name, command, id), failed only, since (a date or an age). */
class Filters {
  constructor(onChange) {
    this.onChange = onChange;
    this.timer = null;
    this.text = el('input', { type: 'search', testid: 'filter-text', placeholder: 'name, command or id', 'aria-label': 'filter by text' });
    this.failed = el('input', { type: 'checkbox', testid: 'filter-failed' });
    this.since = el('input', { type: 'text', testid: 'filter-since', placeholder: '7d, 12h, 2026-11-30', 'aria-label': 'since', size: 16 });
    this.text.addEventListener('input', () => this.typed());
    this.failed.addEventListener('change', () => this.changed());
    this.since.addEventListener('change', () => this.changed());
    this.box = el(
      'div',
      { class: 'filters', role: 'search' },
      el('label', {}, 'Filter ', this.text),
      el('label', {}, this.failed, ' failed only'),
      el('label', {}, 'since ', this.since),
    );
  }

  typed() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.changed(), TYPING_MS);
  }

  /** Report all three filters at once (a pending text edit is never lost to another filter). */
  changed() {
    clearTimeout(this.timer);
    this.onChange({
      text: this.text.value.trim() || null,
      failed: this.failed.checked ? '1' : null,
      since: this.since.value.trim() || null,
    });
  }

  /** Show the URL's filters (the input being typed in keeps its text). */
  show(query) {
    if (document.activeElement !== this.text) this.text.value = query.text || '';
    if (document.activeElement !== this.since) this.since.value = query.since || '';
    this.failed.checked = query.failed === '1';
  }

  stop() {
    clearTimeout(this.timer);
  }
}

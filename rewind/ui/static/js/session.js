// A session page (/s/<id>, /s/<id>/step/<n>): header, tokens and cost chart, the waterfall
// and table of one page of steps, the conversation, the command's output, and the step
// panel. While the session is recording, its document is polled every second and new
// steps appear without a reload.

import { el, errorBox, every, fill, note, pre } from './dom.js';
import { api, link, paths, withQuery } from './api.js';
import { navigate } from './router.js';
import { TokensChart, Waterfall, KINDS, cssColor } from './charts.js';
import { conversationView } from './conversation.js';
import { StepPanel } from './step_panel.js';
import { statusBadge, tagList } from './badges.js';
import { stepsTable } from './steps.js';
import { clampPage, pageCount, pageOf, pageRows, pager, rangeText } from './pager.js';
import * as fmt from './format.js';

const RECHECKED = 3; // the last steps fetched again while live (their usage may come later)
const POLL_MS = 1000;

export class SessionView {
  constructor(root, route) {
    this.root = root;
    this.ref = route.id;
    this.doc = null;
    this.docText = null;
    this.page = 1;
    this.route = route;
    this.convStep = undefined;
    this.stopPolling = null;
    this.shownStep = null;
    this.onKey = (event) => this.key(event);
    document.addEventListener('keydown', this.onKey);
    this.build();
  }

  /** The same view serves another URL of the same session (another step or page). */
  matches(route) {
    return route.name === 'session' && (route.id === this.ref || (this.doc !== null && route.id === this.doc.id));
  }

  async update(route) {
    this.route = route;
    if (this.doc === null && !(await this.load())) return;
    this.showRoute();
  }

  destroy() {
    if (this.stopPolling) this.stopPolling();
    document.removeEventListener('keydown', this.onKey);
    this.waterfall.destroy();
    this.tokens.destroy();
    this.panel.close();
  }

  // --- layout --------------------------------------------------------------------------

  build() {
    this.errors = el('div', { class: 'errors' });
    this.header = el('header', { class: 'session-header', testid: 'session-header' });
    this.gaps = el('div');
    this.tokensBox = el('div', { class: 'chart-box tokens-box', testid: 'tokens-chart' });
    this.waterfallBox = el('div', { class: 'chart-box waterfall-box', testid: 'waterfall' });
    this.stepsTitle = el('h2', {}, 'Steps');
    this.pagerTop = el('div');
    this.tableBox = el('div', { class: 'table-scroll' });
    this.pagerBottom = el('div');
    this.conversation = el('div');
    this.output = el('div');
    this.content = el('div', { class: 'session', hidden: true });
    fill(
      this.content,
      this.header,
      this.gaps,
      el('section', {}, el('h2', {}, 'Tokens and cost per step'), this.tokensBox),
      el('section', {}, el('div', { class: 'section-head' }, this.stepsTitle, this.pagerTop), legend(), this.waterfallBox, this.tableBox, this.pagerBottom),
      el('section', {}, el('h2', {}, 'Conversation'), this.conversation),
      this.output,
    );
    this.root.append(this.errors, el('p', { class: 'note loading' }, 'Loading session…'), this.content);
    const pick = (n) => navigate(withQuery(paths.step(this.doc.id, n)));
    this.waterfall = new Waterfall(this.waterfallBox, pick);
    this.tokens = new TokensChart(this.tokensBox, pick);
    this.panel = new StepPanel(this.root);
  }

  // --- the document ----------------------------------------------------------------------

  async load() {
    try {
      const { text, doc } = await api.session(this.ref);
      this.root.querySelector('.loading')?.remove();
      this.accept(text, doc);
      return true;
    } catch (err) {
      this.root.querySelector('.loading')?.remove();
      fill(this.errors, errorBox(err));
      return false;
    }
  }

  async refresh() {
    try {
      const { text, doc } = await this.fetchNewer();
      this.errors.replaceChildren();
      if (this.accept(text, doc)) this.showRoute();
    } catch (err) {
      fill(this.errors, errorBox(err));
    }
  }

  /** The session's document again. While it records, only the steps after all but the
   * last few shown are fetched (those may still get their usage), merged by step number. */
  async fetchNewer() {
    const steps = this.doc.steps || [];
    if (this.doc.status !== 'recording' || steps.length < RECHECKED) return api.session(this.doc.id);
    const after = steps[steps.length - RECHECKED].step - 1;
    const { doc } = await api.session(this.doc.id, { after });
    const merged = { ...doc, steps: steps.filter((s) => s.step <= after).concat(doc.steps) };
    return { text: JSON.stringify(merged), doc: merged };
  }

  /** Take a (new) document; false when it is the one shown. */
  accept(text, doc) {
    if (text === this.docText) return false;
    this.docText = text;
    this.doc = doc;
    document.title = `${doc.name || doc.id} · rewind`;
    this.content.hidden = false;
    this.render();
    this.poll(doc.status === 'recording');
    return true;
  }

  poll(live) {
    if (live && !this.stopPolling) this.stopPolling = every(POLL_MS, () => this.refresh());
    if (!live && this.stopPolling) {
      this.stopPolling();
      this.stopPolling = null;
    }
  }

  render() {
    const doc = this.doc;
    fill(this.header, sessionHeader(doc));
    fill(this.gaps, gapsNote(doc));
    this.tokens.show(doc.steps);
    fill(this.output, outputSection(doc));
    this.loadConversation();
  }

  // --- the URL: page and step ------------------------------------------------------------

  showRoute() {
    const steps = this.doc.steps;
    const n = this.route.step === null ? null : Number(this.route.step);
    const at = n === null ? -1 : steps.findIndex((s) => s.step === n);
    this.page = at >= 0 ? pageOf(at) : clampPage(this.route.query.page, pageCount(steps.length));
    this.renderPage();
    if (this.route.step === null) this.panel.close();
    else this.panel.open(this.doc, this.route.step, this.pageHref(this.page));
    this.markSelected(n, n !== this.shownStep);
    this.shownStep = n;
  }

  pageHref(page) {
    return withQuery(paths.session(this.doc.id), { page: page > 1 ? page : null });
  }

  renderPage() {
    const { steps, id } = this.doc;
    const pages = pageCount(steps.length);
    const rows = pageRows(steps, this.page);
    const t0 = fmt.epoch(this.doc.started_at);
    fill(this.stepsTitle, rangeText(steps.length, this.page, 'steps'));
    fill(this.pagerTop, pager(this.page, pages, (p) => this.pageHref(p)));
    fill(this.pagerBottom, pager(this.page, pages, (p) => this.pageHref(p)));
    this.waterfallBox.hidden = rows.length === 0;
    if (rows.length) this.waterfall.show(rows, t0);
    fill(this.tableBox, rows.length ? stepsTable(rows, id, t0) : note(this.doc.status === 'recording' ? 'No steps yet; waiting for the agent…' : 'No steps were recorded.'));
  }

  markSelected(n, scroll) {
    for (const row of this.tableBox.querySelectorAll('tr.selected')) row.classList.remove('selected');
    if (n === null) return;
    const row = this.tableBox.querySelector(`tr[data-step="${CSS.escape(String(n))}"]`);
    if (!row) return;
    row.classList.add('selected');
    if (scroll) row.scrollIntoView({ block: 'nearest' });
  }

  key(event) {
    if (event.key === 'Escape' && this.panel.isOpen && this.doc) navigate(this.pageHref(this.page));
  }

  // --- the conversation ------------------------------------------------------------------

  /** Fetch the conversation when the last LLM call changed (or first time). */
  async loadConversation() {
    const llm = this.doc.steps.filter((s) => s.kind === 'llm');
    const last = llm.length ? llm[llm.length - 1].step : null;
    if (last === this.convStep) return;
    this.convStep = last;
    if (last === null) {
      fill(this.conversation, note('No LLM call in this session.'));
      return;
    }
    try {
      const { doc } = await api.conversation(this.doc.id);
      if (this.convStep === last) fill(this.conversation, conversationView(doc, this.doc.id));
    } catch (err) {
      if (this.convStep === last) fill(this.conversation, errorBox(err));
    }
  }
}

// --- pieces ----------------------------------------------------------------------------

function sessionHeader(doc) {
  const facts = [
    ['id', el('code', {}, doc.id)],
    ['status', statusBadge(doc.status)],
    ['mode', doc.mode],
    ['started', fmt.when(doc.started_at)],
    ['duration', doc.status === 'recording' ? 'recording…' : fmt.duration(doc.started_at, doc.ended_at)],
    ['exit code', doc.exit_code == null ? '' : el('span', { class: doc.exit_code === 0 ? '' : 'bad' }, String(doc.exit_code))],
    ['steps', `${fmt.int(doc.steps.length)}${doc.lost ? ` (${fmt.int(doc.lost)} lost)` : ''}`],
    ['tokens', fmt.tokens(doc.input_tokens, doc.output_tokens)],
    ['cost', costText(doc)],
    ['parent', doc.parent ? parentLink(doc) : null],
    ['fault', doc.fault ? el('span', { class: 'tag' }, doc.fault) : null],
    ['failures', tagList(doc.tags)],
    ['command', el('code', { class: 'command' }, fmt.command(doc.command))],
    ['cwd', doc.cwd ? el('code', {}, doc.cwd) : null],
    ['git commit', doc.git_commit ? el('code', {}, doc.git_commit) : null],
  ];
  return [
    el('h1', {}, doc.name || doc.id, doc.failed ? el('span', { class: 'badge failed' }, 'failed') : null),
    el('dl', { class: 'facts' }, facts.filter(([, v]) => v !== null && v !== '' && !(Array.isArray(v) && !v.length)).map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
    el(
      'nav',
      { class: 'actions' },
      link(paths.lineage(doc.id), {}, 'lineage'),
      doc.parent ? link(paths.compare(doc.parent, doc.id), {}, 'compare with parent') : null,
      link(paths.sessions(), {}, 'all sessions'),
    ),
  ];
}

function costText(doc) {
  const cost = fmt.usd(doc.cost_usd);
  return doc.unpriced_calls ? `${cost} (${fmt.int(doc.unpriced_calls)} unpriced calls)` : cost;
}

function parentLink(doc) {
  const label = `${fmt.shortId(doc.parent)}${doc.fork_step ? `, forked at step ${doc.fork_step}` : ''}`;
  const to = doc.fork_step ? paths.step(doc.parent, doc.fork_step) : paths.session(doc.parent);
  return el('span', {}, link(to, {}, label));
}

function gapsNote(doc) {
  const gaps = doc.gaps || [];
  if (!gaps.length) return null;
  return el(
    'div',
    { class: 'warning', testid: 'gaps' },
    el('strong', {}, `${fmt.int(gaps.length)} exchange(s) could not be stored:`),
    el('ul', {}, gaps.map((g) => el('li', {}, `step ${g.step}: ${g.reason}`))),
  );
}

function outputSection(doc) {
  const blocks = [['stdout', doc.stdout], ['stderr', doc.stderr]].filter(([, text]) => text);
  if (!blocks.length) return null;
  return el(
    'section',
    {},
    el('h2', {}, 'Output of the command'),
    blocks.map(([name, text]) => el('details', {}, el('summary', {}, `${name} (${fmt.int(text.length)} characters)`), pre(text, { class: 'body', testid: name }))),
  );
}

function legend() {
  const item = (label, variable) => {
    const swatch = el('span', { class: 'swatch' });
    swatch.style.backgroundColor = cssColor(variable, '#888');
    return el('span', { class: 'legend-item' }, swatch, label);
  };
  const tick = el('span', { class: 'legend-item' }, el('span', { class: 'tick' }), 'time to first token');
  return el('div', { class: 'legend' }, KINDS.map((k) => item(k, `--kind-${k}`)), item('failed (status ≥ 400 or error)', '--failed'), tick);
}

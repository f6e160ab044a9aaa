// The step panel: one step in full (`rewind inspect SESSION --step N --json`): what the agent
// received (a stream's assembled text, tool calls, finish reason, usage), both sides' headers
// and bodies, fingerprint, failure tag, chunk count and timing.

import { el, errorBox, fill, note, pairsTable, pre } from './dom.js';
import { api, link, paths } from './api.js';
import { toolCall } from './conversation.js';
import * as fmt from './format.js';

export class StepPanel {
  /** `host`: the element the panel is shown in. */
  constructor(host) {
    this.host = host;
    this.aside = el('aside', { class: 'step-panel', testid: 'step-panel', 'aria-label': 'step' });
    this.key = null;
    this.seq = 0;
  }

  get isOpen() {
    return this.aside.isConnected;
  }

  /** Show step `n` of session `session` (its inspect document); `back` is the close link's page. */
  async open(session, n, back) {
    const key = `${session.id}/${n}`;
    if (key === this.key && this.isOpen) return;
    this.key = key;
    const seq = ++this.seq;
    this.aside.dataset.step = String(n);
    fill(this.aside, this.bar(session, n, back), note('Loading step…'));
    if (!this.isOpen) this.host.append(this.aside);
    try {
      const { doc } = await api.step(session.id, n);
      if (seq === this.seq) fill(this.aside, this.bar(session, n, back), stepDetails(doc, session));
    } catch (err) {
      if (seq === this.seq) fill(this.aside, this.bar(session, n, back), errorBox(err));
    }
  }

  close() {
    this.key = null;
    this.seq += 1;
    this.aside.remove();
  }

  bar(session, n, back) {
    const numbers = session.steps.map((s) => s.step);
    const at = numbers.indexOf(Number(n));
    const prev = at > 0 ? numbers[at - 1] : null;
    const next = at >= 0 && at < numbers.length - 1 ? numbers[at + 1] : null;
    return el(
      'div',
      { class: 'panel-bar' },
      el('h2', {}, `Step ${n}`),
      el(
        'nav',
        {},
        prev !== null ? link(paths.step(session.id, prev), {}, `‹ step ${prev}`) : null,
        next !== null ? link(paths.step(session.id, next), {}, `step ${next} ›`) : null,
        el('a', { href: back, class: 'close', testid: 'step-close', title: 'close (Esc)' }, '× close'),
      ),
    );
  }
}

function stepDetails(step, session) {
  return [
    el('p', { class: 'step-url' }, el('code', {}, `${step.method ?? ''} ${step.url ?? ''}`)),
    section('Summary', facts(step, session)),
    section('Received', received(step.received || {}, step), { testid: 'received' }),
    section('Request', exchangeSide(step.request, 'request')),
    section('Response', exchangeSide(step.response, 'response')),
  ];
}

function section(title, body, props = {}) {
  return el('section', { class: 'panel-section', ...props }, el('h3', {}, title), body);
}

function facts(step, session) {
  const t0 = fmt.epoch(session.started_at);
  const started = fmt.epoch(step.started_at);
  const rows = [
    ['kind', step.kind],
    ['provider', step.provider],
    ['model', step.model],
    ['status', step.status],
    ['error', step.error],
    ['failure tag', step.tag ? el('span', { class: 'tag' }, step.tag) : null],
    ['started', started === null ? null : `${fmt.when(step.started_at)} (${fmt.ms(started - (t0 ?? started))} into the session)`],
    ['latency', fmt.ms(step.latency_ms)],
    ['time to first token', fmt.ms(step.ttft_ms)],
    ['streamed', step.streamed === null || step.streamed === undefined ? null : step.streamed ? 'yes' : 'no'],
    ['chunks', chunkText(step)],
    ['tokens', fmt.tokens(step.input_tokens, step.output_tokens)],
    ['cost', step.kind === 'llm' ? fmt.usd(step.cost_usd) : null],
    ['fingerprint', step.fingerprint ? el('code', { testid: 'fingerprint' }, step.fingerprint) : null],
  ];
  return pairsTable(rows.filter(([, v]) => v !== null && v !== undefined && v !== ''));
}

/** "14 chunks, first after 4.34 ms, gaps 38.2–44.1 ms (median 40.7 ms)", and when each
 * chunk arrived (ms after the request, and its size) from the recorded timing. */
function chunkText(step) {
  if (!step.chunks) return null;
  const parts = [`${fmt.int(step.chunks)} chunks`];
  if (step.ttft_ms != null) parts.push(`first after ${fmt.ms(step.ttft_ms)}`);
  const timing = step.chunk_timing || [];
  const gaps = timing.slice(1).map(([t], i) => t - timing[i][0]).sort((a, b) => a - b);
  if (gaps.length) {
    const median = gaps[Math.floor(gaps.length / 2)];
    parts.push(`gaps ${fmt.ms(gaps[0])}–${fmt.ms(gaps[gaps.length - 1])} (median ${fmt.ms(median)})`);
  }
  if (!timing.length) return parts.join(', ');
  const shown = timing.slice(0, 50).map(([t, size]) => `${fmt.ms(t)} (${fmt.int(size)} B)`).join(', ');
  const more = timing.length > 50 ? `, … ${fmt.int(timing.length - 50)} more` : '';
  return el('span', {}, parts.join(', '), el('br'), el('span', { class: 'sub', testid: 'chunk-timing' }, shown + more));
}

function received(r, step) {
  const label = step.streamed ? `text (assembled from ${fmt.int(step.chunks ?? 0)} chunks)` : 'text';
  const usage = r.usage || {};
  const blocks = [
    r.text ? labelled(label, pre(r.text, { class: 'text', testid: 'received-text' })) : null,
    r.reasoning ? labelled('reasoning', pre(r.reasoning, { class: 'text' })) : null,
    r.refusal ? labelled('refusal', pre(r.refusal, { class: 'text' })) : null,
    (r.tool_calls || []).length ? labelled('tool calls', r.tool_calls.map((c) => toolCall(c, 'received-tool-call'))) : null,
    pairsTable(
      [
        ['finish reason', r.finish_reason],
        ['error type', r.error_type],
        ['error message', r.error_message],
        ['input tokens', fmt.int(usage.input_tokens)],
        ['output tokens', fmt.int(usage.output_tokens)],
        ['cache read tokens', fmt.int(usage.cache_read_tokens)],
        ['cache write tokens', fmt.int(usage.cache_write_tokens)],
      ].filter(([, v]) => v !== null && v !== undefined && v !== ''),
      { testid: 'received-facts' },
    ),
    r.body !== null && r.body !== undefined ? labelled('body', pre(bodyText(r.body).text, { class: 'body' })) : null,
  ];
  return blocks.some(Boolean) ? blocks : note('Nothing was received.');
}

function labelled(label, ...content) {
  return el('div', { class: 'labelled' }, el('div', { class: 'label' }, label), ...content);
}

function exchangeSide(side, name) {
  if (!side) return note(`No ${name} was recorded.`);
  const headers = side.headers || [];
  const body = bodyText(side.body);
  return [
    headers.length
      ? pairsTable(headers.map(([k, v]) => [k, v]), { class: 'pairs headers', testid: `${name}-headers` })
      : note('No headers.'),
    body.note ? note(body.note) : null,
    pre(body.text, { class: 'body', testid: `${name}-body` }),
  ];
}

/** A recorded body for reading: JSON pretty-printed, text as it is, binary as base64. */
export function bodyText(body) {
  if (body === null || body === undefined || body === '') return { text: '', note: 'Empty body.' };
  if (typeof body === 'string') return { text: body, note: null };
  const keys = Object.keys(body);
  if (keys.length === 1 && keys[0] === 'base64' && typeof body.base64 === 'string') {
    const bytes = Math.floor((body.base64.replace(/=+$/, '').length * 3) / 4);
    return { text: body.base64, note: `Binary body, ${fmt.int(bytes)} bytes, shown as base64.` };
  }
  return { text: fmt.json(body), note: null };
}

// The steps table of a session page (one page of up to 100 steps).

import { el } from './dom.js';
import { link, paths, withQuery } from './api.js';
import { navigate } from './router.js';
import { failedStep, KINDS } from './charts.js';
import * as fmt from './format.js';

const COLUMNS = ['#', 'at', 'kind', 'provider', 'model', 'request', 'status', 'tokens', 'cost', 'latency', 'ttft', 'tag'];

/** The table of `steps` of session `id`; `t0` is the session's start (epoch ms). */
export function stepsTable(steps, id, t0) {
  const body = el('tbody', { on: { click: (event) => openClicked(event, id) } }, steps.map((s) => stepRow(s, id, t0)));
  const head = el('thead', {}, el('tr', {}, COLUMNS.map((c) => el('th', { scope: 'col' }, c))));
  return el('table', { class: 'steps', testid: 'steps-table' }, head, body);
}

function stepRow(s, id, t0) {
  const started = fmt.epoch(s.started_at);
  const kind = KINDS.includes(s.kind) ? s.kind : 'other';
  return el(
    'tr',
    { testid: 'step-row', data: { step: s.step }, class: failedStep(s) ? 'failed' : null },
    el('td', { class: 'num' }, link(paths.step(id, s.step), {}, String(s.step))),
    el('td', { class: 'num' }, started === null || t0 === null ? '' : fmt.ms(started - t0)),
    el('td', {}, el('span', { class: `kind kind-${kind}` }, s.kind ?? '')),
    el('td', {}, s.provider ?? ''),
    el('td', {}, s.model ?? ''),
    el('td', { class: 'url', title: s.url ?? '' }, `${s.method ?? ''} ${fmt.endpoint(s.url)}`),
    el('td', { class: 'num' }, statusText(s)),
    el('td', { class: 'num' }, fmt.tokens(s.input_tokens, s.output_tokens)),
    el('td', { class: 'num' }, s.kind === 'llm' ? fmt.usd(s.cost_usd) : ''),
    el('td', { class: 'num' }, fmt.ms(s.latency_ms)),
    el('td', { class: 'num' }, fmt.ms(s.ttft_ms)),
    el('td', {}, s.tag ? el('span', { class: 'tag' }, s.tag) : ''),
  );
}

function statusText(s) {
  if (s.error) return s.status ? `${s.status} · error` : 'error';
  return s.status === null || s.status === undefined ? '' : String(s.status);
}

/** A click anywhere on a row opens its step (links and selections keep their own meaning). */
function openClicked(event, id) {
  if (event.target.closest('a') || String(window.getSelection())) return;
  const row = event.target.closest('tr[data-step]');
  if (row) navigate(withQuery(paths.step(id, row.dataset.step)));
}

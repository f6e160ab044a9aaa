// The conversation the model saw at a session's last LLM call, and its answer
// (`rewind inspect SESSION --conversation --json`).

import { el, note, pre } from './dom.js';
import { link, paths } from './api.js';
import * as fmt from './format.js';

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'];

/** The conversation `doc` of session `id`. */
export function conversationView(doc, id) {
  const messages = doc.messages || [];
  return el(
    'div',
    { class: 'conversation', testid: 'conversation', data: { step: doc.step } },
    el('p', { class: 'note' }, 'As the model saw it at ', link(paths.step(id, doc.step), {}, `step ${doc.step}`), '.'),
    messages.length ? messages.map(message) : note('No messages could be read from this request.'),
  );
}

function message(m) {
  const role = ROLES.includes(m.role) ? m.role : 'other';
  const isResult = m.role === 'tool';
  return el(
    'article',
    { class: `message role-${role}`, testid: isResult ? 'tool-result' : 'message', data: { role: m.role ?? '' } },
    el('header', {}, el('span', { class: 'role' }, isResult ? 'tool result' : m.role ?? '?'), about(m)),
    m.text ? el('div', { class: 'text' }, m.text) : null,
    (m.tool_calls || []).map((call) => toolCall(call)),
    !m.text && !(m.tool_calls || []).length ? el('div', { class: 'text empty' }, '(empty)') : null,
  );
}

function about(m) {
  const bits = [];
  if (m.name) bits.push(el('span', { class: 'name' }, m.name));
  if (m.tool_call_id) bits.push(el('span', { class: 'call-id' }, m.tool_call_id));
  return bits;
}

/** A tool call: its name and arguments (JSON pretty-printed; invalid JSON as it came). */
export function toolCall(call, testid = 'tool-call') {
  const args = typeof call.arguments === 'string' ? call.arguments : fmt.json(call.arguments);
  return el(
    'div',
    { class: 'tool-call', testid },
    el(
      'div',
      { class: 'call-head' },
      el('span', { class: 'call-label' }, 'tool call'),
      ' ',
      el('code', { class: 'call-name' }, call.name ?? '?'),
      call.arguments_valid === false ? el('span', { class: 'tag' }, 'arguments are not valid JSON') : null,
    ),
    pre(args, { class: 'args' }),
  );
}

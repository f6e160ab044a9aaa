// rewind ui: the page of the local, read-only viewer (an ES module; no build step).
//
// It routes itself (js/router.js), reads the JSON API (js/api.js: exactly the CLI's --json
// documents) and builds the DOM from recorded, untrusted content with createElement and
// text nodes only (js/dom.js). Charts are Chart.js 4, vendored in vendor/.
//
// data-testid attributes, for browser tests (stable; change them only with the tests):
//
//   every page
//     error               an API error: its message and hint (role="alert")
//     pager               page links (100 rows a page); numbered links carry data-page,
//                         prev/next links data-rel="prev"/"next"; the current page is a
//                         span with aria-current="page"
//   /  sessions
//     filter-text         text filter (name, command or id)
//     filter-failed       "failed only" checkbox
//     filter-since        since: a date or an age (7d, 12h, 2026-11-30)
//     sessions-table      the table
//     session-row         one session; data-session-id, data-status
//     live-badge          "● recording" on a session still recording (also in a session's header)
//     compare-pick        checkbox picking a session to compare; data-session-id
//     compare-link        the link to /compare/<a>/<b>, once two sessions are picked
//   /s/<id>, /s/<id>/step/<n>  a session
//     session-header      name, id, status, mode, exit code, tokens, cost, parent, fault, command
//     gaps                exchanges the recorder could not store (only when there are some)
//     tokens-chart        chart box: tokens and cost per step, all steps; data-points
//     waterfall           chart box: the current page's steps; data-bars, data-from, data-to
//     steps-table         the table of the current page's steps
//     step-row            one step; data-step (class "selected" when open in the panel)
//     conversation        the conversation at the last LLM call; data-step
//     message             a message (data-role: system, user, assistant, …)
//     tool-result         a tool result message (data-role="tool")
//     tool-call           a tool call in the conversation, with its arguments
//     stdout, stderr      the command's recorded output
//     step-panel          the open step; data-step
//     step-close          the panel's close link (Esc closes it too)
//     received            what the agent received: text, tool calls, finish reason, usage
//     received-text       a stream's assembled text (or the answer's text)
//     received-tool-call  a tool call the step returned
//     received-facts      finish reason, error, usage
//     fingerprint         the request's fingerprint
//     request-headers, response-headers   header tables
//     request-body, response-body         bodies, pretty-printed when JSON
//   /compare/<a>/<b>
//     bisect-cause        bisect's likely cause, evidence and first divergence
//     compare-row         one aligned pair (a <tbody>); data-status (same, changed, only_a,
//                         only_b), data-a, data-b; data-first-divergence="true" on the first
//     first-divergence    the badge inside the first divergent compare-row
//     changes             what changed in a changed pair
//     change              one changed field; text-diff: its unified diff lines
//   /s/<id>/lineage
//     lineage             the fork tree holding the session
//     lineage-node        one session in it; data-session-id (aria-current="page" on this one)

import { keepToken, withQuery } from './js/api.js';
import { el, errorBox, fill } from './js/dom.js';
import { startRouter } from './js/router.js';
import { SessionsView } from './js/sessions.js';
import { SessionView } from './js/session.js';
import { CompareView } from './js/compare.js';
import { LineageView } from './js/lineage.js';

const VIEWS = { sessions: SessionsView, session: SessionView, compare: CompareView, lineage: LineageView };

let current = null;

function show(route) {
  if (current && current.matches(route)) {
    current.update(route);
    return;
  }
  if (current) current.destroy();
  const main = document.getElementById('main');
  fill(main);
  window.scrollTo(0, 0);
  const View = VIEWS[route.name];
  if (!View) {
    current = null;
    document.title = 'Not found · rewind';
    main.append(el('h1', {}, 'Not found'), errorBox({ message: `no page at ${location.pathname}`, hint: 'pages: /, /s/<id>, /s/<id>/step/<n>, /s/<id>/lineage, /compare/<a>/<b>' }));
    return;
  }
  current = new View(main, route);
  current.update(route);
}

function start() {
  keepToken(location.search);
  for (const a of document.querySelectorAll('a[data-home]')) a.setAttribute('href', withQuery('/'));
  startRouter(show);
}

start();

// Small labels shared by the pages: a session's status, its failure tags.

import { el } from './dom.js';

/** "● recording" (live, data-testid="live-badge"), "complete", "interrupted". */
export function statusBadge(status) {
  if (status === 'recording') return el('span', { class: 'badge live', testid: 'live-badge' }, '● recording');
  return el('span', { class: `badge status-${status === 'complete' ? 'complete' : 'other'}` }, status ?? '?');
}

/** A session's failure tags ({tag: steps}) as tags: "rate_limited", "server_error ×3". */
export function tagList(tags) {
  return Object.entries(tags || {}).map(([tag, n]) => el('span', { class: 'tag' }, n > 1 ? `${tag} ×${n}` : tag));
}

// The fork tree around a session (/s/<id>/lineage), from `rewind list --tree --json`: the
// root it descends from and every branch under it. A branch links to its parent's step it
// was forked at (/s/<parent>/step/<fork_step>).

import { el, errorBox, fill, note } from './dom.js';
import { api, link, paths } from './api.js';
import { statusBadge, tagList } from './badges.js';
import * as fmt from './format.js';

export class LineageView {
  constructor(root, route) {
    this.root = root;
    this.ref = route.id;
    this.box = el('div');
    root.append(el('h1', {}, 'Lineage'), this.box);
  }

  matches(route) {
    return route.name === 'lineage' && route.id === this.ref;
  }

  async update() {
    document.title = 'Lineage · rewind';
    fill(this.box, note('Loading…'));
    try {
      const { doc } = await api.tree();
      this.show(doc);
    } catch (err) {
      fill(this.box, errorBox(err));
    }
  }

  destroy() {}

  show(roots) {
    const node = resolve(roots, this.ref);
    if (!node) {
      fill(this.box, errorBox({ message: `no session ${this.ref}`, hint: 'see all sessions on the first page' }));
      return;
    }
    const root = roots.find((r) => contains(r, node));
    document.title = `Lineage of ${node.name || node.id} · rewind`;
    fill(
      this.box,
      el('p', { class: 'note' }, 'Sessions forked from one another (', el('code', {}, 'rewind branch'), ', ', el('code', {}, 'rewind mutate'), '); this one is highlighted.'),
      el('div', { class: 'lineage', testid: 'lineage' }, el('ul', { class: 'tree' }, treeNode(root, node.id))),
      el('nav', { class: 'actions' }, link(paths.session(node.id), {}, `back to ${node.name || node.id}`)),
    );
  }
}

function* walk(nodes) {
  for (const n of nodes) {
    yield n;
    yield* walk(n.children || []);
  }
}

function contains(tree, node) {
  for (const n of walk([tree])) if (n === node) return true;
  return false;
}

/** A reference as the API reads it: a full id, a unique id prefix, or a name (the newest). */
function resolve(roots, ref) {
  const all = [...walk(roots)];
  const exact = all.find((n) => n.id === ref);
  if (exact) return exact;
  const prefixed = all.filter((n) => n.id.startsWith(ref));
  if (prefixed.length === 1) return prefixed[0];
  const named = all.filter((n) => n.name === ref);
  named.sort((x, y) => (fmt.epoch(y.started_at) ?? 0) - (fmt.epoch(x.started_at) ?? 0));
  return named[0] || null;
}

function treeNode(n, currentId) {
  const children = n.children || [];
  return el(
    'li',
    { testid: 'lineage-node', data: { sessionId: n.id }, class: n.id === currentId ? 'current' : null, 'aria-current': n.id === currentId ? 'page' : null },
    el(
      'div',
      { class: `node${n.failed ? ' failed' : ''}` },
      link(paths.session(n.id), {}, n.name || fmt.shortId(n.id)),
      ' ',
      el('span', { class: 'mode' }, n.mode ?? ''),
      n.status !== 'complete' ? [' ', statusBadge(n.status)] : null,
      n.parent ? [' · ', forkLink(n)] : null,
      n.fault ? [' · ', el('span', { class: 'tag fault' }, `fault: ${n.fault}`)] : null,
      ' · ',
      `${fmt.int(n.steps)} steps`,
      n.exit_code ? el('span', { class: 'bad' }, ` · exit ${n.exit_code}`) : null,
      tagList(n.tags).map((t) => [' ', t]),
      el('span', { class: 'sub' }, ` · ${fmt.when(n.started_at)}`),
      n.parent ? [' · ', link(paths.compare(n.parent, n.id), {}, 'compare with parent')] : null,
    ),
    children.length ? el('ul', {}, children.map((c) => treeNode(c, currentId))) : null,
  );
}

function forkLink(n) {
  if (!n.fork_step) return link(paths.session(n.parent), {}, `fork of ${fmt.shortId(n.parent)}`);
  return link(paths.step(n.parent, n.fork_step), {}, `fork at step ${n.fork_step}`);
}

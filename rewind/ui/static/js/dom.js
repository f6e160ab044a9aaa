// Building the page from untrusted data: createElement and text nodes only.
//
// Recorded content (answers, tool results, names, URLs, headers, bodies) is data. It reaches
// the DOM only as text (`el`'s string children, `textContent`), never as markup; an `href`
// is only ever one of our own routes (`el` refuses anything else); control and bidi-override
// characters are shown as visible symbols, so a recorded string cannot hide or reorder text.

const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
const BIDI = /[\u202a-\u202e\u2066-\u2069]/g;
const LONG_TEXT = 100_000; // characters shown before a "show all" button

/** `text` with C0 controls as their Unicode pictures (ESC -> ␛) and bidi overrides named. */
export function visible(text) {
  return String(text)
    .replace(CONTROL, (c) => String.fromCharCode(c === '\u007f' ? 0x2421 : 0x2400 + c.charCodeAt(0)))
    .replace(BIDI, (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase()}>`);
}

/**
 * A new element. `props`: class, testid, data (dataset), on (event listeners), href (a path
 * of ours), hidden/disabled/checked (booleans), any other attribute by name. Children:
 * strings and numbers become text, nodes are appended, arrays flattened, null/false skipped.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) setProp(node, key, value);
  append(node, children);
  return node;
}

function setProp(node, key, value) {
  if (value === undefined || value === null || value === false) return;
  if (key === 'class') node.className = value;
  else if (key === 'testid') node.dataset.testid = value;
  else if (key === 'data') {
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) node.dataset[k] = String(v);
  }
  else if (key === 'on') for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
  else if (key === 'href') node.setAttribute('href', ownPath(value));
  else if (key === 'checked' || key === 'value') node[key] = value;
  else if (/^on/i.test(key) || key === 'style' || key === 'src') throw new Error(`el: no ${key} attribute`);
  else node.setAttribute(key, value === true ? '' : String(value));
}

/** Only our own routes may become links: a path from the root, never `//host` or a scheme. */
function ownPath(href) {
  const text = String(href);
  if (!text.startsWith('/') || text.startsWith('//') || text.startsWith('/\\')) {
    throw new Error(`el: not a path of this viewer: ${text.slice(0, 40)}`);
  }
  return text;
}

/** Append children to `node` (see `el`). */
export function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.append(child);
    else node.append(document.createTextNode(visible(child)));
  }
  return node;
}

/** Replace `node`'s children. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** An API error (message and hint) as the page shows it. */
export function errorBox(err) {
  const hint = err && err.hint;
  return el(
    'div',
    { class: 'error', testid: 'error', role: 'alert' },
    el('strong', {}, err && err.message ? err.message : String(err)),
    hint ? el('div', { class: 'hint' }, hint) : null,
  );
}

/** A muted note ("no steps yet"). */
export function note(...children) {
  return el('p', { class: 'note' }, ...children);
}

/** `<pre>` of a long text: the first LONG_TEXT characters, and a button for the rest. */
export function pre(text, props = {}) {
  const node = el('pre', props);
  const full = String(text);
  if (full.length <= LONG_TEXT) return append(node, [full]);
  append(node, [full.slice(0, LONG_TEXT)]);
  const more = el('button', { type: 'button', class: 'more' }, `show all ${full.length.toLocaleString('en-US')} characters`);
  more.addEventListener('click', () => fill(node, full));
  return el('div', {}, node, more);
}

/** A two-column table of [name, value] pairs (headers, facts). */
export function pairsTable(pairs, props = {}) {
  const rows = pairs.map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, v)));
  return el('table', { class: 'pairs', ...props }, el('tbody', {}, rows));
}

/** Call `fn` every `ms` milliseconds (never two at once); returns a function that stops it. */
export function every(ms, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try {
      if (!document.hidden) await fn();
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

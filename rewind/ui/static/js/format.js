// Numbers, money, times and commands as the page shows them (the CLI's formats where it has one).

const INTEGER = new Intl.NumberFormat('en-US');

/** 1,234; '' for null. */
export function int(n) {
  return n === null || n === undefined ? '' : INTEGER.format(n);
}

/** `$0.0123`, `$0.000125`, `unpriced` for null (never `$0`): the CLI's `usd()`. */
export function usd(value) {
  if (value === null || value === undefined) return 'unpriced';
  if (value === 0) return '$0';
  if (value < 0.000001) return '<$0.000001';
  return `$${value.toFixed(6).replace(/0+$/, '').replace(/\.$/, '')}`;
}

/** `40 in / 12 out`; '' when neither is known. */
export function tokens(input, output) {
  if (input == null && output == null) return '';
  return `${int(input ?? 0)} in / ${int(output ?? 0)} out`;
}

/** A duration in milliseconds: `4.43 ms`, `532.8 ms`, `1.25 s`, `3m 05s`, `1h 02m`. */
export function ms(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return '';
  const abs = Math.abs(value);
  if (abs < 10) return `${trim(value.toFixed(2))} ms`;
  if (abs < 1000) return `${trim(value.toFixed(1))} ms`;
  if (abs < 60_000) return `${trim((value / 1000).toFixed(2))} s`;
  const sign = value < 0 ? '-' : '';
  const s = Math.round(abs / 1000);
  if (s < 3600) return `${sign}${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${sign}${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
}

/** An axis tick: `ms` style, with as many decimals as the ticks' spacing (`step`, ms) needs. */
export function tick(value, step) {
  if (Math.abs(value) < 1000 && step < 1000) return ms(value);
  const decimals = step >= 1000 ? 0 : step >= 100 ? 1 : step >= 10 ? 2 : 3;
  const seconds = value / 1000;
  if (Math.abs(seconds) < 60) return `${seconds.toFixed(decimals)} s`;
  const sign = seconds < 0 ? '-' : '';
  const abs = Math.abs(seconds);
  const rest = (abs % 60).toFixed(decimals).padStart(decimals ? decimals + 3 : 2, '0');
  if (abs < 3600) return `${sign}${Math.floor(abs / 60)}m ${rest}s`;
  return `${sign}${Math.floor(abs / 3600)}h ${pad(Math.floor(abs / 60) % 60)}m ${rest}s`;
}

const trim = (fixed) => fixed.replace(/\.?0+$/, '');
const pad = (n) => String(n).padStart(2, '0');

/** Milliseconds since the epoch of an ISO time; null for none or nonsense. */
export function epoch(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** The time between two ISO times; '' when either is missing. */
export function duration(startIso, endIso) {
  const start = epoch(startIso);
  const end = epoch(endIso);
  return start === null || end === null ? '' : ms(end - start);
}

/** An ISO time as local `YYYY-MM-DD HH:MM:SS`. */
export function when(iso) {
  const t = epoch(iso);
  if (t === null) return '';
  const d = new Date(t);
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${date} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** An argv as a shell would read it (for display only). */
export function command(argv) {
  return (argv || []).map(quote).join(' ');
}

function quote(arg) {
  const text = String(arg);
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** The first 12 characters of an id (ids are 12 hex digits today). */
export function shortId(id) {
  return String(id ?? '').slice(0, 12);
}

/** `https://host/path?q` as `host/path?q` (shorter, same information). */
export function endpoint(url) {
  return String(url ?? '').replace(/^[a-z]+:\/\//i, '');
}

/** JSON for reading: two-space indent. */
export function json(value) {
  return JSON.stringify(value, null, 2) ?? String(value);
}

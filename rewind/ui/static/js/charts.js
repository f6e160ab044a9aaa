// The session's charts, drawn by Chart.js (vendor/chart.umd.min.js, loaded before this module):
//
//   Waterfall    one horizontal bar per step of the current page, from its start (relative
//                to the session's start) to start + latency, a tick at time to first token;
//                coloured by kind, red when the status is >= 400 or the call failed.
//   TokensChart  input and output tokens and cost per step, for every step of the session
//                (lines with min-max decimation, so 10,000 steps draw as fast as 100).
//
// Labels and tooltips are drawn on a canvas: recorded text there is pixels, never markup.
// The palette lives in style.css (--kind-llm, …); charts read it from there.

import * as fmt from './format.js';

const AXES_PX = 56;

/** Pixels per bar: roomy for a few steps, 12 for a full page of 100. */
function rowPx(rows) {
  return Math.max(12, Math.min(24, Math.floor(600 / Math.max(rows, 1))));
}
const MANY_POINTS = 200;
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

export const KINDS = ['llm', 'http', 'telemetry', 'websocket'];

/** Chart.js, or null when its file did not load (the page then shows no charts). */
function chartJs() {
  return globalThis.Chart || null;
}

let configured = false;
function configure(Chart) {
  if (configured) return;
  configured = true;
  Chart.defaults.animation = false;
  Chart.defaults.font.family = FONT;
  Chart.defaults.font.size = 11;
  Chart.defaults.color = cssColor('--muted', '#555');
}

/** A colour from style.css's custom properties. */
export function cssColor(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export function failedStep(step) {
  return Boolean(step.error) || (step.status ?? 0) >= 400;
}

/** A step's bar colour: red when it failed, else its kind's. */
export function stepColor(step) {
  if (failedStep(step)) return cssColor('--failed', '#d64545');
  return cssColor(`--kind-${KINDS.includes(step.kind) ? step.kind : 'other'}`, '#888');
}

/** A canvas in a sized box (Chart.js sizes the canvas to its parent). */
function canvasIn(box, label) {
  const canvas = document.createElement('canvas');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  box.replaceChildren(canvas);
  return canvas;
}

export class Waterfall {
  /** `box`: the sized container; `onPick(step)` when a bar is clicked. */
  constructor(box, onPick) {
    this.box = box;
    this.onPick = onPick;
    this.rows = [];
    this.chart = null;
  }

  /** Draw `steps` (one page); `t0` is the session's start in epoch milliseconds. */
  show(steps, t0) {
    const Chart = chartJs();
    this.rows = steps.map((s) => bar(s, t0));
    this.box.style.height = `${this.rows.length * rowPx(this.rows.length) + AXES_PX}px`;
    this.box.dataset.bars = String(this.rows.length);
    this.box.dataset.from = this.rows.length ? String(this.rows[0].step) : '';
    this.box.dataset.to = this.rows.length ? String(this.rows[this.rows.length - 1].step) : '';
    if (!Chart) return;
    if (this.chart) {
      this.chart.data = this.data();
      this.chart.update('none');
      return;
    }
    configure(Chart);
    const canvas = canvasIn(this.box, 'waterfall of the steps on this page');
    this.chart = new Chart(canvas, this.config(canvas));
  }

  data() {
    return {
      labels: this.rows.map((r) => `#${r.step}`),
      datasets: [
        {
          data: this.rows.map((r) => [r.start, r.end]),
          backgroundColor: this.rows.map((r) => r.color),
          borderWidth: 0,
          barPercentage: 0.85,
          categoryPercentage: 1,
          minBarLength: 2,
        },
      ],
    };
  }

  config(canvas) {
    return {
      type: 'bar',
      data: this.data(),
      options: {
        indexAxis: 'y',
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: {
            type: 'linear',
            beginAtZero: false,
            position: 'top',
            title: { display: true, text: 'time since the session started' },
            ticks: { callback: (v, i, ticks) => fmt.tick(v, ticks.length > 1 ? Math.abs(ticks[1].value - ticks[0].value) : 1000) },
          },
          y: { ticks: { autoSkip: true, autoSkipPadding: 1, font: { size: 9 } }, grid: { display: false } },
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: (items) => this.title(items), label: (item) => this.label(item) } },
        },
        onClick: (_event, elements) => elements.length && this.onPick(this.rows[elements[0].index].step),
        onHover: (_event, elements) => {
          canvas.style.cursor = elements.length ? 'pointer' : 'default';
        },
      },
      plugins: [this.ttftTicks()],
    };
  }

  title(items) {
    const r = this.rows[items[0].dataIndex];
    return `step ${r.step} · ${r.kind ?? ''} ${r.what}`.slice(0, 120);
  }

  label(item) {
    const r = this.rows[item.dataIndex];
    const parts = [`status ${r.status ?? '—'}`, `starts at ${fmt.ms(r.start)}`, `latency ${fmt.ms(r.latency) || '—'}`];
    if (r.ttft !== null) parts.push(`ttft ${fmt.ms(r.ttft)}`);
    if (r.error) parts.push(String(r.error).slice(0, 80));
    return parts.join(' · ');
  }

  /** A plugin drawing each step's time-to-first-token tick across its bar. */
  ttftTicks() {
    return {
      id: 'rewindTtft',
      afterDatasetsDraw: (chart) => {
        const bars = chart.getDatasetMeta(0).data;
        const { ctx, scales } = chart;
        ctx.save();
        ctx.strokeStyle = cssColor('--ttft', '#1b1f24');
        ctx.lineWidth = 2;
        bars.forEach((element, i) => {
          const r = this.rows[i];
          if (!r || r.ttft === null) return;
          const x = scales.x.getPixelForValue(r.start + r.ttft);
          ctx.beginPath();
          ctx.moveTo(x, element.y - element.height / 2);
          ctx.lineTo(x, element.y + element.height / 2);
          ctx.stroke();
        });
        ctx.restore();
      },
    };
  }

  destroy() {
    if (this.chart) this.chart.destroy();
    this.chart = null;
  }
}

function bar(step, t0) {
  const started = fmt.epoch(step.started_at);
  const start = started === null || t0 === null ? 0 : started - t0;
  const latency = step.latency_ms ?? null;
  const ttft = step.ttft_ms ?? null;
  return {
    step: step.step,
    kind: step.kind,
    status: step.status,
    error: step.error,
    what: step.model || `${step.method ?? ''} ${fmt.endpoint(step.url)}`,
    start,
    end: start + (latency ?? ttft ?? 0),
    latency,
    ttft,
    color: stepColor(step),
  };
}

export class TokensChart {
  /** `box`: the sized container; `onPick(step)` when a point is clicked. */
  constructor(box, onPick) {
    this.box = box;
    this.onPick = onPick;
    this.chart = null;
  }

  /** Draw every step's tokens and cost (steps without them are left out). */
  show(steps) {
    const Chart = chartJs();
    const data = { datasets: this.datasets(steps) };
    this.box.dataset.points = String(data.datasets[0].data.length);
    if (!Chart) return;
    const radius = data.datasets[0].data.length > MANY_POINTS ? 0 : 3;
    if (this.chart) {
      this.chart.data = data;
      this.chart.options.elements.point.radius = radius;
      this.chart.update('none');
      return;
    }
    configure(Chart);
    const canvas = canvasIn(this.box, 'tokens and cost per step');
    this.chart = new Chart(canvas, this.config(data, radius));
  }

  datasets(steps) {
    const series = (key) => steps.filter((s) => s[key] != null).map((s) => ({ x: s.step, y: s[key] }));
    const line = (label, key, axis, color, dash) => ({
      label,
      data: series(key),
      yAxisID: axis,
      borderColor: color,
      backgroundColor: color,
      borderDash: dash,
    });
    return [
      line('input tokens', 'input_tokens', 'tokens', cssColor('--input', '#3b6fd4'), []),
      line('output tokens', 'output_tokens', 'tokens', cssColor('--output', '#e08a1e'), []),
      line('cost (USD)', 'cost_usd', 'cost', cssColor('--cost', '#2f8f46'), [4, 3]),
    ];
  }

  config(data, radius) {
    return {
      type: 'line',
      data,
      options: {
        parsing: false,
        normalized: true,
        spanGaps: true,
        indexAxis: 'x',
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        elements: { point: { radius }, line: { borderWidth: 1.5 } },
        scales: {
          x: { type: 'linear', title: { display: true, text: 'step' }, ticks: { precision: 0 } },
          tokens: { type: 'linear', position: 'left', beginAtZero: true, title: { display: true, text: 'tokens' } },
          cost: {
            type: 'linear',
            position: 'right',
            beginAtZero: true,
            grid: { drawOnChartArea: false },
            ticks: { callback: (v) => fmt.usd(v) },
          },
        },
        plugins: {
          decimation: { enabled: true, algorithm: 'min-max' },
          tooltip: { callbacks: { title: (items) => `step ${items[0].parsed.x}`, label: tokenLabel } },
        },
        onClick: (_event, elements, chart) => this.pick(elements, chart),
      },
    };
  }

  pick(elements, chart) {
    if (!elements.length) return;
    const { datasetIndex, index } = elements[0];
    const point = chart.data.datasets[datasetIndex].data[index];
    if (point) this.onPick(point.x);
  }

  destroy() {
    if (this.chart) this.chart.destroy();
    this.chart = null;
  }
}

function tokenLabel(item) {
  const value = item.parsed.y;
  return `${item.dataset.label}: ${item.dataset.yAxisID === 'cost' ? fmt.usd(value) : fmt.int(value)}`;
}

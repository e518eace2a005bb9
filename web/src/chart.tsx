// A uPlot time-series chart sized to its container; colours come from the page's CSS variables so
// it follows the theme. Dragging across a chart selects a time range (onZoom: the view sets the
// range); charts with the same `sync` key share a cursor. `stacked` draws bars stacked bottom-up.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { isUtc } from './format';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  /** CSS variable holding the colour, e.g. --accent. */
  color: string;
  fill?: boolean;
  /** Draw every point (for sparse series such as latency, where empty buckets are gaps). */
  points?: boolean;
  /** A dashed reference line (a threshold). */
  dashed?: boolean;
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

export interface ChartProps {
  times: number[];
  series: ChartSeries[];
  height?: number;
  unit?: string;
  title: string;
  /** Called with the dragged range [from, to) in ms. */
  onZoom?: (from: number, to: number) => void;
  /** Charts with the same key share a cursor. */
  sync?: string;
  stacked?: boolean;
}

function fmtValue(v: number | null, unit?: string): string {
  if (v === null) return '';
  if (unit === 'ms') return v >= 1000 ? `${+(v / 1000).toFixed(1)}s` : `${+v.toFixed(2)}ms`;
  if (unit === 'share') return `${+(v * 100).toFixed(1)}%`;
  return `${+v.toFixed(2)}`;
}

/**
 * The range a drag selects, [from, to) in ms. Each point stands for its bucket [t, t + step): a drag
 * that reaches a point takes its whole bucket, so a drag to the right edge keeps the newest events
 * (the axis ends at the last bucket's start, not at the end of the range).
 */
export function zoomRange(times: number[], from: number, to: number): [number, number] {
  const step = times.length > 1 ? times[1] - times[0] : 0;
  let last: number | undefined;
  for (const t of times) if (t <= to) last = t;
  return [Math.floor(from), Math.ceil(last !== undefined && last >= from ? Math.max(to, last + step) : to)];
}

/** uPlot draws a legend table whose header cells name rows (one series each): say so. */
function scopeLegend(root: HTMLElement): void {
  for (const th of root.querySelectorAll('.u-legend th')) th.setAttribute('scope', 'row');
}

export function Chart({ times, series, height = 180, unit, title, onZoom, sync, stacked }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const zoomRef = useRef(onZoom);
  zoomRef.current = onZoom;
  // rebuilt only when the numbers change, not on every render of the parent
  const key = JSON.stringify([times, series.map((s) => [s.label, s.color, s.fill, s.points, s.dashed, s.values]), height, unit, sync, stacked, !!onZoom]);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const axis = cssVar('--muted');
    const grid = cssVar('--grid');
    // stacked: each series drawn at the sum of itself and those below it, tallest first
    const raw = series.map((s) => s.values);
    const shown = stacked
      ? raw.map((_, i) => times.map((__, j) => { let sum = 0; for (let k = 0; k <= i; k++) sum += raw[k][j] ?? 0; return sum; }))
      : raw;
    const order = stacked ? series.map((_, i) => series.length - 1 - i) : series.map((_, i) => i);
    const step = times.length > 1 ? times[1] - times[0] : 0;
    const bars = stacked ? uPlot.paths.bars!({ size: [0.9, 60], align: 1 }) : undefined;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true },
      tzDate: isUtc() ? (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC') : undefined,
      cursor: { drag: { x: !!onZoom, y: false, setScale: false }, sync: sync ? { key: sync } : undefined },
      select: { show: !!onZoom, left: 0, top: 0, width: 0, height: 0 },
      // the axis ends where the last bucket ends (not at its start): its bar has room, and a drag to the edge reaches it
      scales: { x: { time: true, range: step > 0 ? (_u, min, max) => [min, max + step / 1000] : undefined }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(unit === 'share' ? 0.01 : 1, (max ?? 1) * 1.1)] } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 56, values: (_u, vals) => vals.map((v) => fmtValue(v, unit)) },
      ],
      series: [
        {},
        ...order.map((i) => {
          const s = series[i];
          const c = cssVar(s.color);
          return {
            label: s.label, stroke: c, width: s.dashed ? 1 : 1.5, dash: s.dashed ? [6, 4] : undefined,
            fill: stacked ? withAlpha(c, 0.85) : s.fill ? withAlpha(c, 0.15) : undefined, spanGaps: false,
            points: { show: !!s.points, size: 5, fill: c }, paths: stacked ? bars : undefined,
            value: (_u: uPlot, _v: number | null, _si: number, idx: number | null) => (idx === null ? '' : fmtValue(raw[i][idx] ?? null, unit)),
          } as uPlot.Series;
        }),
      ],
      hooks: {
        setSelect: [(u) => {
          if (!zoomRef.current || u.select.width < 3) return;
          const from = u.posToVal(u.select.left, 'x') * 1000;
          const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          zoomRef.current(...zoomRange(times, from, to));
        }],
      },
    };
    const data = [times.map((t) => t / 1000), ...order.map((i) => shown[i])] as uPlot.AlignedData;
    const plot = new uPlot(opts, data, el);
    scopeLegend(el);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [key]);
  return (
    <figure class="chart">
      <figcaption>{title}{onZoom && <span class="muted small"> · drag across the chart to zoom</span>}</figcaption>
      <div ref={box} class="chart-box" role="img" aria-label={`${title} chart`} />
    </figure>
  );
}

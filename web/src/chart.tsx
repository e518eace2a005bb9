// A uPlot time-series chart sized to its container; colours come from the page's CSS variables so
// it follows the light/dark scheme.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  /** CSS variable holding the colour, e.g. --accent. */
  color: string;
  fill?: boolean;
  /** Draw every point (for sparse series such as latency, where empty buckets are gaps). */
  points?: boolean;
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

export function Chart({ times, series, height = 180, unit, title }: { times: number[]; series: ChartSeries[]; height?: number; unit?: string; title: string }) {
  const box = useRef<HTMLDivElement>(null);
  // rebuilt only when the numbers change, not on every render of the parent
  const key = JSON.stringify([times, series.map((s) => [s.label, s.color, s.fill, s.points, s.values]), height, unit]);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const axis = cssVar('--muted');
    const grid = cssVar('--grid');
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, (max ?? 1) * 1.1)] } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
        {
          stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 56,
          values: (_u, vals) => vals.map((v) => (v === null ? '' : unit === 'ms' && v >= 1000 ? `${+(v / 1000).toFixed(1)}s` : `${+v.toFixed(2)}${unit === 'ms' ? 'ms' : ''}`)),
        },
      ],
      series: [
        {},
        ...series.map((s) => {
          const c = cssVar(s.color);
          return { label: s.label, stroke: c, width: 1.5, fill: s.fill ? withAlpha(c, 0.15) : undefined, spanGaps: false, points: { show: !!s.points, size: 5, fill: c } };
        }),
      ],
    };
    const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData;
    const plot = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [key]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-box" />
    </figure>
  );
}

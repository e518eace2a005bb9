// Performance: latency percentiles, error rate, retries, timeouts and spikes per platform/action (or
// another grouping), and the count and p95 over the range; a row narrows the charts to that group.
import { useMemo } from 'preact/hooks';
import { api, type Params, type PerformanceGroup, type Timeseries } from '../api';
import { Chart } from '../chart';
import { baseParams, baseQuery, type ViewProps } from '../common';
import { Badge, Empty, ErrorBox, Loading } from '../components';
import { fmtMs, fmtNum, fmtPct } from '../format';
import { useApi } from '../hooks';
import { update, zoomTo } from '../router';

const GROUPINGS = ['platform,action', 'platform', 'action', 'engine', 'flow_id', 'event_type', 'engine,platform', 'project_id'];

export function PerformanceView({ route, epoch, now }: ViewProps) {
  const base = baseParams(route, now);
  const groupBy = route.params.get('group_by') ?? 'platform,action';
  const dims = groupBy.split(',');
  // the selected row, as sel.<dim>=value
  const selected: Params = {};
  for (const [k, v] of route.params) if (k.startsWith('sel.')) selected[k.slice(4)] = v;
  const selKey = JSON.stringify(selected);

  const table = useApi((signal) => api<{ groups: PerformanceGroup[] }>('/monitoring/performance', { ...base, group_by: groupBy, limit: '200' }, { signal }),
    [baseQuery(route), groupBy], [epoch, now]);
  const series = useApi(async (signal) => {
    const p = { ...base, ...selected };
    const [count, errors, p95] = await Promise.all(['count', 'errors', 'p95'].map((metric) => api<Timeseries>('/monitoring/timeseries', { ...p, metric }, { signal })));
    return { count, errors, p95 };
  }, [baseQuery(route), selKey], [epoch, now]);

  const charts = useMemo(() => {
    const d = series.data;
    if (!d) return null;
    const pts = (t: Timeseries) => t.series[0]?.points ?? [];
    const times = pts(d.count).map((p) => p.t);
    const align = (t: Timeseries) => {
      const m = new Map(pts(t).map((p) => [p.t, p.value]));
      return times.map((x) => m.get(x) ?? null);
    };
    return {
      times,
      interval: d.count.interval_s,
      volume: [
        { label: 'events', values: pts(d.count).map((p) => p.value), color: '--accent', fill: true },
        { label: 'errors', values: align(d.errors), color: '--bad' },
      ],
      latency: [{ label: 'p95', values: align(d.p95), color: '--warn', points: true }],
    };
  }, [series.data]);

  const groups = table.data?.groups ?? [];
  const isSelected = (g: PerformanceGroup) => Object.keys(selected).length > 0 && dims.every((d) => selected[d] === (g.group[d] ?? ''));
  const select = (g: PerformanceGroup) => {
    const changes: Record<string, string | undefined> = {};
    for (const [k] of route.params) if (k.startsWith('sel.')) changes[k] = undefined;
    if (!isSelected(g)) for (const d of dims) if (g.group[d]) changes[`sel.${d}`] = g.group[d];
    update(route, changes);
  };
  const selLabel = Object.entries(selected).map(([k, v]) => `${k} = ${v}`).join(', ');

  return (
    <section class="view perf-view" aria-labelledby="perf-h">
      <h1 id="perf-h" class="view-title">Performance</h1>
      <div class="toolbar">
        <label class="inline">
          group by
          <select value={groupBy} onChange={(e) => {
            const changes: Record<string, string | undefined> = { group_by: e.currentTarget.value === 'platform,action' ? undefined : e.currentTarget.value };
            for (const [k] of route.params) if (k.startsWith('sel.')) changes[k] = undefined;
            update(route, changes);
          }}>
            {GROUPINGS.map((g) => <option value={g}>{g.replace(',', ' + ')}</option>)}
          </select>
        </label>
        <span class="muted">{selLabel ? <>charts for <strong>{selLabel}</strong> (click the row again for all)</> : 'click a row to chart it alone'}</span>
        <span class="spacer" />
        <Loading show={table.loading || series.loading} />
      </div>
      <ErrorBox error={series.error} what="Time series" />
      {charts && (
        <div class="charts">
          <Chart title={`Events per ${fmtMs(charts.interval * 1000)}`} times={charts.times} series={charts.volume} sync="performance" onZoom={(f, t) => zoomTo(route, f, t)} />
          <Chart title="p95 duration" unit="ms" times={charts.times} series={charts.latency} sync="performance" onZoom={(f, t) => zoomTo(route, f, t)} />
        </div>
      )}
      <ErrorBox error={table.error} />
      {groups.length === 0 && !table.loading && !table.error ? (
        <Empty>No events in this range.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="grid perf">
            <thead>
              <tr>
                {dims.map((d) => <th scope="col">{d}</th>)}
                <th scope="col" class="num">Events</th><th scope="col" class="num">Error rate</th><th scope="col" class="num">p50</th><th scope="col" class="num">p95</th><th scope="col" class="num">p99</th><th scope="col" class="num">Max</th>
                <th scope="col" class="num">Retries (avg / max)</th><th scope="col" class="num">Timeouts</th><th scope="col" class="num">/ min</th><th scope="col">Latency</th>
              </tr>
            </thead>
            <tbody>
              {groups.map((g) => (
                <tr class={`row${isSelected(g) ? ' selected' : ''}`} data-row tabIndex={0} onClick={() => select(g)} onKeyDown={(k) => { if (k.key === 'Enter') select(g); }}>
                  {dims.map((d) => <td>{g.group[d] || <em class="muted">(none)</em>}</td>)}
                  <td class="num">{fmtNum(g.count)}</td>
                  <td class={`num${g.error_rate >= 0.05 ? ' bad-text' : ''}`}>{fmtPct(g.error_rate)}</td>
                  <td class="num">{fmtMs(g.p50)}</td>
                  <td class="num">{fmtMs(g.p95)}</td>
                  <td class="num">{fmtMs(g.p99)}</td>
                  <td class="num">{fmtMs(g.max)}</td>
                  <td class="num">{g.avg_retries === null ? '—' : `${fmtNum(g.avg_retries, 2)} / ${fmtNum(g.max_retries)}`}</td>
                  <td class={`num${g.timeouts > 0 ? ' bad-text' : ''}`}>{fmtNum(g.timeouts)}</td>
                  <td class="num">{fmtNum(g.throughput_per_min, 2)}</td>
                  <td>
                    {g.latency_spike.spike
                      ? <Badge value="spike" title={`p95 ${fmtMs(g.latency_spike.window_p95)} now vs ${fmtMs(g.latency_spike.baseline_p95)} before (×${g.latency_spike.factor})`} />
                      : <span class="muted">normal</span>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

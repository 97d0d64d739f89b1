// Charts as SVG, drawn from the points of GET /v1/stats/timeseries: attempts per bucket
// (successes and failures stacked) and latency (p50 and p95 lines). Sized by viewBox, so
// they scale to the page; every bar carries its numbers in a <title> and in data- attributes.

const NS = 'http://www.w3.org/2000/svg';
const W = 720;
const H = 200;
const PAD = { left: 44, right: 8, top: 10, bottom: 24 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function frame(label) {
  return s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' });
}

// Day buckets are UTC days, so they are labelled in UTC; minutes and hours in local time.
function short(iso, bucket) {
  const d = new Date(iso);
  if (bucket === 'day') return `${d.toLocaleDateString([], { timeZone: 'UTC' })} UTC`;
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function axes(svg, max, unit, points, bucket) {
  const y0 = H - PAD.bottom;
  svg.append(s('line', { x1: PAD.left, y1: y0, x2: W - PAD.right, y2: y0, class: 'axis' }));
  svg.append(s('text', { x: PAD.left - 6, y: PAD.top + 8, 'text-anchor': 'end', class: 'tick' }, `${max}${unit}`));
  svg.append(s('text', { x: PAD.left - 6, y: y0, 'text-anchor': 'end', class: 'tick' }, `0${unit}`));
  if (points.length) {
    svg.append(s('text', { x: PAD.left, y: H - 6, class: 'tick' }, short(points[0].start, bucket)));
    svg.append(s('text', { x: W - PAD.right, y: H - 6, 'text-anchor': 'end', class: 'tick' },
      short(points[points.length - 1].start, bucket)));
  }
}

// Successful and failed attempts per bucket, stacked.
export function attemptsChart(points, bucket) {
  const svg = frame('Attempts over time: successes and failures per bucket');
  const max = Math.max(1, ...points.map((p) => p.success + p.failure));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, points.length);
  const barW = Math.max(1, step * 0.8);
  points.forEach((p, i) => {
    const x = PAD.left + i * step + (step - barW) / 2;
    const okH = (p.success / max) * plotH;
    const failH = (p.failure / max) * plotH;
    const y0 = H - PAD.bottom;
    const g = s('g', { class: 'bar', 'data-start': p.start, 'data-success': p.success, 'data-failure': p.failure });
    const when = bucket === 'day'
      ? `${new Date(p.start).toLocaleDateString([], { timeZone: 'UTC' })} (UTC)`
      : new Date(p.start).toLocaleString();
    g.append(s('title', {}, `${when}: ${p.success} succeeded, ${p.failure} failed`));
    if (okH > 0) g.append(s('rect', { x, y: y0 - okH, width: barW, height: okH, class: 'ok' }));
    if (failH > 0) g.append(s('rect', { x, y: y0 - okH - failH, width: barW, height: failH, class: 'fail' }));
    svg.append(g);
  });
  axes(svg, max, '', points, bucket);
  return svg;
}

// p50 and p95 latency per bucket, as lines broken where a bucket had no answered attempt.
export function latencyChart(points, bucket) {
  const svg = frame('Latency over time: p50 and p95 in milliseconds');
  const values = points.flatMap((p) => [p.p50_ms, p.p95_ms]).filter((v) => v !== null && v !== undefined);
  const max = Math.max(1, ...values);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const step = plotW / Math.max(1, points.length);
  for (const [key, cls] of [['p95_ms', 'p95'], ['p50_ms', 'p50']]) {
    let run = [];
    const flush = () => {
      if (run.length === 1) {
        const [x, y] = run[0].split(',');
        svg.append(s('circle', { cx: x, cy: y, r: 2.5, class: `dot ${cls}` }));
      } else if (run.length > 1) {
        svg.append(s('polyline', { points: run.join(' '), class: `line ${cls}` }));
      }
      run = [];
    };
    points.forEach((p, i) => {
      const v = p[key];
      if (v === null || v === undefined) {
        flush();
        return;
      }
      const x = PAD.left + i * step + step / 2;
      const y = H - PAD.bottom - (v / max) * plotH;
      run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    });
    flush();
  }
  axes(svg, max, ' ms', points, bucket);
  return svg;
}

export function legend(items) {
  const ul = document.createElement('ul');
  ul.className = 'legend';
  for (const [cls, text] of items) {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `swatch ${cls}`;
    li.append(swatch, text);
    ul.append(li);
  }
  return ul;
}

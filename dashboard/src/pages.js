// A Service's page and a workload's: golden metrics over time, routes and their splits, the
// policies that apply, certificates, and the live tap.

import uPlot from 'uplot';
import { get, stream, token } from './api.js';
import { health, label } from './graph.js';

const h = (tag, attrs = {}, ...children) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
};

export { h };

// Golden metrics over the control plane's recent history (`/stat/series`), as three charts.
export async function charts(container, query) {
  const series = await get(`/stat/series?${query}&window=15m`);
  const t = series.points.map((p) => p.t);
  const specs = [
    ['requests per second', (p) => p.rps, '#1f5fa8'],
    ['success rate (%)', (p) => (p.successRate === null ? null : p.successRate * 100), '#2e9e5b'],
    ['p99 latency (ms)', (p) => p.p99Ms, '#d98e04'],
  ];
  container.replaceChildren();
  for (const [name, pick, stroke] of specs) {
    const box = h('div', { class: 'chart', 'data-chart': name });
    container.append(box);
    const data = [t, series.points.map(pick)];
    // eslint-disable-next-line no-new
    const now = Date.now() / 1000;
    new uPlot({
      title: name, width: 360, height: 160,
      scales: { x: { time: true, range: () => [now - 15 * 60, now] } },
      series: [{}, { label: name, stroke, width: 2, spanGaps: true, points: { show: data[0].length < 3 } }],
      axes: [{}, { size: 50 }],
    }, data, box);
    box.dataset.points = String(series.points.filter((p) => pick(p) !== null).length);
  }
}

// The live tap of a Service or workload: newest first, at most 50 lines.
export function tap(container, path) {
  const table = h('table', { class: 'tap' }, h('thead', {}, h('tr', {}, ['direction', 'method', 'status', 'ms', 'authority', 'path', 'peer', 'weft-error'].map((c) => h('th', {}, c)))));
  const body = h('tbody');
  table.append(body);
  const note = h('p', { class: 'muted' }, token() ? 'waiting for requests…' : 'the live tap needs the admin token (above), or `weft dashboard`, which sends it');
  container.replaceChildren(note, table);
  const controller = new AbortController();
  stream(`${path}/tap?max=1000&rate=50&seconds=600`, (line) => {
    if (line.error) { note.textContent = `tap: ${line.error}`; return; }
    if (line.end || !line.method) return;
    note.textContent = '';
    const peer = line.direction === 'inbound' ? line.peer_principal : (line.destination_principal || line.destination_workload);
    const row = h('tr', { class: line.status >= 400 || line.weft_error ? 'bad' : '' },
      [line.direction, line.method, line.status, (line.duration_ms || 0).toFixed(1), line.authority, line.path, (peer || '').replace(/^spiffe:\/\/[^/]+\//, ''), line.weft_error || ''].map((c) => h('td', {}, c ?? '')));
    body.prepend(row);
    while (body.children.length > 50) body.lastChild.remove();
  }, controller.signal).catch((e) => { if (e.name !== 'AbortError') note.textContent = String(e.message); });
  return () => controller.abort();
}

function routes(info) {
  if (!info.routes.length) return h('p', { class: 'muted' }, 'No route: the Service\'s own default (every endpoint, balanced).');
  return h('div', {}, info.routes.map((r) => h('div', { class: 'route' },
    h('h4', {}, `${r.kind} ${r.name}`),
    h('ul', {}, r.rules.map((rule) => h('li', {},
      rule.matches.length ? `when ${rule.matches.join(' or ')}: ` : 'otherwise: ',
      rule.backends.map((b) => `${b.service} ${b.share}%`).join(', '),
      rule.filters.length ? ` (filters: ${rule.filters.join(', ')})` : '')))))); 
}

function policies(info) {
  const rows = [
    ...info.peerAuthentications.map((p) => h('li', {}, `PeerAuthentication ${p.name}: ${p.mode}`)),
    ...info.authorizationPolicies.map((p) => h('li', {}, `AuthorizationPolicy ${p.name}: ${p.action}`)),
  ];
  return rows.length ? h('ul', {}, rows) : h('p', { class: 'muted' }, 'None: PERMISSIVE mutual TLS, every caller allowed.');
}

async function certificates(container, workloads) {
  const rows = [];
  for (const w of workloads) {
    try {
      const cfg = await get(`/proxies/${w}/config`);
      const cert = findCert(cfg);
      rows.push(h('li', {}, `${w}: ${cert ? `${cert.spiffeId}, expires ${new Date(cert.notAfterUnix * 1000).toISOString()}` : 'no certificate yet'}`));
    } catch (e) {
      rows.push(h('li', { class: 'muted' }, `${w}: ${e.status === 401 ? 'needs the admin token' : e.message}`));
    }
  }
  container.replaceChildren(h('ul', {}, rows));
}

function findCert(v) {
  if (!v || typeof v !== 'object') return null;
  if (v.spiffeId && v.notAfterUnix) return v;
  for (const x of Object.values(v)) {
    const found = findCert(x);
    if (found) return found;
  }
  return null;
}

// Renders the page of `kind` (`service` or `workload`) `name` into `main`; returns a stopper.
export async function page(main, kind, name, stat) {
  const info = await get(`/dashboard/api/${kind}/${name}`);
  const row = (kind === 'service' ? stat.services : stat.workloads).find((r) => r.name === name);
  const g = row || { rps: 0, successRate: null, p99Ms: null };
  const chartBox = h('div', { class: 'charts' });
  const tapBox = h('div');
  const certBox = h('div', {}, h('p', { class: 'muted' }, 'reading…'));
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/' }, '← the mesh')),
    h('h2', {}, `${kind === 'service' ? 'Service' : 'Workload'} ${name}`),
    h('p', { class: `golden ${health(g.successRate)}` }, `last minute: ${label(g)}`),
    h('section', {}, h('h3', {}, 'Golden metrics (15 minutes)'), chartBox),
    h('section', {}, h('h3', {}, 'Workloads'), h('ul', {}, info.workloads.map((w) => h('li', {}, h('a', { href: `#/workload/${w}` }, w))))),
    h('section', {}, h('h3', {}, 'Routes'), routes(info)),
    h('section', {}, h('h3', {}, 'Policies that apply'), policies(info)),
    h('section', {}, h('h3', {}, 'Certificates'), certBox),
    h('section', {}, h('h3', {}, 'Live tap'), tapBox),
  );
  await charts(chartBox, `${kind}=${name}`);
  certificates(certBox, info.workloads);
  const path = kind === 'service' ? `/services/${name}` : `/proxies/${name}`;
  const stopTap = tap(tapBox, path);
  const timer = setInterval(() => charts(chartBox, `${kind}=${name}`).catch(() => {}), 5000);
  return () => { stopTap(); clearInterval(timer); };
}

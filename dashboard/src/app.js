// Weft's dashboard: the mesh on one page. The overview is the service graph with golden
// metrics on every edge, the Services' table and the configuration errors; a Service's or
// workload's page has its charts, routes, policies, certificates and live tap. Everything
// updates every few seconds without a reload, and nothing on the page can change the mesh.

import 'uplot/dist/uPlot.min.css';
import './style.css';
import { get, setToken, token } from './api.js';
import { draw, health, label, short, update } from './graph.js';
import { h, page } from './pages.js';

const REFRESH_MS = 3000;
const main = document.getElementById('main');
let stop = () => {};
let cy = null;
let lastStat = null;

async function refresh() {
  try {
    const [stat, status] = await Promise.all([get('/stat?window=60s'), get('/status')]);
    lastStat = stat;
    document.getElementById('generation').textContent = `generation ${status.generation}`;
    document.getElementById('live').className = 'live on';
    errors(status);
    const route = location.hash.slice(2).split('/');
    if (!route[0]) overview(stat);
    return stat;
  } catch (e) {
    document.getElementById('live').className = 'live off';
    showErrors([`the control plane did not answer: ${e.message}`]);
    return null;
  }
}

function errors(status) {
  showErrors([...(status.rejected || []), ...(status.warnings || []).map((w) => `warning: ${w}`)]);
}

function showErrors(list) {
  const box = document.getElementById('errors');
  box.hidden = list.length === 0;
  box.replaceChildren(h('h3', {}, 'Configuration errors'), h('ul', {}, list.map((e) => h('li', {}, e))));
}

function overview(stat) {
  if (cy && document.getElementById('graph') && update(cy, stat)) {
    table(stat);
    edges(stat);
    return;
  }
  const graph = h('div', { id: 'graph' });
  main.replaceChildren(
    h('section', {}, h('h2', {}, 'Service graph'), h('p', { class: 'muted' }, 'edges: requests per second · success rate · p99 over the last minute; dashed: not mutual TLS'), graph),
    h('section', { id: 'edges' }),
    h('section', { id: 'services' }),
  );
  cy = draw(graph, stat, (href) => { location.hash = href; });
  table(stat);
  edges(stat);
}

// The graph's edges as a table: who calls whom, how much, how well, how securely.
function edges(stat) {
  const rows = (stat.edges || []).filter((e) => e.destination !== 'unknown').map((e) => h('tr', { class: health(e.successRate) },
    h('td', {}, `${short(e.source)} → ${short(e.destination)}`),
    h('td', {}, label(e)),
    h('td', {}, e.mtls ? 'mutual TLS' : 'plaintext')));
  document.getElementById('edges')?.replaceChildren(
    h('h2', {}, 'Calls'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'caller → callee'), h('th', {}, 'last minute'), h('th', {}, 'security'))), h('tbody', {}, rows)));
}

function table(stat) {
  const rows = (stat.services || []).map((s) => h('tr', { class: health(s.successRate) },
    h('td', {}, h('a', { href: `#/service/${s.name}` }, s.name)),
    h('td', {}, s.workloads.length),
    h('td', {}, label(s))));
  document.getElementById('services')?.replaceChildren(
    h('h2', {}, 'Services'),
    h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'workloads'), h('th', {}, 'last minute'))), h('tbody', {}, rows)));
}

async function route() {
  stop();
  stop = () => {};
  cy = null;
  const [kind, ...rest] = location.hash.slice(2).split('/');
  const stat = lastStat || (await refresh());
  if ((kind === 'service' || kind === 'workload') && rest.length === 2) {
    try {
      stop = await page(main, kind, rest.join('/'), stat || { services: [], workloads: [] });
    } catch (e) {
      main.replaceChildren(h('p', {}, h('a', { href: '#/' }, '← the mesh')), h('p', { class: 'bad' }, e.message));
    }
  } else if (stat) {
    overview(stat);
  }
}

const form = document.getElementById('token-form');
const input = document.getElementById('token');
input.value = token();
form.addEventListener('submit', (e) => { e.preventDefault(); setToken(input.value); route(); });
window.addEventListener('hashchange', route);
route();
setInterval(refresh, REFRESH_MS);

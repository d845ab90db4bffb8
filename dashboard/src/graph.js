// The service graph: each Service a box holding its workloads, each observed call an edge
// between workloads labelled with its request rate, success rate and p99, coloured by
// health and dashed when it was not mutual TLS. Callers outside the mesh are one node.

import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';

cytoscape.use(dagre);

export const OUTSIDE = '(outside the mesh)';

export function health(successRate) {
  if (successRate === null || successRate === undefined) return 'idle';
  if (successRate >= 0.999) return 'healthy';
  if (successRate >= 0.95) return 'degraded';
  return 'failing';
}

const COLOURS = { healthy: '#2e9e5b', degraded: '#d98e04', failing: '#d1352b', idle: '#9aa0a6' };

export function label(g) {
  const rate = g.rps >= 10 ? g.rps.toFixed(0) : g.rps.toFixed(1);
  const sr = g.successRate === null ? '–' : `${(g.successRate * 100).toFixed(1)}%`;
  const p99 = g.p99Ms === null ? '–' : `${g.p99Ms < 10 ? g.p99Ms.toFixed(1) : g.p99Ms.toFixed(0)} ms`;
  return `${rate} rps · ${sr} · p99 ${p99}`;
}

// Elements from a `/stat` report: Services (compound nodes), workloads, edges.
export function elements(stat) {
  const els = [];
  const workloads = new Set();
  // A workload sits in the first Service that selects it (a node has one parent); Services
  // left with no workload of their own (subsets such as reviews-v1) are not drawn.
  const parentOf = new Map();
  const services = new Map();
  for (const s of stat.services || []) {
    for (const w of s.workloads || []) if (!parentOf.has(w)) parentOf.set(w, s.name);
    services.set(s.name, { data: { id: `svc:${s.name}`, label: s.name, kind: 'service', href: `#/service/${s.name}` } });
  }
  for (const name of new Set(parentOf.values())) els.push(services.get(name));
  for (const [w, s] of parentOf) parentOf.set(w, `svc:${s}`);
  const addWorkload = (w) => {
    if (workloads.has(w)) return;
    workloads.add(w);
    const data = { id: `wl:${w}`, label: w.split('/').pop(), kind: w === OUTSIDE ? 'outside' : 'workload', href: w === OUTSIDE ? '' : `#/workload/${w}` };
    if (parentOf.has(w)) data.parent = parentOf.get(w);
    els.push({ data });
  };
  for (const w of stat.workloads || []) addWorkload(w.name);
  for (const e of stat.edges || []) {
    if (e.destination === 'unknown') continue;
    addWorkload(e.source);
    addWorkload(e.destination);
    els.push({
      data: {
        id: `edge:${e.source}->${e.destination}`,
        source: `wl:${e.source}`,
        target: `wl:${e.destination}`,
        label: label(e),
        health: health(e.successRate),
        mtls: e.mtls ? 'mtls' : 'plaintext',
        rps: e.rps,
      },
    });
  }
  return els;
}

// What the graph shows, as text on its container (for tests and assistive tools: a canvas
// has no text of its own).
function describe(container, els) {
  container.dataset.nodes = els.filter((e) => !e.data.source).map((e) => e.data.id.replace(/^(svc|wl):/, '')).join(' ');
  container.dataset.edges = els.filter((e) => e.data.source).map((e) => `${short(e.data.source)} → ${short(e.data.target)}`).join(', ');
}

export function short(id) {
  return id.replace(/^(svc|wl):/, '').split('/').pop();
}

export function draw(container, stat, onSelect) {
  const cy = cytoscape({
    container,
    elements: elements(stat),
    wheelSensitivity: 0.3,
    style: [
      { selector: 'node', style: { label: 'data(label)', 'font-size': 11, 'text-valign': 'center', 'background-color': '#1f5fa8', color: '#fff', width: 'label', height: 26, padding: 8, shape: 'round-rectangle' } },
      { selector: 'node[kind = "outside"]', style: { 'background-color': '#6b6f74' } },
      { selector: ':parent', style: { 'background-color': '#eef3fa', 'border-color': '#1f5fa8', 'border-width': 1, color: '#1f5fa8', 'text-valign': 'top', 'text-halign': 'center', 'font-weight': 'bold', shape: 'round-rectangle' } },
      { selector: 'edge', style: { width: 2, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', label: 'data(label)', 'font-size': 9, 'text-background-color': '#fff', 'text-background-opacity': 0.85, 'text-rotation': 'autorotate' } },
      ...Object.entries(COLOURS).map(([h, c]) => ({ selector: `edge[health = "${h}"]`, style: { 'line-color': c, 'target-arrow-color': c, color: c } })),
      { selector: 'edge[mtls = "plaintext"]', style: { 'line-style': 'dashed' } },
    ],
    layout: { name: 'dagre', rankDir: 'LR', nodeSep: 30, rankSep: 120 },
  });
  describe(container, cy.elements().map((e) => ({ data: e.data() })));
  cy.on('tap', 'node', (evt) => {
    const href = evt.target.data('href');
    if (href) onSelect(href);
  });
  return cy;
}

// Updates labels and colours in place (the layout stays put); redraws when the shape changed.
export function update(cy, stat) {
  const fresh = elements(stat);
  const ids = new Set(fresh.map((e) => e.data.id));
  const same = cy.elements().length === fresh.length && cy.elements().every((e) => ids.has(e.id()));
  if (!same) return false;
  for (const e of fresh) {
    if (e.data.source) cy.getElementById(e.data.id).data(e.data);
  }
  describe(cy.container(), fresh);
  return true;
}

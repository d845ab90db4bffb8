// The dashboard as a person would check it, in headless Chromium (Debian's `chromium`,
// driven by playwright-core): run by crates/weft/tests/dashboard.rs against a real mesh
// (`weft up` of the shop), with the steps that need the mesh (a denied request, a broken
// config) done by the Rust test when this script asks on stdout and waits for a line on
// stdin. Screenshots go to SHOTS.
//
//   node tests/browser.mjs http://127.0.0.1:4281 SHOTS_DIR
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node tests/browser.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(step) {
  console.log(`STEP ${step}`);
  const answer = await lines.next();
  if (answer.done || answer.value.trim() !== 'done') throw new Error(`the test did not do ${step}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
const external = [];
page.on('request', (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });
page.on('pageerror', (e) => { console.error(`page error: ${e.message}`); failed = true; });

async function check(what, fn) {
  try {
    await fn();
    console.log(`ok: ${what}`);
  } catch (e) {
    failed = true;
    console.error(`FAILED: ${what}: ${e.message}`);
    await page.screenshot({ path: join(shots, `failed-${what.replace(/\W+/g, '-')}.png`) }).catch(() => {});
  }
}

const text = async (selector) => (await page.locator(selector).allInnerTexts()).join('\n');

await page.goto(`${base}/dashboard/`);
await check('the graph shows the shop\'s services and the split\'s edges', async () => {
  await page.waitForFunction(() => {
    const g = document.getElementById('graph');
    return g && (g.dataset.nodes || '').includes('shop/reviews') && (g.dataset.edges || '').includes('reviews-v2-0');
  }, null, { timeout: 30000 });
  const nodes = await page.locator('#graph').getAttribute('data-nodes');
  for (const s of ['shop/frontend', 'shop/reviews', 'shop/ratings']) {
    if (!nodes.includes(s)) throw new Error(`${s} not in the graph: ${nodes}`);
  }
  const edges = await text('#edges');
  for (const e of ['frontend-0 → reviews-v1-0', 'frontend-0 → reviews-v2-0', 'frontend-0 → ratings-0']) {
    if (!edges.includes(e)) throw new Error(`no edge ${e}: ${edges}`);
  }
  await page.screenshot({ path: join(shots, 'graph.png') });
});

await check('a service page\'s chart has data', async () => {
  await page.goto(`${base}/dashboard/#/service/shop/reviews`);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-chart]')].some((c) => Number(c.dataset.points) > 0), null, { timeout: 30000 });
  const routes = await text('section');
  if (!routes.includes('shop/reviews-v1 90%') || !routes.includes('shop/reviews-v2 10%')) throw new Error(`the 90/10 split is not shown: ${routes}`);
  if (!routes.includes('AuthorizationPolicy shop/reviews-readers: ALLOW')) throw new Error(`policies not shown: ${routes}`);
  await page.screenshot({ path: join(shots, 'service.png'), fullPage: true });
});

await check('a denied request appears in the tap within seconds', async () => {
  await page.waitForFunction(() => document.querySelector('table.tap') !== null, null, { timeout: 10000 });
  await ask('deny');
  await page.waitForFunction(() => [...document.querySelectorAll('table.tap tr')].some((r) => r.textContent.includes('403') && r.textContent.includes('denied')), null, { timeout: 10000 });
  await page.screenshot({ path: join(shots, 'tap.png'), fullPage: true });
});

await check('an invalid config change shows its error', async () => {
  await page.goto(`${base}/dashboard/`);
  await ask('break');
  await page.waitForFunction(() => {
    const e = document.getElementById('errors');
    return e && !e.hidden && e.textContent.includes('broken-route');
  }, null, { timeout: 20000 });
  await page.screenshot({ path: join(shots, 'error.png') });
});

await check('the page fetched nothing from elsewhere', async () => {
  if (external.length) throw new Error(external.join(', '));
});

await browser.close();
console.log(failed ? 'FAILED' : 'PASSED');
process.exit(failed ? 1 : 0);

// The dashboard as a person would check it, in headless Chromium (Debian's `chromium`,
// driven by playwright-core): run by crates/weft/tests/dashboard.rs against a real mesh
// (`weft up` of the shop), with the steps that need the mesh (a denied request, a broken
// config) done by the Rust test when this script asks on stdout and waits for a line on
// stdin. Screenshots go to SHOTS.
//
//   node tests/browser.mjs http://127.0.0.1:4281 SHOTS_DIR
import { createInterface } from 'node:readline';
import { open } from './harness.mjs';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node tests/browser.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(step) {
  console.log(`STEP ${step}`);
  const answer = await lines.next();
  if (answer.done || answer.value.trim() !== 'done') throw new Error(`the test did not do ${step}`);
}

const run = await open(base, shots);
const { page, check, text } = run;

await page.goto(`${base}/dashboard/`);
await check('the graph shows the shop\'s services and the split\'s edges', async () => {
  await page.waitForFunction(() => {
    const g = document.getElementById('graph');
    return g && (g.dataset.nodes || '').includes('shop/reviews') && (g.dataset.edges || '').includes('reviews-v2-0');
  }, null, { timeout: 30000 });
  await run.expectGraph(['shop/frontend', 'shop/reviews', 'shop/ratings'], ['frontend-0 → reviews-v1-0', 'frontend-0 → reviews-v2-0', 'frontend-0 → ratings-0']);
  await run.shot('graph.png');
});

await check('a service page\'s chart has data', async () => {
  await page.goto(`${base}/dashboard/#/service/shop/reviews`);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-chart]')].some((c) => Number(c.dataset.points) > 0), null, { timeout: 30000 });
  const routes = await text('section');
  if (!routes.includes('shop/reviews-v1 90%') || !routes.includes('shop/reviews-v2 10%')) throw new Error(`the 90/10 split is not shown: ${routes}`);
  if (!routes.includes('AuthorizationPolicy shop/reviews-readers: ALLOW')) throw new Error(`policies not shown: ${routes}`);
  await run.shot('service.png', { fullPage: true });
});

await check('a denied request appears in the tap within seconds', async () => {
  await page.waitForFunction(() => document.querySelector('table.tap') !== null, null, { timeout: 10000 });
  await ask('deny');
  await page.waitForFunction(() => [...document.querySelectorAll('table.tap tr')].some((r) => r.textContent.includes('403') && r.textContent.includes('denied')), null, { timeout: 10000 });
  await run.shot('tap.png', { fullPage: true });
});

await check('an invalid config change shows its error', async () => {
  await page.goto(`${base}/dashboard/`);
  await ask('break');
  await page.waitForFunction(() => {
    const e = document.getElementById('errors');
    return e && !e.hidden && e.textContent.includes('broken-route');
  }, null, { timeout: 20000 });
  await run.shot('error.png');
});

await run.finish();

// The dashboard of the three-host example (examples/hosts/run.sh --check), in headless
// Chromium as tests/browser.mjs opens it, through `weft dashboard` relaying one replica. Every
// proxy is on a joined host, so everything the page reads of a proxy (metrics, certificates,
// the tap) crosses a host's tunnel. It checks what a person would: the graph holds the shop's
// Services and the frontend's edges to workloads on the two other hosts, and the reviews
// page (workloads on hosts 1 and 2) has charts with data, both workloads' certificates and
// the frontend's requests in its live tap. Screenshots go to SHOTS.
//
//   node tests/hosts.mjs http://127.0.0.1:4691 SHOTS_DIR
import { open } from './harness.mjs';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node tests/hosts.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
const run = await open(base, shots);
const { page, check, text } = run;

await page.goto(`${base}/dashboard/`);
await check('the graph shows the shop across three hosts', async () => {
  await page.waitForFunction(() => {
    const g = document.getElementById('graph');
    const edges = g ? g.dataset.edges || '' : '';
    return edges.includes('reviews-v2') && edges.includes('ratings') && edges.includes('reviews-v1');
  }, null, { timeout: 30000 });
  await run.expectGraph(['shop/frontend', 'shop/reviews', 'shop/ratings'], ['frontend-0 → reviews-v1', 'frontend-0 → reviews-v2', 'frontend-0 → ratings']);
  await run.shot('hosts-graph.png');
});

await check('the reviews page reads proxies on two other hosts', async () => {
  await page.goto(`${base}/dashboard/#/service/shop/reviews`);
  await page.waitForFunction(() => [...document.querySelectorAll('[data-chart]')].some((c) => Number(c.dataset.points) > 0), null, { timeout: 30000 });
  // Certificates come from each proxy's /config, through its host's tunnel.
  await page.waitForFunction(() => {
    const t = document.body.innerText;
    return t.includes('shop/reviews-v1: spiffe://') && t.includes('shop/reviews-v2: spiffe://');
  }, null, { timeout: 20000 });
  const body = await text('body');
  if (!body.includes('spiffe://cluster.local/ns/shop/sa/reviews, expires')) throw new Error(`no certificate: ${body}`);
  // The frontend calls reviews every second or so: its requests reach the tap.
  await page.waitForFunction(() => [...document.querySelectorAll('table.tap tbody tr')].some((r) => r.textContent.includes('inbound') && r.textContent.includes('frontend')), null, { timeout: 20000 });
  await run.shot('hosts-reviews.png', { fullPage: true });
});

await run.finish();

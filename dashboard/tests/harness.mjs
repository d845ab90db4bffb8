// What the browser checks share (tests/browser.mjs, tests/hosts.mjs): headless Chromium
// (Debian's `chromium`, driven by playwright-core), a page that records every request to
// another origin and every page error, and `check`, which runs one named check, prints
// `ok: …` or `FAILED: …` and keeps a screenshot of a failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

// Opens the browser and a page on `base`; screenshots go to `shots`.
export async function open(base, shots) {
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const run = { browser, page, shots, failed: false, external: [] };
  page.on('request', (r) => { if (!r.url().startsWith(base)) run.external.push(r.url()); });
  page.on('pageerror', (e) => { console.error(`page error: ${e.message}`); run.failed = true; });
  run.check = async (what, fn) => {
    try {
      await fn();
      console.log(`ok: ${what}`);
    } catch (e) {
      run.failed = true;
      console.error(`FAILED: ${what}: ${e.message}`);
      await page.screenshot({ path: join(shots, `failed-${what.replace(/\W+/g, '-')}.png`) }).catch(() => {});
    }
  };
  run.text = async (selector) => (await page.locator(selector).allInnerTexts()).join('\n');
  run.shot = (name, options = {}) => page.screenshot({ path: join(shots, name), ...options });
  // Throws unless the graph holds `services` as nodes and `edges` among its edges' labels.
  run.expectGraph = async (services, edges) => {
    const nodes = await page.locator('#graph').getAttribute('data-nodes');
    for (const s of services) {
      if (!nodes.includes(s)) throw new Error(`${s} not in the graph: ${nodes}`);
    }
    const shown = await run.text('#edges');
    for (const e of edges) {
      if (!shown.includes(e)) throw new Error(`no edge ${e}: ${shown}`);
    }
  };
  // The last check of every run, then the verdict line the callers look for.
  run.finish = async () => {
    await run.check('the page fetched nothing from elsewhere', async () => {
      if (run.external.length) throw new Error(run.external.join(', '));
    });
    await browser.close();
    console.log(run.failed ? 'FAILED' : 'PASSED');
    process.exit(run.failed ? 1 : 0);
  };
  return run;
}

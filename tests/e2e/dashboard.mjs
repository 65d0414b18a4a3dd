// Drives zonegate-proxy's dashboard in real headless Chromium (Debian's chromium, driven by
// playwright-core): sign-in refuses a wrong token, accepts the right one, the page loads with no
// console errors, the charts render and update while traffic runs. Prints a JSON report and
// saves a screenshot.  usage: node dashboard.mjs BASE_URL ADMIN_TOKEN SCREENSHOT.png
import { chromium } from 'playwright-core';

const [base, token, shot] = process.argv.slice(2);
const report = { consoleErrors: [], pageErrors: [], failedRequests: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('console', (m) => { if (m.type() === 'error') report.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  page.on('requestfailed', (r) => report.failedRequests.push(r.url()));

  // Not signed in: the sign-in form, with 401.
  const first = await page.goto(base + '/admin/');
  report.unauthenticatedStatus = first.status();
  report.formShown = await page.locator('form.login input[name=token]').count() === 1;

  // A wrong token is refused.
  await page.fill('input[name=token]', 'not-the-token');
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  report.wrongTokenStatus = wrong.status();
  report.wrongTokenMessage = (await page.locator('#error').textContent()) || '';

  // The right token signs in; the 401s of the sign-in page are expected, not errors.
  report.consoleErrors = [];
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  report.dashboardStatus = (await page.evaluate(() => document.title));
  await page.waitForFunction(() => Number(document.body.dataset.samples || 0) >= 3, null, { timeout: 15000 });
  const s1 = Number(await page.evaluate(() => document.body.dataset.samples));
  // The page keeps polling: wait for the next sample (or the full window) instead of a fixed time.
  report.samplesGrew = await page
    .waitForFunction((before) => {
      const n = Number(document.body.dataset.samples || 0);
      return n > before || n >= 300;
    }, s1, { timeout: 15000 })
    .then(() => true, () => false);
  report.canvases = await page.locator('#charts canvas').count();
  report.status = await page.locator('#status').textContent();
  report.db = await page.locator('#db').textContent();
  report.pool = await page.locator('#pool').textContent();
  report.breaker = await page.locator('#breaker').textContent();
  report.ratelimit = await page.locator('#ratelimit').textContent();
  // The charts' data, from the same endpoint the page polls.
  report.series = await page.evaluate(async () => {
    const r = await fetch('/admin/api/series', { credentials: 'same-origin' });
    const b = await r.json();
    return b.samples.slice(-5).map((p) => p.rps);
  });
  await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));

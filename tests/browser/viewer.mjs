// Drives the viewer page in headless Chromium (Debian's, through playwright-core):
// opens a stream on a phone-sized screen, waits until the video's currentTime
// advances and the live viewer count shows, then opens a second tab and waits for
// the first tab's count to move. Prints one JSON line; exits non-zero on failure.
//
//   node tests/browser/viewer.mjs <page url> <viewers before the browser joins>
import { pathToFileURL } from 'node:url';

// playwright-core lives in .nova/tools (scripts/install-deps.sh); PLAYWRIGHT_CORE points at it.
const { chromium } = await import(
  process.env.PLAYWRIGHT_CORE ? pathToFileURL(process.env.PLAYWRIGHT_CORE).href : 'playwright-core');

const [url, before] = process.argv.slice(2);
const base = Number(before);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const fail = async (what, err) => {
  console.log(JSON.stringify({ ok: false, what, error: String(err && err.message || err) }));
  await browser.close();
  process.exit(1);
};
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  await page.goto(url);
  const countIs = (p, n) => p.waitForFunction(
    (want) => document.getElementById('viewer-count').textContent === String(want), n, { timeout: 15000 });
  await countIs(page, base + 1).catch((e) => fail('first tab shows the count', e));
  await page.waitForFunction(() => window.novaPlayer && window.novaPlayer.video.currentTime > 1, null, { timeout: 30000 })
    .catch((e) => fail(`video starts playing (console: ${logs.slice(-5).join(' | ')})`, e));
  const t1 = await page.evaluate(() => window.novaPlayer.video.currentTime);
  await page.waitForFunction((t) => window.novaPlayer.video.currentTime > t + 1, t1, { timeout: 15000 })
    .catch((e) => fail('currentTime keeps advancing', e));
  const t2 = await page.evaluate(() => window.novaPlayer.video.currentTime);
  const second = await context.newPage();
  await second.goto(url);
  await countIs(page, base + 2).catch((e) => fail('first tab sees the second tab join', e));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  const status = await page.textContent('#stream-status');
  console.log(JSON.stringify({ ok: true, t1, t2, count: base + 2, status, overflow }));
  await browser.close();
} catch (err) {
  await fail('unexpected', err);
}

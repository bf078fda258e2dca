// Drives the viewer page on a signed stream in headless Chromium (Debian's, through
// playwright-core): opens #/streams/<id>?token=<token>, waits until the video's
// currentTime advances and the page shows the expected viewer count. Prints one
// JSON line; exits non-zero on failure.
//
//   node tests/browser/signed.mjs <page url with token> <expected viewer count>
import { pathToFileURL } from 'node:url';

const { chromium } = await import(
  process.env.PLAYWRIGHT_CORE ? pathToFileURL(process.env.PLAYWRIGHT_CORE).href : 'playwright-core');

const [url, expected] = process.argv.slice(2);
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
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(url);
  await page.waitForFunction(() => window.novaPlayer && window.novaPlayer.video.currentTime > 1, null, { timeout: 30000 })
    .catch((e) => fail(`video starts playing (console: ${logs.slice(-5).join(' | ')})`, e));
  const t1 = await page.evaluate(() => window.novaPlayer.video.currentTime);
  await page.waitForFunction((t) => window.novaPlayer.video.currentTime > t + 1, t1, { timeout: 15000 })
    .catch((e) => fail('currentTime keeps advancing', e));
  const source = await page.evaluate(() => window.novaPlayer.url);
  await page.waitForFunction(
    (want) => document.getElementById('viewer-count').textContent === String(want), expected, { timeout: 20000 })
    .catch((e) => fail('the page shows the count', e));
  console.log(JSON.stringify({ ok: true, t1, tokenized: source.includes('/hls/t/'), sockets: sockets.length }));
  await browser.close();
} catch (err) {
  await fail('unexpected', err);
}

// Drives the viewer page on a signed stream in headless Chromium (Debian's, through
// playwright-core). Prints one JSON line; exits non-zero on failure.
//
//   node tests/browser/signed.mjs <page url with token> <expected viewer count>
//     opens #/streams/<id>?token=<token>, waits until the video's currentTime
//     advances and the page shows the expected viewer count, and reports the
//     page's WebSockets and the events they carried.
//   node tests/browser/signed.mjs <page url without token> refused
//     opens #/streams/<id>, waits until the origin has refused the plain playlist
//     twice (the page retries) and the page says the stream is private, and
//     reports what played and which media answers were successful.
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
// HLS files of the origin (playlists and segments), with or without a token.
const MEDIA = /\/(?:hls|abr)\/.*\.(?:m3u8|ts)$/;

try {
  const page = await browser.newPage();
  const logs = [];
  page.on('console', (m) => logs.push(m.text()));
  const sockets = [];
  const events = [];
  page.on('websocket', (ws) => {
    sockets.push(ws.url());
    ws.on('framereceived', (frame) => {
      try {
        const m = JSON.parse(frame.payload);
        events.push({ type: m.type, viewer_count: m.viewer_count });
      } catch (_) { /* not JSON */ }
    });
  });
  const media = [];
  page.on('response', (r) => { if (MEDIA.test(new URL(r.url()).pathname)) media.push(r.status()); });

  if (expected === 'refused') {
    let refusals = 0;
    const refusedTwice = page.waitForResponse(
      (r) => MEDIA.test(new URL(r.url()).pathname) && r.status() === 403 && ++refusals >= 2, { timeout: 30000 });
    await page.goto(url);
    await refusedTwice.catch((e) => fail(`the origin refuses the plain playlist twice (answers: ${media.join(',')})`, e));
    await page.waitForFunction(
      () => document.getElementById('player-message').textContent.includes('private'), null, { timeout: 10000 })
      .catch((e) => fail('the page says the stream is private', e));
    const state = await page.evaluate(() => ({
      currentTime: window.novaPlayer.video.currentTime,
      readyState: window.novaPlayer.video.readyState,
      message: document.getElementById('player-message').textContent,
      source: window.novaPlayer.url,
    }));
    console.log(JSON.stringify({
      ok: true, ...state, tokenized: String(state.source).includes('/t/'),
      refused: media.filter((s) => s === 403).length, served: media.filter((s) => s < 400).length,
    }));
    await browser.close();
    process.exit(0);
  }

  await page.goto(url);
  await page.waitForFunction(() => window.novaPlayer && window.novaPlayer.video.currentTime > 1, null, { timeout: 30000 })
    .catch((e) => fail(`video starts playing (console: ${logs.slice(-5).join(' | ')})`, e));
  const t1 = await page.evaluate(() => window.novaPlayer.video.currentTime);
  await page.waitForFunction((t) => window.novaPlayer.video.currentTime > t + 1, t1, { timeout: 15000 })
    .catch((e) => fail('currentTime keeps advancing', e));
  const source = await page.evaluate(() => window.novaPlayer.url);
  await page.waitForFunction(
    (want) => document.getElementById('viewer-count').textContent === String(want), expected, { timeout: 20000 })
    .catch((e) => fail(`the page shows the count (events: ${JSON.stringify(events)})`, e));
  console.log(JSON.stringify({
    ok: true, t1, tokenized: source.includes('/hls/t/'), sockets: sockets.length, events,
    served: media.filter((s) => s < 400).length, refused: media.filter((s) => s >= 400).length,
  }));
  await browser.close();
} catch (err) {
  await fail('unexpected', err);
}

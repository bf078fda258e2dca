// Plays an on-demand asset's HLS VOD rendition to its end with hls.js in headless
// Chromium (Debian's, through playwright-core): a blank page, hls.js from
// .nova/tools, a muted <video> at 4x speed; waits for the `ended` event. Prints one
// JSON line (ok, duration, currentTime, whether it ended); exits non-zero on failure.
//
//   node tests/browser/vod.mjs <hls url> <path of hls.min.js>
import { pathToFileURL } from 'node:url';

const { chromium } = await import(
  process.env.PLAYWRIGHT_CORE ? pathToFileURL(process.env.PLAYWRIGHT_CORE).href : 'playwright-core');

const [url, hlsJs] = process.argv.slice(2);
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
  await page.setContent('<video id="v" muted playsinline></video>');
  await page.addScriptTag({ path: hlsJs });
  await page.evaluate((src) => {
    const video = document.getElementById('v');
    window.vod = { ended: false, errors: [] };
    video.addEventListener('ended', () => { window.vod.ended = true; });
    const hls = new window.Hls();
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) window.vod.errors.push(`${data.type}: ${data.details}`);
    });
    hls.loadSource(src);
    hls.attachMedia(video);
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => {
      video.playbackRate = 4;
      video.play();
    });
  }, url);
  await page.waitForFunction(() => window.vod.ended || window.vod.errors.length > 0, null, { timeout: 60000 })
    .catch((e) => fail(`the video plays to its end (console: ${logs.slice(-5).join(' | ')})`, e));
  const result = await page.evaluate(() => {
    const video = document.getElementById('v');
    return { ended: window.vod.ended, errors: window.vod.errors, duration: video.duration, currentTime: video.currentTime };
  });
  if (!result.ended) await fail('the video plays to its end', result.errors.join('; '));
  console.log(JSON.stringify({ ok: true, ...result }));
  await browser.close();
} catch (err) {
  await fail('unexpected', err);
}

// G7 viewer startup: opens the viewer page in headless Chromium (Debian's, through
// playwright-core) <runs> times, each in a fresh context (no cache), and times from
// the navigation until the video has a first frame (readyState ≥ 2 and currentTime
// > 0). Prints one JSON line: {"ms": [...]} or {"error": "..."}.
//
//   node tests/benches/suite/startup.mjs <page url> <runs>
import { launch } from '../../browser/launch.mjs';

const [url, runs] = process.argv.slice(2);
const browser = await launch();
const ms = [];
try {
  for (let i = 0; i < Number(runs); i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const started = Date.now();
    await page.goto(url);
    await page.waitForFunction(
      () => window.novaPlayer && window.novaPlayer.video.readyState >= 2 && window.novaPlayer.video.currentTime > 0,
      null, { timeout: 30000, polling: 10 });
    ms.push(Date.now() - started);
    await context.close();
  }
  console.log(JSON.stringify({ ms }));
} catch (err) {
  console.log(JSON.stringify({ ms, error: String(err && err.message || err) }));
}
await browser.close();

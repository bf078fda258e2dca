// G7 quality switch: opens the viewer page of an ABR stream in headless Chromium
// (Debian's, through playwright-core), waits until hls.js plays it, then <runs>
// times forces a level whose height differs from the picture on screen
// (`hls.currentLevel = n`, which drops the buffer) and times until the video shows
// a frame of that height (`videoHeight`) and is playing. Prints one JSON line:
// {"ms": [...], "levels": [...]} or {"error": "...", ...}.
//
//   node tests/benches/suite/abr_switch.mjs <page url> <runs>
import { launch } from '../../browser/launch.mjs';

const [url, runs] = process.argv.slice(2);
const browser = await launch();
const ms = [];
let levels = [];
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(
    () => {
      const p = window.novaPlayer;
      return p && p.hls && p.hls.levels.length > 1 && p.video.readyState >= 2 && p.video.currentTime > 0;
    },
    null, { timeout: 60000, polling: 10 });
  levels = await page.evaluate(() => window.novaPlayer.hls.levels.map((l) => l.height));
  for (let i = 0; i < Number(runs); i++) {
    // Timed inside the page: from the forced switch to the first poll (every
    // 10 ms) that finds a frame of the new height on screen and time moving on.
    const target = await page.evaluate(() => {
      const { hls, video } = window.novaPlayer;
      const target = hls.levels.findIndex((l) => l.height && l.height !== video.videoHeight);
      window.novaSwitch = { at: performance.now(), from: video.currentTime, shownAt: 0 };
      if (target >= 0) hls.currentLevel = target;
      return target;
    });
    if (target < 0) throw new Error(`no level differs from the picture (${levels})`);
    await page.waitForFunction(
      (height) => {
        const v = window.novaPlayer.video;
        const s = window.novaSwitch;
        if (v.videoHeight === height && v.readyState >= 2 && !v.paused && v.currentTime > s.from) {
          s.shownAt = s.shownAt || performance.now();
          return true;
        }
        return false;
      },
      levels[target],
      { timeout: 20000, polling: 10 });
    ms.push(await page.evaluate(() => window.novaSwitch.shownAt - window.novaSwitch.at));
    // Let the new level play a moment before the next switch.
    await page.waitForTimeout(1000);
  }
  await context.close();
  console.log(JSON.stringify({ ms, levels }));
} catch (err) {
  console.log(JSON.stringify({ ms, levels, error: String(err && err.message || err) }));
}
await browser.close();

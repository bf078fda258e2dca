// Drives docs/examples/client-js.html in headless Chromium (Debian's, through
// playwright-core) in steps the test interleaves with what it does to the stream and
// the edge. At each step it prints one JSON line {step, trace} (trace: the page's
// window.novaClient.trace) and waits for the line `go` on stdin:
//
//   snapshot  connected, the first snapshot applied      (the test: go live)
//   started   stream_started applied                     (the test: stop the edge)
//   down      closed with 1001, two reconnects scheduled (the test: restart the edge)
//   back      a second snapshot applied                  (the test: leave, publish again)
//   resumed   stream_started with resumed applied        (the test: end the stream)
//
// then it connects again (4410) and to an unknown stream (4404), prints
// {ok: true, trace} and exits 0; on failure {ok: false, what, error, trace}, exit 1.
//
//   node tests/browser/client-js.mjs <page url with ?base=<edge>&stream=<id>> <unknown id>
import { pathToFileURL } from 'node:url';
import readline from 'node:readline';

// playwright-core lives in .nova/tools (scripts/install-deps.sh); PLAYWRIGHT_CORE points at it.
const { chromium } = await import(
  process.env.PLAYWRIGHT_CORE ? pathToFileURL(process.env.PLAYWRIGHT_CORE).href : 'playwright-core');

const [url, unknown] = process.argv.slice(2);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const page = await browser.newPage();
const trace = () => page.evaluate(() => window.novaClient.trace).catch(() => null);
const fail = async (what, err) => {
  console.log(JSON.stringify({ ok: false, what, error: String(err && err.message || err), trace: await trace() }));
  await browser.close();
  process.exit(1);
};
// Waits (at most 20 s) until fn(trace) holds in the page.
const until = (what, fn) => page
  .waitForFunction(`(${fn})(window.novaClient.trace)`, null, { timeout: 20000, polling: 50 })
  .catch((e) => fail(what, e));
// Reports a step and waits for the test's `go`.
const step = async (name) => {
  console.log(JSON.stringify({ step: name, trace: await trace() }));
  const next = await lines.next();
  if (next.done || next.value.trim() !== 'go') await fail(`go after ${name}`, `the test said ${JSON.stringify(next.value)}`);
};

try {
  await page.goto(url);
  await page.click('#connect');
  await until('the first snapshot', (t) => t.some((e) => e.kind === 'applied' && e.type === 'snapshot'));
  await step('snapshot');
  await until('stream_started', (t) => t.some((e) => e.kind === 'applied' && e.type === 'stream_started'));
  await step('started');
  await until('a 1001 close, then two reconnects scheduled', (t) => {
    const at = t.findIndex((e) => e.kind === 'close' && e.code === 1001);
    return at >= 0 && t.slice(at).filter((e) => e.kind === 'retry').length >= 2;
  });
  await step('down');
  await until('a snapshot after the reconnect',
    (t) => t.filter((e) => e.kind === 'applied' && e.type === 'snapshot').length >= 2);
  await step('back');
  await until('stream_started (resumed)',
    (t) => t.some((e) => e.kind === 'applied' && e.type === 'stream_started' && e.resumed === true));
  await step('resumed');
  await until('stream_ended (completed)',
    (t) => t.some((e) => e.kind === 'applied' && e.type === 'stream_ended' && e.status === 'completed'));
  // Connect again to the completed stream (4410), then to an unknown one (4404).
  await page.click('#connect');
  await until('a 4410 close', (t) => t.some((e) => e.kind === 'close' && e.code === 4410));
  await page.fill('#stream', unknown);
  await page.click('#connect');
  await until('a 4404 close', (t) => t.some((e) => e.kind === 'close' && e.code === 4404));
  const state = await page.textContent('#socket-state');
  console.log(JSON.stringify({ ok: true, trace: await trace(), state }));
  await browser.close();
} catch (err) {
  await fail('unexpected', err);
}

// Headless-Chromium test of the chat page served at GET /.
// Usage: node tests/server/page.mjs BASE_URL OUT_DIR
// Needs puppeteer-core under $NODE_PATH and Chromium at $CHROMIUM
// (default /usr/bin/chromium). Prints one TAP-style line; exit 0 on success.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.log('not ok - usage: node page.mjs BASE_URL OUT_DIR');
  process.exit(1);
}

function fail(msg) {
  console.log(`not ok - ${msg}`);
  process.exit(1);
}

let browser = null;
const overall = setTimeout(async () => {
  console.log('not ok - timed out after 120 s');
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  if (browser) browser.process()?.kill('SIGKILL');
  process.exit(1);
}, 120_000);

let puppeteer;
for (const dir of (process.env.NODE_PATH || process.cwd()).split(path.delimiter).filter(Boolean)) {
  try {
    puppeteer = createRequire(path.join(path.resolve(dir), 'x.js'))('puppeteer-core');
    break;
  } catch { /* try the next folder */ }
}
if (!puppeteer) fail(`cannot load puppeteer-core (NODE_PATH=${process.env.NODE_PATH || ''})`);

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const shot = path.join(outDir, 'page.png');
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new', '--disable-gpu'],
    headless: true,
  });
  let page = null;
  try {
    page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 700 });
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));

    const res = await page.goto(base.replace(/\/$/, '') + '/', { waitUntil: 'load', timeout: 30_000 });
    if (!res || !res.ok()) throw new Error(`GET / returned ${res ? res.status() : 'nothing'}`);

    // The model name appears in the header once GET /v1/models succeeded.
    try {
      await page.waitForFunction(
        () => document.querySelector('#model')?.textContent.trim() ||
              document.querySelector('#error')?.textContent.trim(),
        { timeout: 20_000 });
    } catch {
      throw new Error('model name never appeared');
    }
    const model = await page.$eval('#model', (e) => e.textContent.trim());
    if (!model) {
      const err = await page.$eval('#error', (e) => e.textContent.trim());
      throw new Error(`model not loaded: ${err}`);
    }

    await page.type('#prompt', 'Hello');
    await page.click('#send');
    try {
      await page.waitForSelector('.msg.assistant[data-done="1"]', { timeout: 60_000 });
    } catch {
      throw new Error('assistant answer did not finish within 60 s');
    }
    const r = await page.$eval('.msg.assistant[data-done="1"]', (b) => {
      const c = b.querySelector('.content');
      return {
        text: c ? c.textContent : null,
        error: !!c && (c.classList.contains('error') || b.classList.contains('error')),
      };
    });
    await page.screenshot({ path: shot });
    if (r.text === null) throw new Error('assistant bubble has no .content');
    if (r.error) throw new Error(`answer shows an error: ${r.text.slice(0, 300)}`);
    if (!r.text.trim()) throw new Error('assistant answer is empty');
    if (pageErrors.length) throw new Error(`page script error: ${pageErrors[0]}`);
    return `page loads, streams an answer (${r.text.length} chars), screenshot ${shot}`;
  } catch (e) {
    // keep a picture of the failure for debugging
    if (page) await page.screenshot({ path: path.join(outDir, 'page-fail.png') }).catch(() => {});
    throw e;
  } finally {
    await browser.close().catch(() => {});
  }
}

main().then(
  (msg) => { clearTimeout(overall); console.log(`ok - ${msg}`); process.exit(0); },
  (e) => fail(e && e.message ? e.message : String(e)),
);

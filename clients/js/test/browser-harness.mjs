// Serves the built bundle and a tiny page on loopback and drives headless
// Chromium (Debian's package) through playwright-core. Used by the browser
// test and the benchmark.
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pkgRoot } from './helpers.mjs';

export const CHROMIUM = process.env.FABSTIR_CHROMIUM || '/usr/bin/chromium';
export const hasChromium = () => existsSync(CHROMIUM);

const PAGE = `<!doctype html><meta charset="utf-8"><title>fabstir verify</title>
<script type="module">
import { verifyProof, prepareVerifyingKey } from '/dist/fabstir-zk-verify.min.js';
const get = (p) => fetch(p).then((r) => r.text());
const [key, proof, result, meta] = await Promise.all([get('/data/key.json'), get('/data/proof.json'), get('/data/result.json'), get('/data/meta.json').then(JSON.parse)]);
const opts = { hostId: meta.hostId, vkId: meta.vkId };
const prepared = prepareVerifyingKey(key, { vkId: meta.vkId });
const raw = JSON.parse(proof);
const p = raw.proof;
const tampered = JSON.stringify({ ...raw, proof: '0x' + p.slice(130, 258) + p.slice(2, 130) + p.slice(258) });
const verdicts = {
  valid: verifyProof(key, proof, result, opts),
  tampered: verifyProof(prepared, tampered, result, opts),
  otherResponse: verifyProof(prepared, proof, { ...JSON.parse(result), response: 'changed' }, opts),
};
window.fabstir = { verifyProof, prepared, proof, result, opts };
window.verdicts = verdicts;
document.title = 'done';
</script>`;

/**
 * Starts the server with `data` ({key, proof, result, meta} as text),
 * launches Chromium, opens the page and calls `fn(page)`; cleans up after.
 */
export async function withBrowserPage(data, fn) {
  const { chromium } = await import('playwright-core');
  const bundle = readFileSync(join(pkgRoot, 'dist/fabstir-zk-verify.min.js'));
  const server = createServer((req, res) => {
    const url = req.url.split('?')[0];
    const send = (type, body) => {
      res.writeHead(200, { 'content-type': type });
      res.end(body);
    };
    if (url === '/' || url === '/index.html') return send('text/html', PAGE);
    if (url === '/dist/fabstir-zk-verify.min.js') return send('text/javascript', bundle);
    const m = /^\/data\/(key|proof|result|meta)\.json$/.exec(url);
    if (m) return send('application/json', data[m[1]]);
    res.writeHead(404);
    res.end();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const profile = mkdtempSync(join(tmpdir(), 'fabstir-chromium-'));
  // A fresh profile directory per run (Chromium's --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${server.address().port}/`, { timeout: 30_000 });
    await page.waitForFunction(() => document.title === 'done', null, { timeout: 60_000 }).catch((e) => {
      throw new Error(`the page did not finish: ${errors.join('; ') || e.message}`);
    });
    return await fn(page);
  } finally {
    await context.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// Prints one JSON object: verifyProof latency in Node and in headless
// Chromium (p50, p90 over repeated runs with a prepared key), the one-off
// key preparation, and the size of the browser bundle. Figures, not tests.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { prepareVerifyingKey, verifyProof } from '../src/index.js';
import { devKey, devVkId, pkgRoot, vectorProof } from '../test/helpers.mjs';
import { hasChromium, withBrowserPage } from '../test/browser-harness.mjs';

const RUNS = Number(process.env.BENCH_RUNS || 40);
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 100) / 100;
};

const key = devKey();
const vkId = devVkId();
const { proof, result, hostId } = vectorProof();

let t = performance.now();
const prepared = prepareVerifyingKey(key, { vkId });
const prepareMs = performance.now() - t;
// The first verification also derives the Poseidon constants and the pairing lines.
t = performance.now();
if (!verifyProof(prepared, proof, result, { hostId, vkId }).valid) throw new Error('the benchmark proof does not verify');
const firstMs = performance.now() - t;
const node = [];
for (let i = 0; i < RUNS; i++) {
  t = performance.now();
  const v = verifyProof(prepared, proof, result, { hostId, vkId });
  node.push(performance.now() - t);
  if (!v.valid) throw new Error('verification failed');
}

const bundle = readFileSync(pkgRoot + 'dist/fabstir-zk-verify.min.js');
const out = {
  runs: RUNS,
  node: {
    version: process.version,
    verify_p50_ms: quantile(node, 0.5),
    verify_p90_ms: quantile(node, 0.9),
    first_verify_ms: Math.round(firstMs * 100) / 100,
    prepare_key_ms: Math.round(prepareMs * 100) / 100,
  },
  bundle: { file: 'dist/fabstir-zk-verify.min.js', bytes: bundle.length, gzip_bytes: gzipSync(bundle).length },
};

if (hasChromium()) {
  const data = { key, proof, result: JSON.stringify(result), meta: JSON.stringify({ hostId, vkId }) };
  out.chromium = await withBrowserPage(data, (page) =>
    page.evaluate((runs) => {
      const { verifyProof, prepared, proof, result, opts } = window.fabstir;
      const times = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        const v = verifyProof(prepared, proof, result, opts);
        times.push(performance.now() - t0);
        if (!v.valid) throw new Error('verification failed in the browser');
      }
      times.sort((a, b) => a - b);
      const q = (x) => Math.round(times[Math.min(times.length - 1, Math.floor(x * times.length))] * 100) / 100;
      return { user_agent: navigator.userAgent, verify_p50_ms: q(0.5), verify_p90_ms: q(0.9) };
    }, RUNS),
  );
} else {
  out.chromium = { skipped: 'no Chromium at /usr/bin/chromium' };
}
console.log(JSON.stringify(out, null, 2));

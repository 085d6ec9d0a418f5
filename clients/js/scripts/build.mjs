// Builds the browser bundle: dist/fabstir-zk-verify.min.js (ESM, minified,
// dependencies included), what a page loads to call verifyProof.
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const outfile = `${root}dist/fabstir-zk-verify.min.js`;
await build({
  entryPoints: [`${root}src/index.js`],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  outfile,
  legalComments: 'eof',
  logLevel: 'warning',
});
const bytes = readFileSync(outfile);
if (process.argv.includes('--report')) {
  console.log(JSON.stringify({ bundle: 'dist/fabstir-zk-verify.min.js', bytes: bytes.length, gzip_bytes: gzipSync(bytes).length }));
}

// Shared test helpers: repository paths and fixtures.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const pkgRoot = fileURLToPath(new URL('..', import.meta.url));
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const readRepo = (rel) => readFileSync(repoRoot + rel, 'utf8');
export const vectors = () => JSON.parse(readRepo('docs/test-vectors.json'));
/** The development key's export (checked in; the Rust tests keep it current). */
export const devKey = () => readFileSync(pkgRoot + 'test/fixtures/dev-vk.json', 'utf8');
/** The development key's id, as the Rust crate pins it. */
export const devVkId = () => readRepo('crates/fabstir-zk/tests/data/vk_id.txt').trim();
/** The checked-in proof of statement vector 0, with its result and host. */
export function vectorProof() {
  const v = vectors().statements[0];
  return { proof: readRepo('crates/fabstir-zk/tests/data/proof_v2.json'), result: v.result, hostId: v.host_id };
}
export const corpusPath = () => process.env.FABSTIR_JS_CORPUS || repoRoot + 'target/js-client/corpus.json';
export const hasCorpus = () => existsSync(corpusPath());
/** Under CI a missing tool or input fails the test instead of skipping it. */
export const skipOrFail = (t, why) => {
  if (process.env.CI) throw new Error(`${why} (required under CI)`);
  t.skip(why);
};

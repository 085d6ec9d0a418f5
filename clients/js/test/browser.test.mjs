// A real browser: headless Chromium loads a page that imports the built
// bundle and verifies a valid and a tampered proof; the verdicts are read
// from the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { devKey, devVkId, skipOrFail, vectorProof } from './helpers.mjs';
import { CHROMIUM, hasChromium, withBrowserPage } from './browser-harness.mjs';

test('headless Chromium verifies a valid proof and refuses a tampered one', { timeout: 180_000 }, async (t) => {
  if (!hasChromium()) return skipOrFail(t, `no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  const { proof, result, hostId } = vectorProof();
  const data = { key: devKey(), proof, result: JSON.stringify(result), meta: JSON.stringify({ hostId, vkId: devVkId() }) };
  const verdicts = await withBrowserPage(data, (page) => page.evaluate(() => window.verdicts));
  assert.deepEqual(verdicts.valid, { valid: true });
  assert.equal(verdicts.tampered.valid, false);
  assert.equal(verdicts.tampered.reason_code, 'invalid_proof');
  assert.equal(verdicts.otherResponse.reason_code, 'commitment_mismatch');
});

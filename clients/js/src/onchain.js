/**
 * The same check as `verifyProof`, as an `eth_call` to the deployed
 * verifier contract (contracts/src/FabstirVerifier.sol): no gas, no wallet.
 * `client` is a viem public client (anything with viem's `readContract`);
 * this module imports nothing from viem, so the offline verifier's bundle
 * stays small.
 */
import { precheck } from './checks.js';
import { EnvelopeError } from './errors.js';
import { bytesToHex } from './field.js';
import { parseProof } from './envelope.js';
import { statementFromResult } from './statement.js';
import { VERIFIER_ABI } from './abi.js';

/** The verifier's ABI, generated from contracts/src/IFabstirVerifier.sol (src/abi.js). */
export { VERIFIER_ABI };

/**
 * Asks the verifier at `verifierAddress` whether `proof` is valid for the
 * public inputs recomputed from `result` and `hostId`. The envelope must
 * name the contract's `VK_ID()`. Returns the same verdicts as `verifyProof`
 * (`invalid_proof` when the contract says false); network and RPC errors
 * are thrown.
 */
export async function verifyOnChain(client, verifierAddress, proof, result, { hostId } = {}) {
  const statement = statementFromResult(result, hostId);
  let envelope;
  try {
    envelope = parseProof(proof);
  } catch (e) {
    if (e instanceof EnvelopeError) return { valid: false, reason_code: 'malformed_proof', reason: e.message };
    throw e;
  }
  const vkId = String(await client.readContract({ address: verifierAddress, abi: VERIFIER_ABI, functionName: 'VK_ID' })).toLowerCase();
  const refused = precheck(envelope, statement, vkId, 2);
  if (refused) return refused;
  const valid = await client.readContract({
    address: verifierAddress,
    abi: VERIFIER_ABI,
    functionName: 'verify',
    args: [statement.instances, bytesToHex(envelope.proof)],
  });
  return valid === true ? { valid: true } : { valid: false, reason_code: 'invalid_proof', reason: 'the verifier contract returned false' };
}

/** The checks before any cryptography, shared by the offline and on-chain verifiers. */

const INSTANCE_CHECKS = [
  ['chain_id', 'wrong_chain'],
  ['marketplace', 'wrong_marketplace'],
  ['job_id', 'wrong_job'],
  ['tokens', 'wrong_tokens'],
  ['host_id', 'wrong_host'],
  ['commitment', 'commitment_mismatch'],
];

/**
 * The node's verdict before the proof itself is checked: the envelope must
 * name the trusted key and its circuit version, and its public inputs must
 * equal those computed from the result (the first differing field gives
 * the reason, in the node's order). Null when all agree.
 */
export function precheck(envelope, statement, vkId, circuitVersion) {
  if (envelope.vkId !== vkId) {
    return {
      valid: false,
      reason_code: 'unknown_verifying_key',
      reason: `the proof was made for verifying key ${envelope.vkId}, not the trusted ${vkId}`,
    };
  }
  if (envelope.circuitVersion !== circuitVersion) {
    return {
      valid: false,
      reason_code: 'malformed_proof',
      reason: `a circuit version ${envelope.circuitVersion} proof for a version ${circuitVersion} key`,
    };
  }
  const expected = {
    chain_id: statement.chainId,
    marketplace: statement.marketplace,
    job_id: statement.jobId,
    tokens: statement.tokens,
    host_id: statement.hostId,
    commitment: '0x' + statement.commitment.toString(16).padStart(64, '0'),
  };
  for (const [field, code] of INSTANCE_CHECKS) {
    if (envelope.instance[field] !== expected[field]) {
      return { valid: false, reason_code: code, reason: `the proof's public input ${field} differs from the one computed from the result` };
    }
  }
  return null;
}

/**
 * @fabstir/zk-verify: check a Fabstir host node's proof of an inference
 * result with nothing to trust but a pinned vk_id, offline (pure
 * JavaScript, Node or browser) or against the deployed on-chain verifier.
 */
export { FabstirError, InputError, EnvelopeError, KeyError } from './errors.js';
export { poseidon } from './poseidon.js';
export { statementFromResult, parseResult, toChecksumAddress } from './statement.js';
export { parseProof, PROOF_LEN, MAX_ENVELOPE_LEN } from './envelope.js';
export { parseProofResponse } from './response.js';
export { prepareVerifyingKey, transcriptRepr } from './key.js';
export { verifyProof, verifyRaw } from './verify.js';
export {
  parseBatch,
  batchFromCalldata,
  batchInstances,
  batchToBytes,
  verifyBatch,
  checkBatchEntry,
  SUBMIT_VERIFIED_BATCH_SELECTOR,
  MAX_BATCH_LEN,
  MAX_BATCH_PROOF_BYTES,
} from './batch.js';
export { verifyOnChain, VERIFIER_ABI } from './onchain.js';
export { MARKETPLACE_ABI, BATCH_VERIFIER_ABI } from './abi.js';

// Type declarations of @fabstir/zk-verify (hand-written; the sources are plain ESM JavaScript).

/** Base class of the package's errors; `field` names the offending input. */
export class FabstirError extends Error {
  readonly field: string | undefined;
}
/** A result, host id or other caller input is malformed. */
export class InputError extends FabstirError {}
/** A proof envelope is malformed; `code` says how (e.g. "truncated", "point_not_on_curve"). */
export class EnvelopeError extends FabstirError {
  readonly code: string;
}
/** A key export is malformed or unsupported, or its vk_id is not the pinned one ("vk_id_mismatch"). */
export class KeyError extends FabstirError {
  readonly code: 'bad_vk_id' | 'vk_id_mismatch' | 'malformed_key' | 'unsupported_key';
}

/** An inference result with the node's field names (give `model` or `model_hash`). */
export interface InferenceResult {
  job_id: string | number | bigint;
  /** A BigInt, a decimal string or a safe integer (a number above 2^53 - 1 is refused: it may be rounded). */
  chain_id: number | bigint | string;
  marketplace: string;
  model?: string | null;
  model_hash?: string | null;
  prompt: string;
  response: string;
  /** A BigInt, a decimal string or a safe integer (a number above 2^53 - 1 is refused: it may be rounded). */
  tokens_used: number | bigint | string;
}
/** A result as an object, JSON text or UTF-8 bytes of JSON (in JSON text, integers are JSON integers, read exactly). */
export type ResultInput = InferenceResult | string | Uint8Array;
/** A host id: 0x + 64 hex digits, or a bigint below r. */
export type HostId = string | bigint;

/** The statement of a result for a host. */
export interface Statement {
  circuitVersion: 1 | 2;
  chainId: bigint;
  /** EIP-55 checksummed. */
  marketplace: string;
  /** 0x + 64 hex digits. */
  jobId: string;
  modelHash: string;
  inputHash: string;
  outputHash: string;
  hostId: string;
  tokens: bigint;
  /** The eleven Poseidon inputs of the commitment. */
  commitmentInputs: bigint[];
  commitment: bigint;
  /** Public inputs: chain_id, marketplace, job.hi, job.lo, host_id, commitment[, tokens]. */
  instances: bigint[];
  /** The public inputs as 32-byte big-endian words. */
  instanceWords: Uint8Array[];
}

/** A parsed proof envelope. */
export interface ProofEnvelope {
  vkId: string;
  circuitVersion: 1 | 2;
  instance: {
    chain_id: bigint;
    marketplace: string;
    job_id: string;
    tokens?: bigint;
    host_id: string;
    commitment: string;
  };
  /** The halo2 proof bytes. */
  proof: Uint8Array;
}
/** A proof envelope: binary bytes, JSON text, a parsed JSON object, or a parsed envelope. */
export type ProofInput = Uint8Array | ArrayBuffer | string | object | ProofEnvelope;

/** A verifying key checked against a pinned vk_id (from `prepareVerifyingKey`). */
export interface PreparedVerifyingKey {
  readonly kind: 'fabstir-prepared-vk';
  readonly vkId: string;
  readonly circuitVersion: number;
  /** 0 for a single proof's key; N for the key of batches of N entries. */
  readonly batchEntries: number;
  readonly k: number;
}
/** The node's export (`fabstir-node keys export-vk`) as text, bytes or parsed object. */
export type VerifyingKeyInput = string | Uint8Array | object | PreparedVerifyingKey;

export type ReasonCode =
  | 'malformed_proof'
  | 'unknown_verifying_key'
  | 'wrong_chain'
  | 'wrong_marketplace'
  | 'wrong_job'
  | 'wrong_tokens'
  | 'wrong_host'
  | 'commitment_mismatch'
  | 'invalid_proof';
export type Verdict = { valid: true } | { valid: false; reason_code: ReasonCode; reason: string };

/** circomlib's Poseidon over BN254 of 1 to 15 field elements. */
export function poseidon(inputs: bigint[]): bigint;
export function statementFromResult(result: ResultInput, hostId: HostId, options?: { circuitVersion?: 1 | 2 }): Statement;
export function parseResult(result: ResultInput): {
  jobId: bigint;
  chainId: bigint;
  marketplace: Uint8Array;
  modelHash: Uint8Array;
  inputHash: Uint8Array;
  outputHash: Uint8Array;
  tokens: bigint;
};
export function toChecksumAddress(bytes: Uint8Array): string;
export function parseProof(input: ProofInput): ProofEnvelope;

/** The body of `GET /v1/proofs/{job_id}`, every integer a BigInt (see `parseProofResponse`). */
export interface ProofResponse {
  job_id: string;
  state: 'queued' | 'proving' | 'proved' | 'failed';
  attempts: bigint;
  host_id: string;
  tokens_used: bigint;
  created_at_ms: bigint;
  updated_at_ms: bigint;
  /** In state `failed`: `"<code>: <message>"`. */
  failure?: string;
  /** In state `proved`. */
  mock?: boolean;
  prove_ms?: number;
  proof_sha256?: string;
  /** In state `proved`: the JSON proof envelope (integers as BigInts) to pass to `verifyProof`; a mock node's is `{mock, bytes}`. */
  proof?: { format: bigint; circuit: bigint; vk_id: string; instance: Record<string, string | bigint>; proof: string } | { mock: true; bytes: string };
  public_inputs?: Record<string, string | bigint>;
}
/**
 * Parses the text of a `GET /v1/proofs/{job_id}` response without rounding
 * (JSON.parse rounds integers above 2^53); throws InputError for anything
 * else, including the node's error body.
 */
export function parseProofResponse(body: string | Uint8Array | ArrayBuffer): ProofResponse;
export const PROOF_LEN: number;
export const MAX_ENVELOPE_LEN: number;
/** Checks an exported key against the id you trust; throws KeyError otherwise. */
export function prepareVerifyingKey(key: VerifyingKeyInput, options: { vkId: string }): PreparedVerifyingKey;
/** halo2's transcript representation of a pinned key text. */
export function transcriptRepr(pinned: string): bigint;
/** Full offline verification of `proof` for `result` and `hostId` under the key with id `vkId`. */
export function verifyProof(key: VerifyingKeyInput, proof: ProofInput, result: ResultInput, options: { hostId: HostId; vkId: string }): Verdict;
/** The KZG check alone, for public inputs given directly. */
export function verifyRaw(key: PreparedVerifyingKey, instances: bigint[], proof: Uint8Array): boolean;

/** The part of a viem public client `verifyOnChain` uses. */
export interface ReadContractClient {
  readContract(args: { address: `0x${string}`; abi: readonly unknown[]; functionName: string; args?: readonly unknown[] }): Promise<unknown>;
}
/** The verifier's ABI, generated from contracts/src/IFabstirVerifier.sol. */
export const VERIFIER_ABI: readonly object[];
/** The marketplace's ABI, generated from contracts/src/IFabstirMarketplace.sol. */
export const MARKETPLACE_ABI: readonly object[];
/** The batch verifiers' ABI, generated from contracts/src/IFabstirBatchVerifier.sol. */
export const BATCH_VERIFIER_ABI: readonly object[];

/** One entry of a batch: its job (0x + 64 hex digits), cumulative tokens and commitment. */
export interface BatchEntry {
  jobId: string;
  tokens: bigint;
  commitment: bigint;
}
/** A batch proof, from `parseBatch` (the node's FZK-BP1 form) or `batchFromCalldata` (a transaction). */
export interface Batch {
  /** null for a batch from calldata without a vkId (calldata names no key). */
  vkId: string | null;
  size: number;
  chainId: bigint;
  /** EIP-55 checksummed. */
  marketplace: string;
  /** 0x + 64 hex digits. */
  hostId: string;
  entries: BatchEntry[];
  proof: Uint8Array;
}
export type BatchInput = Uint8Array | string | Batch;
export type BatchReasonCode =
  | 'malformed_proof'
  | 'unsupported_batch_size'
  | 'unknown_verifying_key'
  | 'wrong_chain'
  | 'wrong_marketplace'
  | 'wrong_host'
  | 'not_in_batch'
  | 'commitment_mismatch'
  | 'invalid_proof';
export type BatchVerdict = { valid: true } | { valid: false; reason_code: BatchReasonCode; reason: string };
export type EntryVerdict =
  | { valid: true; entry: number; entries: number[]; batchSize: number }
  | { valid: false; reason_code: BatchReasonCode; reason: string };
/** The binary form FZK-BP1 (bytes, or its 0x hex text), parsed and bounded; throws EnvelopeError. */
export function parseBatch(input: Uint8Array | string): Batch;
/** The binary form of a batch (the inverse of parseBatch). */
export function batchToBytes(batch: Batch): Uint8Array;
/** The batch a submitVerifiedBatch transaction's input carries, with what the chain gives; throws EnvelopeError. */
export function batchFromCalldata(
  calldata: Uint8Array | string,
  options: { chainId: bigint | number | string; marketplace: string; hostId: HostId; vkId?: string },
): Batch;
/** The batch's public inputs: seven bands of N values. */
export function batchInstances(batch: Batch): bigint[];
/** Verifies a batch proof as given, under a batch key export (`keys export-vk --batch-size N`) with the trusted id. */
export function verifyBatch(key: VerifyingKeyInput, batch: BatchInput, options: { vkId: string }): BatchVerdict;
/** Checks the caller's own checkpoint (its result at `tokens` cumulative tokens, default tokens_used) inside a batch. */
export function checkBatchEntry(
  key: VerifyingKeyInput,
  batch: BatchInput,
  result: ResultInput,
  options: { hostId: HostId; vkId: string; tokens?: bigint | number | string },
): EntryVerdict;
/** The selector of submitVerifiedBatch((uint256,uint256,uint256)[],bytes), 0x + 8 hex digits. */
export const SUBMIT_VERIFIED_BATCH_SELECTOR: string;
/** The longest binary form parseBatch accepts. */
export const MAX_BATCH_LEN: number;
/** The longest proof inside a batch. */
export const MAX_BATCH_PROOF_BYTES: number;
/** The same check as an eth_call to the verifier contract's `verify(uint256[7],bytes)`. */
export function verifyOnChain(
  client: ReadContractClient,
  verifierAddress: `0x${string}`,
  proof: ProofInput,
  result: ResultInput,
  options: { hostId: HostId },
): Promise<Verdict>;

// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IFabstirMarketplace} from "./IFabstirMarketplace.sol";
import {IFabstirVerifier} from "./IFabstirVerifier.sol";
import {IFabstirBatchVerifier} from "./IFabstirBatchVerifier.sol";
import {PersonalSign} from "./PersonalSign.sol";

/// @title The session-job marketplace (its interface, events and errors are
/// IFabstirMarketplace's)
/// @notice Pays hosts per checkpoint for verified proofs or signed proof-of-work
/// claims; pull payments only.
contract FabstirMarketplace is IFabstirMarketplace {
    /// BN254's scalar field modulus: a host id is a field element.
    uint256 private constant R = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    /// Token counts are public inputs below 2^64.
    uint256 private constant MAX_TOKENS = type(uint64).max;
    /// The high 96 bits of a registration job id: the bytes "fabstir:host".
    uint256 private constant REGISTRATION_DOMAIN = uint256(uint96(bytes12("fabstir:host"))) << 160;

    /// Storage layout of a job: a submission reads two slots (host, tokens
    /// and state; price and the deposit's token cap) and writes the first.
    struct JobSlot {
        address host;
        uint64 tokensUsed;
        bool completed;
        uint128 pricePerToken;
        /// deposit / pricePerToken (below 2^64): the most tokens the deposit pays.
        uint64 maxTokens;
        address client;
        uint256 deposit;
        bytes32 modelId;
    }

    /// @inheritdoc IFabstirMarketplace
    address public immutable VERIFIER;

    uint256 private _nextJobId = 1;
    mapping(uint256 => JobSlot) private _jobs;
    mapping(address => uint256) private _hostIds;
    mapping(uint256 => address) private _hostOfId;
    mapping(uint256 => mapping(uint256 => uint256)) private _commitments;
    mapping(bytes32 => bool) private _proofHashes;
    mapping(address => uint256) private _earnings;
    /// Batch verifier by batch size (entries per proof).
    mapping(uint256 => address) private _batchVerifiers;

    /// `verifier` checks single proofs; `batchVerifiers[i]` checks batches of
    /// `batchSizes[i]` entries.
    constructor(IFabstirVerifier verifier, IFabstirBatchVerifier[] memory batchVerifiers, uint256[] memory batchSizes) {
        VERIFIER = address(verifier);
        if (batchVerifiers.length != batchSizes.length) revert UnsupportedBatchSize(batchSizes.length);
        for (uint256 i; i < batchSizes.length; ++i) {
            uint256 size = batchSizes[i];
            if (size == 0 || _batchVerifiers[size] != address(0)) revert UnsupportedBatchSize(size);
            _batchVerifiers[size] = address(batchVerifiers[i]);
        }
    }

    /// @inheritdoc IFabstirMarketplace
    function verifierVkId() external view returns (bytes32) {
        return IFabstirVerifier(VERIFIER).VK_ID();
    }

    /// @inheritdoc IFabstirMarketplace
    function registerHost(uint256 hostId, uint256 commitment, bytes calldata proof) external {
        if (_hostIds[msg.sender] != 0) revert HostAlreadyRegistered(msg.sender);
        _requireKeyProof(hostId, commitment, proof);
        _hostIds[msg.sender] = hostId;
        _hostOfId[hostId] = msg.sender;
        emit HostRegistered(msg.sender, hostId);
    }

    /// @inheritdoc IFabstirMarketplace
    function rotateHost(uint256 newHostId, uint256 commitment, bytes calldata proof) external {
        uint256 previous = _hostIds[msg.sender];
        if (previous == 0) revert HostNotRegistered(msg.sender);
        _requireKeyProof(newHostId, commitment, proof);
        // The previous id stays mapped to the sender: retired, never registered again.
        _hostIds[msg.sender] = newHostId;
        _hostOfId[newHostId] = msg.sender;
        emit HostRotated(msg.sender, previous, newHostId);
    }

    /// Whether `proof` is a valid single proof for this chain and marketplace,
    /// job `jobId`, host `hostId`, output commitment `commitment` and
    /// `tokens` cumulative tokens (the public inputs, in circuit order).
    function _verifies(uint256 jobId, uint256 hostId, uint256 commitment, uint256 tokens, bytes calldata proof)
        private
        view
        returns (bool)
    {
        uint256[7] memory instances = [
            block.chainid,
            uint256(uint160(address(this))),
            jobId >> 128,
            jobId & type(uint128).max,
            hostId,
            commitment,
            tokens
        ];
        return IFabstirVerifier(VERIFIER).verify(instances, proof);
    }

    /// Refuses unless `proof` shows that the sender holds the secret behind
    /// `hostId`, an id nobody holds yet, for this chain and marketplace.
    function _requireKeyProof(uint256 hostId, uint256 commitment, bytes calldata proof) private view {
        if (hostId == 0 || hostId >= R) revert InvalidHostId(hostId);
        if (_hostOfId[hostId] != address(0)) revert HostIdTaken(hostId);
        uint256 jobId = REGISTRATION_DOMAIN | uint256(uint160(msg.sender));
        if (!_verifies(jobId, hostId, commitment, 0, proof)) revert InvalidKeyProof(msg.sender, hostId);
    }

    /// @inheritdoc IFabstirMarketplace
    function hostIdOf(address host) external view returns (uint256) {
        return _hostIds[host];
    }

    /// @inheritdoc IFabstirMarketplace
    function createSessionJob(address host, bytes32 modelId, uint256 pricePerToken)
        external
        payable
        returns (uint256 jobId)
    {
        if (msg.value == 0) revert ZeroDeposit();
        if (pricePerToken == 0) revert ZeroPrice();
        if (pricePerToken > type(uint128).max) revert PriceOutOfRange(pricePerToken);
        if (host == address(0)) revert ZeroHost();
        jobId = _nextJobId++;
        JobSlot storage job = _jobs[jobId];
        uint256 cap = msg.value / pricePerToken;
        job.host = host;
        job.pricePerToken = uint128(pricePerToken);
        job.maxTokens = uint64(cap > MAX_TOKENS ? MAX_TOKENS : cap);
        job.client = msg.sender;
        job.deposit = msg.value;
        job.modelId = modelId;
        emit SessionJobCreated(jobId, msg.sender, host, modelId, msg.value, pricePerToken);
    }

    /// @inheritdoc IFabstirMarketplace
    function getJob(uint256 jobId) external view returns (Job memory) {
        JobSlot storage job = _existing(jobId);
        return Job({
            client: job.client,
            host: job.host,
            modelId: job.modelId,
            deposit: job.deposit,
            pricePerToken: job.pricePerToken,
            tokensUsed: job.tokensUsed,
            completed: job.completed
        });
    }

    /// @inheritdoc IFabstirMarketplace
    function submitProofOfWork(
        uint256 jobId,
        uint256 tokensClaimed,
        bytes32 proofHash,
        string calldata proofCID,
        bytes calldata signature,
        string calldata deltaCID
    ) external {
        JobSlot storage job = _open(jobId);
        address host = job.host;
        if (msg.sender != host) revert NotJobHost(jobId, msg.sender);
        if (tokensClaimed == 0 || tokensClaimed > MAX_TOKENS) revert TokensOutOfRange(tokensClaimed);
        if (_proofHashes[proofHash]) revert ProofAlreadySubmitted(proofHash);
        bytes32 message = keccak256(abi.encodePacked(proofHash, host, tokensClaimed, job.modelId));
        // host is never address(0) (ZeroHost), what a refused signature gives.
        if (PersonalSign.signer(message, signature) != host) revert InvalidSignature();
        _proofHashes[proofHash] = true;
        uint256 recorded = job.tokensUsed;
        _credit(job, jobId, recorded, recorded + tokensClaimed);
        emit ProofSubmitted(jobId, host, tokensClaimed, proofHash, proofCID, deltaCID);
    }

    /// @inheritdoc IFabstirMarketplace
    function submitVerifiedProof(uint256 jobId, uint256 cumulativeTokens, uint256 commitment, bytes calldata proof)
        external
    {
        JobSlot storage job = _open(jobId);
        if (msg.sender != job.host) revert NotJobHost(jobId, msg.sender);
        uint256 hostId = _hostIds[msg.sender];
        if (hostId == 0) revert HostNotRegistered(msg.sender);
        uint256 recorded = job.tokensUsed;
        if (cumulativeTokens > MAX_TOKENS) revert TokensOutOfRange(cumulativeTokens);
        if (cumulativeTokens <= recorded) revert TokensNotIncreasing(jobId, recorded, cumulativeTokens);

        _credit(job, jobId, recorded, cumulativeTokens);
        if (!_verifies(jobId, hostId, commitment, cumulativeTokens, proof)) revert InvalidProof(jobId);
        _commitments[jobId][cumulativeTokens] = commitment;
        emit VerifiedProofSubmitted(jobId, msg.sender, cumulativeTokens, cumulativeTokens - recorded, commitment);
    }

    /// @inheritdoc IFabstirMarketplace
    function submitVerifiedBatch(BatchEntry[] calldata entries, bytes calldata proof) external {
        uint256 n = entries.length;
        address verifier = _batchVerifiers[n];
        if (verifier == address(0)) revert UnsupportedBatchSize(n);
        uint256 hostId = _hostIds[msg.sender];
        if (hostId == 0) revert HostNotRegistered(msg.sender);
        if (!IFabstirBatchVerifier(verifier).verify(_batchInstances(entries, hostId), proof)) {
            revert InvalidBatchProof();
        }
        uint256 credit;
        for (uint256 i; i < n; ++i) {
            BatchEntry calldata entry = entries[i];
            uint256 jobId = entry.jobId;
            if (jobId == 0) continue; // padding
            JobSlot storage job = _jobs[jobId];
            uint256 cumulative = entry.tokens;
            (uint256 delta, SkipReason reason) = _creditEntry(job, cumulative);
            if (delta == 0) {
                emit VerifiedCheckpointSkipped(jobId, msg.sender, cumulative, reason);
                continue;
            }
            credit += delta * job.pricePerToken;
            emit VerifiedProofSubmitted(jobId, msg.sender, cumulative, delta, entry.commitment);
        }
        if (credit != 0) _earnings[msg.sender] += credit;
    }

    /// @inheritdoc IFabstirMarketplace
    function batchVerifier(uint256 entries) external view returns (address) {
        return _batchVerifiers[entries];
    }

    /// Moves `job` to `cumulative` tokens for the sender if it may: the
    /// token delta (never 0: the count increases), or 0 and why not. The
    /// batch proof bounds `cumulative` below 2^64.
    function _creditEntry(JobSlot storage job, uint256 cumulative) private returns (uint256, SkipReason) {
        address host = job.host;
        if (host == address(0)) return (0, SkipReason.UnknownJob);
        if (host != msg.sender) return (0, SkipReason.NotJobHost);
        if (job.completed) return (0, SkipReason.JobCompleted);
        uint256 recorded = job.tokensUsed;
        if (cumulative <= recorded) return (0, SkipReason.TokensNotIncreasing);
        if (cumulative > job.maxTokens) return (0, SkipReason.ExceedsDeposit);
        job.tokensUsed = uint64(cumulative);
        return (cumulative - recorded, SkipReason.UnknownJob);
    }

    /// The batch proof's public inputs for `entries` of host `hostId`, in
    /// the batch circuit's seven bands of n values (docs/CIRCUIT_SPEC.md,
    /// Batch circuit): commitment, chain id, marketplace, job id high and low
    /// 128 bits, host id, tokens.
    function _batchInstances(BatchEntry[] calldata entries, uint256 hostId)
        private
        view
        returns (uint256[] memory instances)
    {
        uint256 n = entries.length;
        instances = new uint256[](7 * n);
        uint256 chain = block.chainid;
        uint256 market = uint256(uint160(address(this)));
        for (uint256 i; i < n; ++i) {
            BatchEntry calldata entry = entries[i];
            uint256 jobId = entry.jobId;
            // Band b holds entry i's value at b * n + i.
            instances[i] = entry.commitment;
            instances[n + i] = chain;
            instances[2 * n + i] = market;
            instances[3 * n + i] = jobId >> 128;
            instances[4 * n + i] = jobId & type(uint128).max;
            instances[5 * n + i] = hostId;
            instances[6 * n + i] = entry.tokens;
        }
    }

    /// @inheritdoc IFabstirMarketplace
    function commitmentOf(uint256 jobId, uint256 cumulativeTokens) external view returns (uint256) {
        return _commitments[jobId][cumulativeTokens];
    }

    /// @inheritdoc IFabstirMarketplace
    function completeJob(uint256 jobId) external {
        JobSlot storage job = _open(jobId);
        if (msg.sender != job.client && msg.sender != job.host) revert NotJobParty(jobId, msg.sender);
        job.completed = true;
        uint256 paid = uint256(job.tokensUsed) * job.pricePerToken;
        uint256 refund = job.deposit - paid;
        if (refund != 0) _earnings[job.client] += refund;
        emit JobCompleted(jobId, job.tokensUsed, paid, refund);
    }

    /// @inheritdoc IFabstirMarketplace
    function earnings(address account) external view returns (uint256) {
        return _earnings[account];
    }

    /// @inheritdoc IFabstirMarketplace
    function withdraw() external {
        uint256 amount = _earnings[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _earnings[msg.sender] = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, amount);
    }

    function _existing(uint256 jobId) private view returns (JobSlot storage job) {
        job = _jobs[jobId];
        // Every job has a host (ZeroHost).
        if (job.host == address(0)) revert UnknownJob(jobId);
    }

    function _open(uint256 jobId) private view returns (JobSlot storage job) {
        job = _existing(jobId);
        if (job.completed) revert JobAlreadyCompleted(jobId);
    }

    /// Moves the job from `recorded` to `cumulative` tokens (checked below
    /// 2^64 and increasing by the callers) and credits the host the delta.
    function _credit(JobSlot storage job, uint256 jobId, uint256 recorded, uint256 cumulative) private {
        if (cumulative > MAX_TOKENS) revert TokensOutOfRange(cumulative);
        uint256 price = job.pricePerToken;
        // cumulative < 2^64 and price < 2^128: the product cannot overflow.
        if (cumulative > job.maxTokens) revert ExceedsDeposit(jobId, cumulative * price, job.deposit);
        job.tokensUsed = uint64(cumulative);
        _earnings[job.host] += (cumulative - recorded) * price;
    }
}

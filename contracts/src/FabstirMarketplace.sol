// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {IFabstirMarketplace} from "./IFabstirMarketplace.sol";
import {IFabstirVerifier} from "./IFabstirVerifier.sol";
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

    /// Storage layout of a job: what a verified submission reads fits in
    /// three slots (client, tokens and state share one).
    struct JobSlot {
        address client;
        uint64 tokensUsed;
        bool completed;
        address host;
        uint256 deposit;
        uint256 pricePerToken;
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

    constructor(IFabstirVerifier verifier) {
        VERIFIER = address(verifier);
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

    /// Refuses unless `proof` shows that the sender holds the secret behind
    /// `hostId`, an id nobody holds yet, for this chain and marketplace.
    function _requireKeyProof(uint256 hostId, uint256 commitment, bytes calldata proof) private view {
        if (hostId == 0 || hostId >= R) revert InvalidHostId(hostId);
        if (_hostOfId[hostId] != address(0)) revert HostIdTaken(hostId);
        uint256 jobId = REGISTRATION_DOMAIN | uint256(uint160(msg.sender));
        uint256[7] memory instances = [
            block.chainid,
            uint256(uint160(address(this))),
            jobId >> 128,
            jobId & type(uint128).max,
            hostId,
            commitment,
            0
        ];
        if (!IFabstirVerifier(VERIFIER).verify(instances, proof)) revert InvalidKeyProof(msg.sender, hostId);
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
        if (host == address(0)) revert ZeroHost();
        jobId = _nextJobId++;
        JobSlot storage job = _jobs[jobId];
        job.client = msg.sender;
        job.host = host;
        job.deposit = msg.value;
        job.pricePerToken = pricePerToken;
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
        uint256[7] memory instances = [
            block.chainid,
            uint256(uint160(address(this))),
            jobId >> 128,
            jobId & type(uint128).max,
            hostId,
            commitment,
            cumulativeTokens
        ];
        _credit(job, jobId, recorded, cumulativeTokens);
        if (!IFabstirVerifier(VERIFIER).verify(instances, proof)) revert InvalidProof(jobId);
        _commitments[jobId][cumulativeTokens] = commitment;
        emit VerifiedProofSubmitted(jobId, msg.sender, cumulativeTokens, cumulativeTokens - recorded, commitment);
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
        if (job.client == address(0)) revert UnknownJob(jobId);
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
        uint256 deposit = job.deposit;
        // cumulative < 2^64: a product above the deposit is refused before it
        // could overflow.
        if (cumulative > deposit / price) revert ExceedsDeposit(jobId, _mulOrMax(cumulative, price), deposit);
        job.tokensUsed = uint64(cumulative);
        _earnings[job.host] += (cumulative - recorded) * price;
    }

    function _mulOrMax(uint256 a, uint256 b) private pure returns (uint256) {
        unchecked {
            uint256 c = a * b;
            return c / b == a ? c : type(uint256).max;
        }
    }
}

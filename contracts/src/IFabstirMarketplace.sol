// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

/// @title A session-job marketplace that pays hosts for proven work
/// @notice The one source of the marketplace's interface: FabstirMarketplace
/// implements it, the node binds it with alloy's `sol!`
/// (crates/fabstir-node/src/chain/contract.rs) and the JavaScript package's
/// ABI is generated from it (clients/js/scripts/abi.mjs).
///
/// A client opens a job with a deposit, a price per token and the host that
/// serves it. The host is paid per checkpoint, in one of two ways:
/// - `submitVerifiedProof`: the proof itself is checked on chain, against
///   public inputs the contract derives (its own chain and address, the job,
///   the host id registered for the sender, the claimed cumulative token
///   count), so another host, job, chain or marketplace cannot reuse it;
/// - `submitProofOfWork`: the proof stays off-chain; the host signs
///   `keccak256(proofHash, host, tokensClaimed, modelId)` (EIP-191), as in
///   Fabstir's JobMarketplace.
/// Earnings and refunds are credited and withdrawn with `withdraw` (pull
/// payments), so no submission or completion ever sends ETH.
interface IFabstirMarketplace {
    /// @notice One checkpoint of a batch (`submitVerifiedBatch`): the job, its
    /// cumulative token count and the output commitment the proof binds.
    /// An entry with `jobId` 0 is padding (a batch fills its verifier's size
    /// with them): it is proved like any entry and never paid.
    struct BatchEntry {
        uint256 jobId;
        uint256 tokens;
        uint256 commitment;
    }

    /// @notice Why `submitVerifiedBatch` skipped an entry (the batch still
    /// pays the others).
    enum SkipReason {
        /// No job has this id.
        UnknownJob,
        /// The sender is not the job's host.
        NotJobHost,
        /// The job was completed meanwhile.
        JobCompleted,
        /// The tokens do not increase the recorded count (an earlier
        /// transaction or entry credited as much or more).
        TokensNotIncreasing,
        /// Paying for the tokens would exceed the job's deposit.
        ExceedsDeposit
    }

    /// @notice A job as `getJob` returns it.
    struct Job {
        address client;
        address host;
        bytes32 modelId;
        uint256 deposit;
        uint256 pricePerToken;
        /// Cumulative tokens paid for so far, by either submission kind.
        uint256 tokensUsed;
        bool completed;
    }

    event HostRegistered(address indexed host, uint256 indexed hostId);
    /// The wallet `host` moved from `previousHostId` (retired: it can never be
    /// registered again) to `hostId`.
    event HostRotated(address indexed host, uint256 indexed previousHostId, uint256 indexed hostId);
    event SessionJobCreated(
        uint256 indexed jobId,
        address indexed client,
        address indexed host,
        bytes32 modelId,
        uint256 deposit,
        uint256 pricePerToken
    );
    event ProofSubmitted(
        uint256 indexed jobId,
        address indexed host,
        uint256 tokensClaimed,
        bytes32 proofHash,
        string proofCID,
        string deltaCID
    );
    event VerifiedProofSubmitted(
        uint256 indexed jobId, address indexed host, uint256 cumulativeTokens, uint256 tokensDelta, uint256 commitment
    );
    /// A batch entry that pays nothing: the proof covered it, the job's state
    /// refused it (`reason`); the rest of the batch is paid.
    event VerifiedCheckpointSkipped(
        uint256 indexed jobId, address indexed host, uint256 cumulativeTokens, SkipReason reason
    );
    event JobCompleted(uint256 indexed jobId, uint256 tokensUsed, uint256 hostPayment, uint256 clientRefund);
    event Withdrawn(address indexed account, uint256 amount);

    /// No job has this id.
    error UnknownJob(uint256 jobId);
    /// Only the job's host may submit work for it.
    error NotJobHost(uint256 jobId, address caller);
    /// Only the job's client or host may complete it.
    error NotJobParty(uint256 jobId, address caller);
    /// The job is completed: nothing more is paid for it.
    error JobAlreadyCompleted(uint256 jobId);
    /// The sender has no host id: call `registerHost` first.
    error HostNotRegistered(address host);
    /// A host id is a non-zero BN254 scalar (below the field modulus).
    error InvalidHostId(uint256 hostId);
    /// The address already has a host id.
    error HostAlreadyRegistered(address host);
    /// Another address registered this host id, or it was retired by a rotation.
    error HostIdTaken(uint256 hostId);
    /// The proof does not show that the sender holds the secret behind
    /// `hostId` (a registration proof is made for one wallet, chain and
    /// marketplace: `fabstir-node chain register` makes it).
    error InvalidKeyProof(address host, uint256 hostId);
    /// The claimed cumulative count does not increase the recorded one.
    error TokensNotIncreasing(uint256 jobId, uint256 recorded, uint256 claimed);
    /// Paying for the claimed tokens would exceed the job's deposit.
    error ExceedsDeposit(uint256 jobId, uint256 cost, uint256 deposit);
    /// A token count must be below 2^64 (and a delta non-zero).
    error TokensOutOfRange(uint256 tokens);
    /// The proof does not verify for the public inputs derived here.
    error InvalidProof(uint256 jobId);
    /// The signature is malformed or not the job host's.
    error InvalidSignature();
    /// This proof hash was already paid for.
    error ProofAlreadySubmitted(bytes32 proofHash);
    /// A job needs a deposit.
    error ZeroDeposit();
    /// A job needs a non-zero price per token.
    error ZeroPrice();
    /// A price per token must be below 2^128 wei.
    error PriceOutOfRange(uint256 pricePerToken);
    /// No batch verifier of this size: pad the batch to a size
    /// `batchVerifier` knows.
    error UnsupportedBatchSize(uint256 entries);
    /// The batch proof does not verify for the public inputs derived here.
    error InvalidBatchProof();
    /// A job needs a host.
    error ZeroHost();
    /// The account has nothing to withdraw.
    error NothingToWithdraw();
    /// Sending ETH to the account failed; its balance is unchanged.
    error TransferFailed();

    /// The verifier (an IFabstirVerifier) every verified submission is checked with.
    function VERIFIER() external view returns (address);

    /// The `vk_id` of the verifier's key, so that a node can check it serves
    /// proofs this marketplace accepts before submitting any.
    function verifierVkId() external view returns (bytes32);

    /// Binds the sender to `hostId` (`Poseidon(host secret)`), once, on a
    /// proof that the sender holds that secret: a proof of the verifier's
    /// statement for the registration job id of the sender (the 12 bytes
    /// "fabstir:host" then the sender's address), this chain and this
    /// marketplace, 0 tokens and output commitment `commitment`. So nobody
    /// can register another host's id: the proof names its wallet.
    function registerHost(uint256 hostId, uint256 commitment, bytes calldata proof) external;

    /// Moves the sender, registered already, to `newHostId` on the same kind
    /// of proof as `registerHost`, for the new id. The previous id is
    /// retired (nobody can register it again). Proofs made under the previous
    /// key and not yet submitted no longer verify: a verified submission is
    /// checked against the sender's current id.
    function rotateHost(uint256 newHostId, uint256 commitment, bytes calldata proof) external;

    /// The host id registered for `host`, 0 when none.
    function hostIdOf(address host) external view returns (uint256);

    /// Opens a job served by `host` with the sent ETH as deposit.
    function createSessionJob(address host, bytes32 modelId, uint256 pricePerToken)
        external
        payable
        returns (uint256 jobId);

    /// The job `jobId` (reverts with `UnknownJob` when there is none).
    function getJob(uint256 jobId) external view returns (Job memory);

    /// Pays for `tokensClaimed` more tokens on the host's signed word that a
    /// proof with SHA-256 `proofHash` is stored at `proofCID`. The signature
    /// is `r || s || v` over the EIP-191 digest of
    /// `keccak256(abi.encodePacked(proofHash, host, tokensClaimed, modelId))`,
    /// by the rule of PersonalSign.sol.
    function submitProofOfWork(
        uint256 jobId,
        uint256 tokensClaimed,
        bytes32 proofHash,
        string calldata proofCID,
        bytes calldata signature,
        string calldata deltaCID
    ) external;

    /// Pays the job's host up to `cumulativeTokens` tokens on a proof that
    /// the sender's host made it, for this job, chain and marketplace, with
    /// output commitment `commitment`.
    function submitVerifiedProof(uint256 jobId, uint256 cumulativeTokens, uint256 commitment, bytes calldata proof)
        external;

    /// Pays the sender's jobs for a batch of checkpoints on one proof that
    /// the sender's host made each of them (an IFabstirBatchVerifier of the
    /// batch's size checks it, against public inputs derived here: this
    /// chain and marketplace, the sender's registered host id, the entries).
    /// Each entry is checked against its job as `submitVerifiedProof` checks
    /// one: open, the sender its host, the tokens increasing and within the
    /// deposit; one that is not is skipped (`VerifiedCheckpointSkipped`),
    /// the others are paid (`VerifiedProofSubmitted`, which carries the
    /// commitment: a client finds its checkpoint's by the job id, an indexed
    /// topic). Padding entries (job 0) are never paid.
    function submitVerifiedBatch(BatchEntry[] calldata entries, bytes calldata proof) external;

    /// The batch verifier for batches of `entries` entries, or address(0).
    function batchVerifier(uint256 entries) external view returns (address);

    /// The output commitment a verified proof recorded for the job at
    /// `cumulativeTokens`, 0 when none: what a client can dispute against.
    /// (A batch records commitments in its events, not here.)
    function commitmentOf(uint256 jobId, uint256 cumulativeTokens) external view returns (uint256);

    /// Closes the job (client or host): the host keeps what it was paid, the
    /// client is credited the rest of the deposit. Nothing is paid after.
    function completeJob(uint256 jobId) external;

    /// What `account` can withdraw: host earnings and client refunds.
    function earnings(address account) external view returns (uint256);

    /// Sends the sender everything credited to it.
    function withdraw() external;
}

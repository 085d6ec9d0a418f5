// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";
import {FabstirVerifier} from "../src/FabstirVerifier.sol";
import {FabstirMarketplace} from "../src/FabstirMarketplace.sol";
import {IFabstirMarketplace} from "../src/IFabstirMarketplace.sol";
import {IFabstirVerifier} from "../src/IFabstirVerifier.sol";
import {IFabstirBatchVerifier} from "../src/IFabstirBatchVerifier.sol";

/// The marketplace with the generated verifier and proofs made by the Rust
/// prover (test/vectors/marketplace.json, written by
/// crates/fabstir-node/tests/it/marketplace.rs): verified work is paid once,
/// for the host that did it, on this job, chain and marketplace only; every
/// refusal has its own error.
contract FabstirMarketplaceTest is Test {
    /// One proof of the vectors: `tokens` cumulative tokens with output
    /// commitment `commitment`.
    struct Vector {
        uint256 tokens;
        uint256 commitment;
        bytes proof;
    }

    string internal constant VECTORS = "test/vectors/marketplace.json";
    uint256 internal constant R = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001;
    uint256 internal constant PRICE = 1e12;
    uint256 internal constant DEPOSIT = 250 * PRICE;
    uint256 internal constant HOST1_KEY = 0xA11CE;
    uint256 internal constant HOST2_KEY = 0xB0B;

    FabstirVerifier internal verifier;
    FabstirMarketplace internal market;
    address internal host1;
    address internal host2;
    address internal client = address(0xC11E17);
    bytes32 internal constant MODEL = keccak256("llama-3");

    uint256 internal host1Id;
    uint256 internal host2Id;
    /// Host 3's key: the one host 1's wallet rotates to.
    uint256 internal host3Id;
    /// Registration proofs: hosts 1 and 2 for their wallets, host 3's key
    /// for host 1's wallet.
    Vector internal registerHost1;
    Vector internal registerHost2;
    Vector internal host3ForHost1Wallet;
    /// Host 1's registration on the second marketplace a test deploys.
    Vector internal host1OnOtherMarketplace;
    address internal otherMarketplace;
    /// Job 1 at 250 tokens, proved under host 3's key.
    Vector internal job1At250ByHost3;
    /// Job 1, host 1, 100 and 250 cumulative tokens.
    Vector internal job1At100;
    Vector internal job1At250;
    /// Job 2 (host 2's), proved by host 1: another host's work.
    Vector internal job2At100ByHost1;

    function setUp() public {
        string memory json = vm.readFile(VECTORS);
        host1Id = vm.parseJsonUint(json, ".host_ids.host1");
        host2Id = vm.parseJsonUint(json, ".host_ids.host2");
        job1At100 = _vector(json, "JOB1_HOST1_100");
        job1At250 = _vector(json, "JOB1_HOST1_250");
        job2At100ByHost1 = _vector(json, "JOB2_HOST1_100");
        job1At250ByHost3 = _vector(json, "JOB1_HOST3_250");
        host3Id = vm.parseJsonUint(json, ".host_ids.host3");
        registerHost1 = _registration(json, "HOST1");
        registerHost2 = _registration(json, "HOST2");
        host3ForHost1Wallet = _registration(json, "HOST3_FOR_HOST1_WALLET");
        host1OnOtherMarketplace = _registration(json, "HOST1_ON_OTHER_MARKETPLACE");
        otherMarketplace = vm.parseJsonAddress(json, ".other_marketplace");

        verifier = new FabstirVerifier();
        market = new FabstirMarketplace(IFabstirVerifier(address(verifier)), new IFabstirBatchVerifier[](0), new uint256[](0));
        assertTrue(
            address(market) == vm.parseJsonAddress(json, ".marketplace"),
            "the vectors were made for another marketplace address"
        );
        assertEq(block.chainid, vm.parseJsonUint(json, ".chain_id"), "chain id");
        host1 = vm.addr(HOST1_KEY);
        host2 = vm.addr(HOST2_KEY);
        vm.deal(client, 100 ether);
        _register(market, host1, host1Id, registerHost1);
        _register(market, host2, host2Id, registerHost2);
        assertEq(_open(market, host1, DEPOSIT), 1, "job 1");
        assertEq(_open(market, host2, DEPOSIT), 2, "job 2");
        assertEq(_open(market, host1, DEPOSIT), 3, "job 3");
    }

    function _vector(string memory json, string memory name) internal pure returns (Vector memory v) {
        string memory key = string.concat(".proofs.", name);
        v.tokens = vm.parseJsonUint(json, string.concat(key, ".tokens"));
        v.commitment = vm.parseJsonUint(json, string.concat(key, ".commitment"));
        v.proof = vm.parseJsonBytes(json, string.concat(key, ".proof"));
    }

    function _registration(string memory json, string memory name) internal pure returns (Vector memory v) {
        string memory key = string.concat(".registrations.", name);
        v.commitment = vm.parseJsonUint(json, string.concat(key, ".commitment"));
        v.proof = vm.parseJsonBytes(json, string.concat(key, ".proof"));
    }

    function _register(FabstirMarketplace m, address host, uint256 hostId, Vector memory registration) internal {
        vm.prank(host);
        m.registerHost(hostId, registration.commitment, registration.proof);
    }

    function _open(FabstirMarketplace m, address host, uint256 deposit) internal returns (uint256) {
        vm.prank(client);
        return m.createSessionJob{value: deposit}(host, MODEL, PRICE);
    }

    function _submit(address sender, uint256 jobId, uint256 tokens, uint256 commitment, bytes memory proof) internal {
        vm.prank(sender);
        market.submitVerifiedProof(jobId, tokens, commitment, proof);
    }

    function test_verifiedProofCreditsTheHostAndRecordsTheCommitment() public {
        assertTrue(market.verifierVkId() == verifier.VK_ID(), "vk id");
        vm.expectEmit(true, true, false, true);
        emit IFabstirMarketplace.VerifiedProofSubmitted(1, host1, 100, 100, job1At100.commitment);
        _submit(host1, 1, job1At100.tokens, job1At100.commitment, job1At100.proof);
        assertEq(market.getJob(1).tokensUsed, 100, "tokens used");
        assertEq(market.earnings(host1), 100 * PRICE, "host earnings");
        assertEq(market.commitmentOf(1, 100), job1At100.commitment, "recorded commitment");

        // The next checkpoint pays the delta only.
        vm.expectEmit(true, true, false, true);
        emit IFabstirMarketplace.VerifiedProofSubmitted(1, host1, 250, 150, job1At250.commitment);
        _submit(host1, 1, 250, job1At250.commitment, job1At250.proof);
        assertEq(market.earnings(host1), 250 * PRICE, "host earnings after two checkpoints");
    }

    function test_aReplayOrAnOlderCheckpointIsRefused() public {
        _submit(host1, 1, 100, job1At100.commitment, job1At100.proof);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.TokensNotIncreasing.selector, 1, 100, 100));
        _submit(host1, 1, 100, job1At100.commitment, job1At100.proof);
        _submit(host1, 1, 250, job1At250.commitment, job1At250.proof);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.TokensNotIncreasing.selector, 1, 250, 100));
        _submit(host1, 1, 100, job1At100.commitment, job1At100.proof);
    }

    function test_anotherHostsProofIsRefused() public {
        // Job 2 is host 2's; the proof is host 1's work for job 2.
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 2));
        _submit(host2, 2, 100, job2At100ByHost1.commitment, job2At100ByHost1.proof);
        // Host 1 cannot submit for a job it does not serve.
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.NotJobHost.selector, 2, host1));
        _submit(host1, 2, 100, job2At100ByHost1.commitment, job2At100ByHost1.proof);
    }

    function test_aProofForAnotherJobIsRefused() public {
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 3));
        _submit(host1, 3, 100, job1At100.commitment, job1At100.proof);
    }

    function test_aProofForAnotherChainIsRefused() public {
        vm.chainId(8453);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 1));
        _submit(host1, 1, 100, job1At100.commitment, job1At100.proof);
    }

    function test_aProofForAnotherMarketplaceIsRefused() public {
        FabstirMarketplace other = new FabstirMarketplace(IFabstirVerifier(address(verifier)), new IFabstirBatchVerifier[](0), new uint256[](0));
        assertTrue(address(other) == otherMarketplace, "the vectors were made for another second marketplace");
        // Host 1's registration on `market` is refused on `other`; its own registers it.
        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidKeyProof.selector, host1, host1Id));
        other.registerHost(host1Id, registerHost1.commitment, registerHost1.proof);
        _register(other, host1, host1Id, host1OnOtherMarketplace);
        assertEq(_open(other, host1, DEPOSIT), 1, "job 1 of the other marketplace");
        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 1));
        other.submitVerifiedProof(1, 100, job1At100.commitment, job1At100.proof);
    }

    function test_anotherTokenCountCommitmentOrProofIsRefused() public {
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 1));
        _submit(host1, 1, 101, job1At100.commitment, job1At100.proof);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 1));
        _submit(host1, 1, 100, job1At100.commitment ^ 1, job1At100.proof);
        bytes memory tampered = job1At100.proof;
        tampered[tampered.length - 1] ^= 0x01;
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 1));
        _submit(host1, 1, 100, job1At100.commitment, tampered);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 1));
        _submit(host1, 1, 100, job1At100.commitment, "");
        assertEq(market.getJob(1).tokensUsed, 0, "nothing credited");
        assertEq(market.earnings(host1), 0, "nothing earned");
    }

    function test_claimsBeyondTheDepositOrTwoToThe64AreRefusedBeforeVerifying() public {
        uint256 small = _open(market, host1, 99 * PRICE);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.ExceedsDeposit.selector, small, 100 * PRICE, 99 * PRICE));
        _submit(host1, small, 100, job1At100.commitment, job1At100.proof);
        uint256 huge = uint256(1) << 64;
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.TokensOutOfRange.selector, huge));
        _submit(host1, 1, huge, job1At100.commitment, job1At100.proof);
    }

    function test_onlyARegisteredJobHostSubmits() public {
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.NotJobHost.selector, 1, client));
        _submit(client, 1, 100, job1At100.commitment, job1At100.proof);
        address stranger = address(0x5742);
        uint256 job = _open(market, stranger, DEPOSIT);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.HostNotRegistered.selector, stranger));
        _submit(stranger, job, 100, job1At100.commitment, job1At100.proof);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.UnknownJob.selector, 99));
        _submit(host1, 99, 100, job1At100.commitment, job1At100.proof);
    }

    function test_completionRefundsTheRestOnceAndEndsPayment() public {
        _submit(host1, 1, 100, job1At100.commitment, job1At100.proof);
        address stranger = address(0x5742);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.NotJobParty.selector, 1, stranger));
        market.completeJob(1);

        vm.expectEmit(true, false, false, true);
        emit IFabstirMarketplace.JobCompleted(1, 100, 100 * PRICE, DEPOSIT - 100 * PRICE);
        vm.prank(client);
        market.completeJob(1);
        assertEq(market.earnings(client), DEPOSIT - 100 * PRICE, "client refund");
        assertTrue(market.getJob(1).completed, "completed");

        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.JobAlreadyCompleted.selector, 1));
        market.completeJob(1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.JobAlreadyCompleted.selector, 1));
        _submit(host1, 1, 250, job1At250.commitment, job1At250.proof);

        uint256 before = host1.balance;
        vm.prank(host1);
        market.withdraw();
        assertEq(host1.balance - before, 100 * PRICE, "host withdrawal");
        before = client.balance;
        vm.prank(client);
        market.withdraw();
        assertEq(client.balance - before, DEPOSIT - 100 * PRICE, "client withdrawal");
        assertEq(address(market).balance, 2 * DEPOSIT, "jobs 2 and 3 still hold their deposits");
        vm.prank(host1);
        vm.expectRevert(IFabstirMarketplace.NothingToWithdraw.selector);
        market.withdraw();
    }

    function test_registrationAndJobCreationRefusals() public {
        bytes memory proof = registerHost1.proof;
        uint256 commitment = registerHost1.commitment;
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidHostId.selector, 0));
        market.registerHost(0, commitment, proof);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidHostId.selector, R));
        market.registerHost(R, commitment, proof);
        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.HostAlreadyRegistered.selector, host1));
        market.registerHost(12345, commitment, proof);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.HostIdTaken.selector, host1Id));
        market.registerHost(host1Id, commitment, proof);
        assertEq(market.hostIdOf(host1), host1Id, "host 1's id");
        assertEq(market.hostIdOf(client), 0, "no id");

        vm.prank(client);
        vm.expectRevert(IFabstirMarketplace.ZeroDeposit.selector);
        market.createSessionJob(host1, MODEL, PRICE);
        vm.prank(client);
        vm.expectRevert(IFabstirMarketplace.ZeroPrice.selector);
        market.createSessionJob{value: 1}(host1, MODEL, 0);
        vm.prank(client);
        vm.expectRevert(IFabstirMarketplace.ZeroHost.selector);
        market.createSessionJob{value: 1}(address(0), MODEL, PRICE);
        // A price is stored in 128 bits (a job's price and token cap share a slot).
        uint256 tooHigh = uint256(type(uint128).max) + 1;
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.PriceOutOfRange.selector, tooHigh));
        market.createSessionJob{value: 1}(host1, MODEL, tooHigh);
        // A deposit worth more than 2^64 - 1 tokens pays at most that many.
        vm.prank(client);
        uint256 cheap = market.createSessionJob{value: 20 ether}(host1, MODEL, 1);
        assertEq(market.getJob(cheap).deposit, 20 ether, "deposit kept whole");
        assertEq(market.getJob(cheap).pricePerToken, 1, "price");
        assertEq(cheap, 4, "job 4");
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.UnknownJob.selector, 5));
        market.getJob(5);
    }

    /// Registration is bound to the sender: on a fresh marketplace, a
    /// squatter who copies host 1's registration proof (from the mempool) is
    /// refused, and so is anyone with a proof for another id, chain or
    /// marketplace; host 1's wallet registers with it.
    function test_squattingAHostIdIsRefused() public {
        FabstirMarketplace fresh = new FabstirMarketplace(IFabstirVerifier(address(verifier)), new IFabstirBatchVerifier[](0), new uint256[](0));
        address squatter = address(0x5017);
        vm.prank(squatter);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidKeyProof.selector, squatter, host1Id));
        fresh.registerHost(host1Id, registerHost1.commitment, registerHost1.proof);
        // Another marketplace's proof (HOST1 is for `market`).
        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidKeyProof.selector, host1, host1Id));
        fresh.registerHost(host1Id, registerHost1.commitment, registerHost1.proof);
        // On `market`, host 1's proof for host 2's wallet's id, and a changed commitment.
        address newcomer = address(0x4E3);
        vm.prank(newcomer);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidKeyProof.selector, newcomer, host3Id));
        market.registerHost(host3Id, host3ForHost1Wallet.commitment, host3ForHost1Wallet.proof);
        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.HostAlreadyRegistered.selector, host1));
        market.registerHost(host3Id, host3ForHost1Wallet.commitment, host3ForHost1Wallet.proof);
        // A checkpoint proof is not a registration proof.
        vm.prank(newcomer);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidKeyProof.selector, newcomer, host3Id));
        market.registerHost(host3Id, job1At250ByHost3.commitment, job1At250ByHost3.proof);
        assertEq(market.hostIdOf(newcomer), 0, "the newcomer has no id");
    }

    /// A wallet rotates to a new key on a proof of the new key for it; the
    /// old id is retired; a proof made under the old key and not submitted
    /// yet is refused, and the same checkpoint under the new key is paid.
    function test_aWalletRotatesToANewKey() public {
        _submit(host1, 1, 100, job1At100.commitment, job1At100.proof);
        // Only a registered wallet rotates, and only with a proof for itself.
        vm.prank(client);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.HostNotRegistered.selector, client));
        market.rotateHost(host3Id, host3ForHost1Wallet.commitment, host3ForHost1Wallet.proof);
        vm.prank(host2);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidKeyProof.selector, host2, host3Id));
        market.rotateHost(host3Id, host3ForHost1Wallet.commitment, host3ForHost1Wallet.proof);
        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.HostIdTaken.selector, host2Id));
        market.rotateHost(host2Id, registerHost2.commitment, registerHost2.proof);

        vm.expectEmit(true, true, true, true);
        emit IFabstirMarketplace.HostRotated(host1, host1Id, host3Id);
        vm.prank(host1);
        market.rotateHost(host3Id, host3ForHost1Wallet.commitment, host3ForHost1Wallet.proof);
        assertEq(market.hostIdOf(host1), host3Id, "host 1's wallet has the new id");

        // The retired id cannot be taken.
        vm.prank(address(0x5017));
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.HostIdTaken.selector, host1Id));
        market.registerHost(host1Id, registerHost1.commitment, registerHost1.proof);

        // Old key, not yet submitted: refused. New key: paid the delta since 100.
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.InvalidProof.selector, 1));
        _submit(host1, 1, 250, job1At250.commitment, job1At250.proof);
        _submit(host1, 1, 250, job1At250ByHost3.commitment, job1At250ByHost3.proof);
        assertEq(market.earnings(host1), 250 * PRICE, "paid up to 250 tokens");
    }

    /// The message the node signs for `submitProofOfWork` (AUDIT-F4), as
    /// personal_sign digests it.
    function _signed(uint256 key, bytes32 proofHash, uint256 tokens) internal pure returns (bytes memory) {
        bytes32 message = keccak256(abi.encodePacked(proofHash, vm.addr(key), tokens, MODEL));
        bytes32 digest = keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", message));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function test_signedProofOfWorkPaysTheDeltaOnceAndMixesWithVerifiedProofs() public {
        bytes32 proofHash = keccak256("proof bytes");
        bytes memory signature = _signed(HOST1_KEY, proofHash, 40);
        vm.prank(host1);
        market.submitProofOfWork(1, 40, proofHash, "bafy-proof", signature, "bafy-delta");
        assertEq(market.getJob(1).tokensUsed, 40, "tokens used");
        assertEq(market.earnings(host1), 40 * PRICE, "earnings");

        vm.prank(host1);
        vm.expectRevert(abi.encodeWithSelector(IFabstirMarketplace.ProofAlreadySubmitted.selector, proofHash));
        market.submitProofOfWork(1, 40, proofHash, "bafy-proof", signature, "bafy-delta");

        bytes32 other = keccak256("other proof");
        // Signed by another key, or for another token count.
        bytes memory foreign = _signed(HOST2_KEY, other, 10);
        vm.prank(host1);
        vm.expectRevert(IFabstirMarketplace.InvalidSignature.selector);
        market.submitProofOfWork(1, 10, other, "", foreign, "");
        bytes memory forTen = _signed(HOST1_KEY, other, 10);
        vm.prank(host1);
        vm.expectRevert(IFabstirMarketplace.InvalidSignature.selector);
        market.submitProofOfWork(1, 11, other, "", forTen, "");
        // The malleable twin (s -> n - s, v flipped) is refused.
        (bytes32 r, bytes32 s) = abi.decode(forTen, (bytes32, bytes32));
        uint8 v = uint8(forTen[64]);
        uint256 n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
        bytes memory twin = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.prank(host1);
        vm.expectRevert(IFabstirMarketplace.InvalidSignature.selector);
        market.submitProofOfWork(1, 10, other, "", twin, "");
        // v written as 0 or 1 (27 or 28 less 27) is the same signature.
        bytes memory lowV = _signed(HOST1_KEY, other, 10);
        lowV[64] = bytes1(uint8(lowV[64]) - 27);
        vm.prank(host1);
        market.submitProofOfWork(1, 10, other, "", lowV, "");
        assertEq(market.getJob(1).tokensUsed, 50, "tokens used after two signed claims");

        // A verified checkpoint after them pays the rest of its cumulative count.
        vm.expectEmit(true, true, false, true);
        emit IFabstirMarketplace.VerifiedProofSubmitted(1, host1, 100, 50, job1At100.commitment);
        _submit(host1, 1, 100, job1At100.commitment, job1At100.proof);
        assertEq(market.earnings(host1), 100 * PRICE, "earnings after both kinds");
    }
}

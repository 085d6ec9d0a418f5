//! The marketplace and verifier contracts' interfaces, as alloy `sol!`
//! bindings: calldata encoding, return decoding, and the custom errors a
//! reverted call is decoded into.

use alloy::sol;
use alloy::sol_types::SolInterface as _;

sol! {
    /// The verifier the marketplace calls (`contracts/src/FabstirVerifier.sol`).
    #[sol(rpc)]
    interface IFabstirVerifier {
        function VK_ID() external view returns (bytes32);
        function verify(uint256[7] calldata instances, bytes calldata proof) external view returns (bool);
    }

    /// `contracts/src/FabstirMarketplace.sol`: session jobs, host registry,
    /// proof submissions and pull payments.
    #[sol(rpc, all_derives)]
    interface IFabstirMarketplace {
        struct Job {
            address client;
            address host;
            bytes32 modelId;
            uint256 deposit;
            uint256 pricePerToken;
            uint256 tokensUsed;
            bool completed;
        }

        event HostRegistered(address indexed host, uint256 indexed hostId);
        event SessionJobCreated(uint256 indexed jobId, address indexed client, address indexed host, bytes32 modelId, uint256 deposit, uint256 pricePerToken);
        event VerifiedProofSubmitted(uint256 indexed jobId, address indexed host, uint256 cumulativeTokens, uint256 tokensDelta, uint256 commitment);
        event JobCompleted(uint256 indexed jobId, uint256 tokensUsed, uint256 hostPayment, uint256 clientRefund);

        error UnknownJob(uint256 jobId);
        error NotJobHost(uint256 jobId, address caller);
        error NotJobParty(uint256 jobId, address caller);
        error JobAlreadyCompleted(uint256 jobId);
        error HostNotRegistered(address host);
        error InvalidHostId(uint256 hostId);
        error HostAlreadyRegistered(address host);
        error HostIdTaken(uint256 hostId);
        error TokensNotIncreasing(uint256 jobId, uint256 recorded, uint256 claimed);
        error ExceedsDeposit(uint256 jobId, uint256 cost, uint256 deposit);
        error TokensOutOfRange(uint256 tokens);
        error InvalidProof(uint256 jobId);
        error InvalidSignature();
        error ProofAlreadySubmitted(bytes32 proofHash);
        error ZeroDeposit();
        error ZeroPrice();
        error ZeroHost();
        error NothingToWithdraw();
        error TransferFailed();

        function VERIFIER() external view returns (address);
        function verifierVkId() external view returns (bytes32);
        function registerHost(uint256 hostId) external;
        function hostIdOf(address host) external view returns (uint256);
        function createSessionJob(address host, bytes32 modelId, uint256 pricePerToken) external payable returns (uint256 jobId);
        function getJob(uint256 jobId) external view returns (Job memory);
        function submitProofOfWork(uint256 jobId, uint256 tokensClaimed, bytes32 proofHash, string calldata proofCID, bytes calldata signature, string calldata deltaCID) external;
        function submitVerifiedProof(uint256 jobId, uint256 cumulativeTokens, uint256 commitment, bytes calldata proof) external;
        function commitmentOf(uint256 jobId, uint256 cumulativeTokens) external view returns (uint256);
        function completeJob(uint256 jobId) external;
        function earnings(address host) external view returns (uint256);
        function withdraw() external;
    }
}

/// A revert's data decoded into the marketplace's custom error: its name (a
/// metric label) and the error with its arguments (for the outbox record).
/// Unknown data gives `("unknown", "0x…")`; a `revert()` without data gives
/// `("empty", "")`.
pub fn decode_revert(data: &[u8]) -> (String, String) {
    if data.is_empty() {
        return ("empty".into(), String::new());
    }
    match IFabstirMarketplace::IFabstirMarketplaceErrors::abi_decode(data) {
        Ok(error) => {
            let text = format!("{error:?}");
            // Debug gives `Name(Name { field: value, .. })`: the name is the
            // part before the first parenthesis.
            let name = text.split('(').next().unwrap_or("unknown").to_string();
            let detail = text
                .split_once('(')
                .map(|(_, rest)| rest.trim_end_matches(')').to_string())
                .unwrap_or_default();
            (name, detail)
        }
        Err(_) => ("unknown".into(), format!("0x{}", hex::encode(data))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use alloy::sol_types::SolError as _;

    #[test]
    fn reverts_decode_into_named_errors() {
        let data = IFabstirMarketplace::TokensNotIncreasing {
            jobId: U256::from(3),
            recorded: U256::from(8),
            claimed: U256::from(5),
        }
        .abi_encode();
        let (name, detail) = decode_revert(&data);
        assert_eq!(name, "TokensNotIncreasing");
        assert!(
            detail.contains("recorded: 8") && detail.contains("claimed: 5"),
            "{detail}"
        );
        let (name, _) = decode_revert(&IFabstirMarketplace::ZeroPrice {}.abi_encode());
        assert_eq!(name, "ZeroPrice");
        assert_eq!(decode_revert(&[]).0, "empty");
        let (name, detail) = decode_revert(&[1, 2, 3, 4]);
        assert_eq!((name.as_str(), detail.as_str()), ("unknown", "0x01020304"));
    }
}

//! JSON-RPC failures sorted by what to do about them: a revert (the
//! contract's decision, final) or anything else (retried), read from alloy's
//! error types, never from message text.

use alloy::primitives::Bytes;
use alloy::transports::TransportError;

use crate::chain::client::{Revert, RpcError};
use crate::store::StoreError;

/// The JSON-RPC error code of an execution revert (geth, anvil and most
/// providers answer a reverted `eth_call` or `eth_estimateGas` with it).
const EXECUTION_REVERTED: i64 = 3;

/// An RPC failure sorted by what to do about it.
#[derive(Debug)]
pub(super) enum Failure {
    /// The call reverted: the contract's decision, decoded.
    Revert(Revert),
    /// Anything else (no answer, a rate limit, an unreadable answer):
    /// retried.
    Transient(RpcError),
}

/// The revert data of a failed call: alloy's reading of the error response
/// (`data` of an "execution reverted" answer), or no data for an answer with
/// the revert error code but without data; `None` when the call did not
/// revert.
pub(super) fn revert_data(e: &TransportError) -> Option<Bytes> {
    let payload = e.as_error_resp()?;
    payload
        .as_revert_data()
        .or_else(|| (payload.code == EXECUTION_REVERTED).then(Bytes::new))
}

/// `e` (from `call`) sorted: a revert decoded through the marketplace's
/// generated error types, or a transient failure.
pub(super) fn classify(call: &'static str, e: TransportError) -> Failure {
    match revert_data(&e) {
        Some(data) => Failure::Revert(Revert::decode(&data)),
        None => Failure::Transient(RpcError { call, source: e }),
    }
}

/// An alloy contract call's error as a transport error (a call whose answer
/// does not decode is the endpoint's fault, as if it had not answered).
pub(super) fn transport(e: alloy::contract::Error) -> TransportError {
    match e {
        alloy::contract::Error::TransportError(source) => source,
        other => alloy::transports::TransportErrorKind::custom(other),
    }
}

/// An error and its causes, down to the root one, without repeats: a
/// failed HTTP request says "error sending request for url (…)" and only its
/// innermost cause says "Connection refused".
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let message = e.to_string();
        if !message.is_empty() && !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = e.source();
    }
    text
}

/// What to check when an RPC call fails: the endpoint itself (no answer)
/// or what it answered.
pub(super) fn rpc_hint(e: &TransportError) -> &'static str {
    if e.is_error_resp() {
        "the endpoint answered with an error: check that --rpc-url (and any API key in it) is right and the provider is up"
    } else {
        "check that --rpc-url names a running JSON-RPC endpoint (scheme, host and port) that this machine can reach"
    }
}

/// Why a pass of the submission worker stopped early (it retries with
/// backoff).
#[derive(Debug)]
pub(super) enum PassError {
    /// A call failed without a usable answer: retried with backoff.
    Rpc(RpcError),
    /// The node's database failed.
    Store(StoreError),
}

impl From<StoreError> for PassError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError as _;
    use alloy_json_rpc::ErrorPayload;

    use crate::chain::contract::IFabstirMarketplace;

    fn answer(code: i64, message: &'static str, data: Option<&str>) -> TransportError {
        TransportError::ErrorResp(ErrorPayload {
            code,
            message: message.into(),
            data: data.map(|d| serde_json::value::to_raw_value(d).unwrap()),
        })
    }

    #[test]
    fn reverts_are_read_from_the_error_response_not_its_text() {
        let data = IFabstirMarketplace::InvalidProof {
            jobId: alloy::primitives::U256::from(7),
        }
        .abi_encode();
        let hex = format!("0x{}", hex::encode(&data));
        match classify("eth_call", answer(3, "execution reverted", Some(&hex))) {
            Failure::Revert(revert) => {
                assert_eq!(revert.name, "InvalidProof");
                let text = revert.to_string();
                assert!(
                    text.starts_with("InvalidProof(") && text.contains("jobId: 7"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        // anvil's answer to `revert()`: code 3, data "0x".
        match classify("eth_call", answer(3, "execution reverted", Some("0x"))) {
            Failure::Revert(revert) => assert_eq!(revert.name, "empty"),
            other => panic!("{other:?}"),
        }
        // The word alone does not make a revert; a rate limit is transient.
        assert!(matches!(
            classify(
                "eth_call",
                answer(-32000, "reverted by the rate limiter", None)
            ),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify("eth_call", answer(429, "too many requests", None)),
            Failure::Transient(_)
        ));
        let refused = alloy::transports::TransportErrorKind::custom(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert!(matches!(
            classify("eth_call", refused),
            Failure::Transient(RpcError {
                call: "eth_call",
                ..
            })
        ));
    }

    #[test]
    fn error_chain_reaches_the_root_cause_without_repeats() {
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let transport = alloy::transports::TransportErrorKind::custom(root);
        let text = error_chain(&transport);
        assert!(text.ends_with("Connection refused"), "{text}");
        assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
        assert!(rpc_hint(&transport).contains("check that --rpc-url"));
    }
}

//! The Solidity templates in `src/evm/templates/`, and how they are filled.
//!
//! A template is Solidity text with placeholders `{{NAME}}` (`NAME` in
//! capitals, digits and `_`). [`fill`] replaces each placeholder with its
//! value, verbatim: values are not scanned again, and nothing else in the
//! template is interpreted (Solidity's and Yul's own braces are single). A
//! placeholder on a line of its own stands for a block of generated lines:
//! the value carries its own indentation and has no final line break.
//!
//! The templates are the contracts' text: a change to a contract's
//! declaration (say `contract FabstirVerifier is IFabstirVerifier {`, with
//! its `import`) is an edit of the template, followed by regenerating the
//! checked-in files (`fabstir-node evm verifier --out contracts/src
//! --test-out contracts/test --force`).

/// `FabstirVerifier.sol`: the contract around the generated Yul.
pub(crate) const VERIFIER: &str = include_str!("templates/FabstirVerifier.sol.tmpl");

/// `FabstirBatchVerifier.sol`: the contract around the generated Yul in
/// [`super::solidity::Mode::Loops`] (dynamic ABI, loops over the public inputs).
pub(crate) const BATCH_VERIFIER: &str = include_str!("templates/FabstirBatchVerifier.sol.tmpl");

/// The Yul helpers (`precompileFailed`, `ecmulAdd`, `ecAddTo`) that both
/// assembly blocks of the verifier define.
pub(crate) const YUL_HELPERS: &str = include_str!("templates/yul_helpers.tmpl");

/// `Poseidon.sol`: the Poseidon library around its permutations and
/// constants.
pub(crate) const POSEIDON: &str = include_str!("templates/Poseidon.sol.tmpl");

/// `FabstirVerifier.t.sol`: the forge test of the verifier.
pub(crate) const FORGE_TEST: &str = include_str!("templates/FabstirVerifier.t.sol.tmpl");

/// `FabstirBatchVerifier.t.sol`: the forge test of a verifier in
/// [`super::solidity::Mode::Loops`].
pub(crate) const FORGE_BATCH_TEST: &str = include_str!("templates/FabstirBatchVerifier.t.sol.tmpl");

/// `template` with every `{{NAME}}` replaced by the value of `NAME` in
/// `values`.
///
/// # Panics
///
/// If the template has a placeholder without a value, or a value is given
/// for no placeholder: the templates are constants of this crate, so either
/// is a bug that the tests of the generators catch.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("template: `{{{{` without `}}}}`"));
        let name = &after[..end];
        let index = values
            .iter()
            .position(|(key, _)| *key == name)
            .unwrap_or_else(|| panic!("template: no value for {{{{{name}}}}}"));
        used[index] = true;
        out.push_str(values[index].1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(index) = used.iter().position(|u| !u) {
        panic!("template: {{{{{}}}}} does not occur", values[index].0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_every_placeholder_verbatim() {
        let out = fill(
            "a {{X}} b {{Y_1}} {{X}}\n{{B}}\n}",
            &[("X", "1"), ("Y_1", "{{X}}"), ("B", "  x\n  y")],
        );
        assert_eq!(out, "a 1 b {{X}} 1\n  x\n  y\n}");
    }

    #[test]
    #[should_panic(expected = "no value for {{Z}}")]
    fn fill_refuses_a_placeholder_without_value() {
        fill("{{Z}}", &[]);
    }

    #[test]
    #[should_panic(expected = "{{X}} does not occur")]
    fn fill_refuses_an_unused_value() {
        fill("x", &[("X", "1")]);
    }

    /// Every placeholder of a template is a name; nothing else looks like one.
    #[test]
    fn templates_have_only_named_placeholders() {
        for template in [
            VERIFIER,
            BATCH_VERIFIER,
            YUL_HELPERS,
            FORGE_TEST,
            FORGE_BATCH_TEST,
            POSEIDON,
        ] {
            for piece in template.split("{{").skip(1) {
                let name = piece.split("}}").next().unwrap_or_default();
                assert!(
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                    "placeholder {{{{{name}}}}}"
                );
            }
        }
    }
}

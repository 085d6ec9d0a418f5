//! Cross-checks the native Poseidon (constants derived with our own Grain LFSR,
//! reference permutation) against the independent `light-poseidon` crate.

use ark_ff::{BigInteger, PrimeField as ArkPrimeField};
use fabstir_zk::poseidon::{self, PoseidonParams};
use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::PrimeField;
use light_poseidon::{Poseidon, PoseidonHasher};

fn to_ark(x: &Fr) -> ark_bn254::Fr {
    ark_bn254::Fr::from_le_bytes_mod_order(&x.to_repr())
}

fn from_ark(x: &ark_bn254::Fr) -> Fr {
    let mut le = [0u8; 32];
    le.copy_from_slice(&x.into_bigint().to_bytes_le());
    Fr::from_repr(le).unwrap()
}

fn check_params(ours: &PoseidonParams) {
    let theirs = light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<ark_bn254::Fr>(
        ours.width as u8,
    )
    .unwrap();
    assert_eq!(theirs.full_rounds, ours.full_rounds);
    assert_eq!(theirs.partial_rounds, ours.partial_rounds);
    let flat: Vec<Fr> = ours.round_constants.iter().flatten().copied().collect();
    let theirs_ark: Vec<Fr> = theirs.ark.iter().map(from_ark).collect();
    assert_eq!(flat.len(), theirs_ark.len());
    for (i, (a, b)) in flat.iter().zip(&theirs_ark).enumerate() {
        assert_eq!(a, b, "round constant {i} differs for width {}", ours.width);
    }
    for (i, row) in ours.mds.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            assert_eq!(
                *v,
                from_ark(&theirs.mds[i][j]),
                "mds[{i}][{j}] differs for width {}",
                ours.width
            );
        }
    }
}

#[test]
fn constants_match_for_width_2() {
    check_params(poseidon::host_id_params());
}

#[test]
fn constants_match_for_width_12() {
    check_params(poseidon::commitment_params());
}

#[test]
fn hashes_match_on_varied_inputs() {
    let mut h1 = Poseidon::<ark_bn254::Fr>::new_circom(1).unwrap();
    let mut h11 = Poseidon::<ark_bn254::Fr>::new_circom(11).unwrap();
    for seed in 0u64..20 {
        let x = Fr::from(seed) * Fr::from(0x1234_5678_9abc_def1u64) - Fr::from(seed * seed);
        assert_eq!(
            poseidon::hash1(x),
            from_ark(&h1.hash(&[to_ark(&x)]).unwrap())
        );
        let inputs: [Fr; 11] = std::array::from_fn(|i| x * Fr::from(i as u64 + 3) + Fr::from(seed));
        let ark_inputs: Vec<_> = inputs.iter().map(to_ark).collect();
        assert_eq!(
            poseidon::hash11(&inputs),
            from_ark(&h11.hash(&ark_inputs).unwrap())
        );
    }
}

//! Poseidon parameter generation with the Grain LFSR, as specified by the
//! Poseidon paper's reference script (`generate_parameters_grain.sage`) that
//! circomlib used for its BN254 constants.
//!
//! Deriving the constants here (instead of embedding tables) keeps them
//! auditable: the tests compare every derived value against an independent
//! implementation (`light-poseidon`), so a transcription error cannot hide.

use halo2_axiom::halo2curves::bn256::Fr;
use halo2_axiom::halo2curves::ff::{Field, FromUniformBytes, PrimeField};

/// Bits of the BN254 scalar field modulus, the `n` of the Grain initialisation.
const FIELD_BITS: u32 = 254;

/// The self-shrinking Grain LFSR of the Poseidon reference implementation.
pub(crate) struct Grain {
    /// 80-bit state; bit 79 is the oldest (`bit_sequence[0]` in the reference).
    state: u128,
}

impl Grain {
    /// Initialises the LFSR for a prime field (`field = 1`) and the x^alpha
    /// S-box (`sbox = 0`) with the given width and round numbers, and discards
    /// the first 160 output bits, exactly as the reference script does.
    pub(crate) fn new(t: u32, full_rounds: u32, partial_rounds: u32) -> Self {
        // (value, width) fields, most significant first.
        let fields: [(u32, u32); 7] = [
            (1, 2),
            (0, 4),
            (FIELD_BITS, 12),
            (t, 12),
            (full_rounds, 10),
            (partial_rounds, 10),
            ((1 << 30) - 1, 30),
        ];
        let mut state = 0u128;
        for (value, width) in fields {
            state = (state << width) | (u128::from(value) & ((1u128 << width) - 1));
        }
        let mut grain = Self { state };
        for _ in 0..160 {
            grain.clock();
        }
        grain
    }

    /// Bit `i` of the reference's `bit_sequence` (0 = oldest).
    fn bit(&self, i: u32) -> u128 {
        (self.state >> (79 - i)) & 1
    }

    /// One LFSR step; returns the new bit.
    fn clock(&mut self) -> bool {
        let new =
            self.bit(62) ^ self.bit(51) ^ self.bit(38) ^ self.bit(23) ^ self.bit(13) ^ self.bit(0);
        self.state = ((self.state << 1) | new) & ((1u128 << 80) - 1);
        new == 1
    }

    /// Next output bit of the self-shrinking generator: bits are read in
    /// pairs and the second is output only when the first is 1.
    fn next_bit(&mut self) -> bool {
        loop {
            let keep = self.clock();
            let bit = self.clock();
            if keep {
                return bit;
            }
        }
    }

    /// `FIELD_BITS` output bits as a big-endian integer, in little-endian bytes.
    fn next_integer_le(&mut self) -> [u8; 32] {
        let mut le = [0u8; 32];
        for i in (0..FIELD_BITS).rev() {
            if self.next_bit() {
                le[(i / 8) as usize] |= 1 << (i % 8);
            }
        }
        le
    }

    /// A field element by rejection sampling (the reference's round constants).
    pub(crate) fn next_field_element_rejecting(&mut self) -> Fr {
        loop {
            let le = self.next_integer_le();
            if let Some(value) = Option::<Fr>::from(Fr::from_repr(le)) {
                return value;
            }
        }
    }

    /// A field element reduced modulo p (the reference's MDS sampling, `F(x)`).
    pub(crate) fn next_field_element_reduced(&mut self) -> Fr {
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(&self.next_integer_le());
        Fr::from_uniform_bytes(&wide)
    }
}

/// Round constants (one vector of `t` per round) and the Cauchy MDS matrix for
/// width `t`, generated as the reference script does. The reference also runs
/// subspace-trail checks on the matrix and resamples if they fail; the tests
/// pin that the first sample is the matrix circomlib uses for our widths.
pub(crate) fn generate(
    t: usize,
    full_rounds: usize,
    partial_rounds: usize,
) -> (Vec<Vec<Fr>>, Vec<Vec<Fr>>) {
    let mut grain = Grain::new(t as u32, full_rounds as u32, partial_rounds as u32);
    let rounds = full_rounds + partial_rounds;
    let round_constants: Vec<Vec<Fr>> = (0..rounds)
        .map(|_| {
            (0..t)
                .map(|_| grain.next_field_element_rejecting())
                .collect()
        })
        .collect();
    loop {
        let mut samples: Vec<Fr> = (0..2 * t)
            .map(|_| grain.next_field_element_reduced())
            .collect();
        while has_duplicates(&samples) {
            samples = (0..2 * t)
                .map(|_| grain.next_field_element_reduced())
                .collect();
        }
        let (xs, ys) = samples.split_at(t);
        let mut mds = vec![vec![Fr::ZERO; t]; t];
        let mut degenerate = false;
        for (i, x) in xs.iter().enumerate() {
            for (j, y) in ys.iter().enumerate() {
                match Option::<Fr>::from((*x + y).invert()) {
                    Some(inverse) => mds[i][j] = inverse,
                    None => degenerate = true,
                }
            }
        }
        if !degenerate {
            return (round_constants, mds);
        }
    }
}

fn has_duplicates(values: &[Fr]) -> bool {
    values
        .iter()
        .enumerate()
        .any(|(i, a)| values[i + 1..].iter().any(|b| a == b))
}

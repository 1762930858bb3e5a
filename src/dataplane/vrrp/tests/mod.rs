//! Conformance tests: keepalived wire vectors, RFC state-machine sequences, and a
//! deterministic random/mutation decode test.

mod conformance;
mod random;
mod reconfigure;
mod track;
mod vectors;

/// Hex (whitespace ignored) to bytes.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(digits.len() % 2, 0, "odd hex length");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

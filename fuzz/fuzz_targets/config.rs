//! Fuzz target `config`: decodes the structured input and runs
//! `breakerbox_fuzz_checks::config`, which panics on the first disagreement.
//! The same check replays saved inputs on stable: see `fuzz/README.md`.

#![no_main]

use breakerbox_fuzz_checks::config::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: breakerbox_fuzz_checks::quiet_deliberate_panics(),
    |input: Input| breakerbox_fuzz_checks::config(&input)
);

//! Fuzz target `core_vs_model`: decodes the structured input and runs
//! `fusebox_fuzz_checks::core_vs_model`, which panics on the first disagreement.
//! The same check replays saved inputs on stable: see `fuzz/README.md`.

#![no_main]

use fusebox_fuzz_checks::core_vs_model::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: fusebox_fuzz_checks::quiet_deliberate_panics(),
    |input: Input| fusebox_fuzz_checks::core_vs_model(&input)
);

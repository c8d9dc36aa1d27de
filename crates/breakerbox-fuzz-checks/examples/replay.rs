//! Replays raw fuzzer inputs on stable, without cargo-fuzz or nightly:
//!
//! ```text
//! cargo run -p breakerbox-fuzz-checks --example replay -- <target> <file>...
//! ```
//!
//! prints each input as the target decodes it, then runs the target's
//! check on it; a disagreement panics with the step and the operation.

use std::process::ExitCode;

fn main() -> ExitCode {
    breakerbox_fuzz_checks::quiet_deliberate_panics();
    let mut args = std::env::args().skip(1);
    let (Some(target), files) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: replay <core_vs_model|facade_sequence|config|registry_sequence> <file>...");
        return ExitCode::FAILURE;
    };
    for file in files {
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!("{file}: {err}");
                return ExitCode::FAILURE;
            }
        };
        match breakerbox_fuzz_checks::describe(&target, &bytes) {
            Some(input) => println!("{file}: {input}"),
            None => {
                println!("{file}: does not decode as a {target} input (libFuzzer would skip it)");
                continue;
            }
        }
        breakerbox_fuzz_checks::replay(&target, &bytes);
        println!("{file}: passes");
    }
    ExitCode::SUCCESS
}

//! Prints the Argon2id PHC hash of a password read from standard input, for `appliance.toml`.
//!
//! ```text
//! $ echo -n 'acm-lab' | acm-hash-password
//! $argon2id$v=19$m=19456,t=2,p=1$...$...
//! ```
//!
//! Only the first line of input is used (a trailing newline is not part of the password).
#![deny(unsafe_code)]

use std::io::{BufRead, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("acm-hash-password: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("acm-hash-password: empty password (type it on standard input)");
        return ExitCode::FAILURE;
    }
    match cli::auth::hash_password(password) {
        Ok(h) => {
            let _ = writeln!(std::io::stdout(), "{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("acm-hash-password: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `acta key show`.

use std::process::ExitCode;

use anyhow::Result;

use crate::datadir::DataDir;

pub fn show(data: &DataDir) -> Result<ExitCode> {
    let keys = data.keys();
    let (key, created) = keys.load_or_create()?;
    if created {
        eprintln!(
            "acta: made a new log key in `{}` (private part mode 0600)",
            keys.private.display()
        );
    }
    println!("{}", key.verifier());
    Ok(ExitCode::SUCCESS)
}

//! exportfs(8), the one owner of the kernel's export interface, run with
//! an argument vector.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::ExportError;

/// The exportfs binary, if installed.
pub fn binary() -> Option<PathBuf> {
    systables::sbin("exportfs")
}

fn run(args: &[String]) -> Result<(), ExportError> {
    let bin = binary().ok_or(ExportError::NoExportfs)?;
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ExportError::Io {
            what: "running",
            path: PathBuf::from("exportfs"),
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(ExportError::Exportfs {
        args: args.join(" "),
        code: out
            .status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "killed".into()),
        stderr: String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', "; "),
    })
}

/// `client:dir` as exportfs takes it (IPv6 clients in brackets).
fn target(client: &str, dir: &Path) -> String {
    format!("{client}:{}", dir.display())
}

/// Export `dir` to `client` with `options`.
pub fn export(client: &str, dir: &Path, options: &str) -> Result<(), ExportError> {
    run(&["-o".into(), options.into(), target(client, dir)])
}

/// Unexport `dir` from `client`.
pub fn unexport(client: &str, dir: &Path) -> Result<(), ExportError> {
    run(&["-u".into(), target(client, dir)])
}

//! Finding a Python that has a provider's official SDK, for the tests that drive the gateway the
//! way applications do. `scripts/test.sh` installs the SDKs into `target/sdk-venv`; `AGW_PYTHON`
//! may point at another interpreter. Under `CI` a missing SDK is a failure, locally a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A Python that can `import module`: `$AGW_PYTHON`, the workspace's `target/sdk-venv`, or
/// `python3`; `None` (and a "skipped" line on stderr) if none can, a failure under `CI`.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/sdk-venv/bin/python");
    let candidates = [
        std::env::var_os("AGW_PYTHON").map(PathBuf::from),
        Some(venv),
        Some(PathBuf::from("python3")),
    ];
    let found = candidates.into_iter().flatten().find(|python| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the {module} Python SDK is missing: run ./scripts/test.sh (it installs it into target/sdk-venv)"
        );
        eprintln!("skipped: the {module} Python SDK is not installed");
    }
    found
}

//! The Python peers of `tests/interop/peer.py`, run with the `.venv` that `scripts/test`
//! makes.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

pub fn python() -> PathBuf {
    let path = std::env::var_os("HYPERFLEET_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        path.exists(),
        "the Python peers need {} with tests/interop/requirements.txt installed: run `scripts/test` \
         (it creates .venv), or set HYPERFLEET_INTEROP_PYTHON to such an interpreter",
        path.display()
    );
    path
}

/// Runs a peer command and returns its JSON output lines.
pub async fn peer(emulator: &str, args: Vec<String>) -> Vec<Value> {
    let emulator = emulator.to_owned();
    tokio::task::spawn_blocking(move || {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/peer.py");
        let output = Command::new(python())
            .arg(script)
            .args(&args)
            .env("PUBSUB_EMULATOR_HOST", &emulator)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "peer {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    })
    .await
    .unwrap()
}

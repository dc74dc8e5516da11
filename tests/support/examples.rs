//! The example binaries `cargo test` builds next to the test binaries.

use std::path::PathBuf;

/// Path of example `name`; fails with a hint when it was not built.
pub fn binary(name: &str) -> PathBuf {
    let deps = std::env::current_exe().expect("the test binary's path");
    let path = deps
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} missing: run through `cargo test --all-features`",
        path.display()
    );
    path
}

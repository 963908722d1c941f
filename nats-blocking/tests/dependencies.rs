//! The point of this crate: no async runtime anywhere in its dependency tree.

use std::process::Command;

#[test]
fn no_async_runtime_in_the_dependency_tree() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", "nats-blocking", "--edges", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"nats-proto"), "unexpected tree:\n{tree}");
    for banned in ["tokio", "futures", "futures-core", "async-std", "smol", "async-io", "mio"] {
        assert!(!crates.contains(&banned), "{banned} in the dependency tree:\n{tree}");
    }
}

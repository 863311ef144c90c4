//! Shared by the test binaries: the plugin libraries, built once per binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ldbench::plugin::PluginDir;

/// The directory cargo puts the test binaries' sibling libraries in (target/release).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// `cargo test` does not build the plugin libraries (cdylibs): build them once, here.
pub fn plugins() -> &'static PluginDir {
    static DIR: OnceLock<PluginDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--workspace", "--lib", "--quiet"])
            .current_dir(root)
            .status()
            .unwrap();
        assert!(status.success(), "building the plugins failed");
        PluginDir::resolve(Some(&target_dir()))
    })
}

//! Loading is safe against another user on the machine: the trust chain up to `/`, and one open file from which
//! the checks, the hash and the loader all work.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

use ndotel::{Env, Registry};
use ndotel_tests::{install_plugin, plugin_dir, setup, so};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chown(path: &Path, uid: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; -1 keeps the group.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), uid, u32::MAX) }, 0);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn swapping_the_plugin_directory_while_loading_never_runs_the_other_users_code() {
    if !is_root() {
        eprintln!("\n*** SKIPPED: acting as another user needs root ***\n");
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("\n*** SKIPPED: python3 (the other user's swapping loop) is not installed ***\n");
        return;
    }
    let tmp = setup();
    chmod(tmp.path(), 0o755);
    // The other user owns the grandparent, so they can rename what it holds ...
    let grand = tmp.path().join("grand");
    std::fs::create_dir(&grand).unwrap();
    let plugins = plugin_dir(&grand, "plugins", &["otel_custom_distro"]);
    chmod(&plugins, 0o755);
    // ... and keep a directory of their own with a plugin of the same file name whose constructor leaves a marker.
    let evil = grand.join("evil");
    std::fs::create_dir(&evil).unwrap();
    install_plugin(&so("marker_plugin"), &evil, "otel_custom_distro");
    chown(&evil, NOBODY);
    chown(&evil.join("libotel_custom_distro.so"), NOBODY);
    chown(&grand, NOBODY);
    let marker = Path::new(&format!("/tmp/ndotel-marker-{}", std::process::id())).to_path_buf();
    let _ = std::fs::remove_file(&marker);

    // The other user swaps the two directories as fast as they can.
    let swap = "import os,sys\nd=sys.argv[1]\nwhile True:\n  try:\n    os.rename(d+'/plugins',d+'/t'); os.rename(d+'/evil',d+'/plugins'); os.rename(d+'/plugins',d+'/evil'); os.rename(d+'/t',d+'/plugins')\n  except OSError: pass\n";
    let mut attacker = Command::new("python3")
        .args(["-c", swap])
        .arg(&grand)
        .uid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let env = Env::from_pairs(
        [("OTEL_RUST_DISTRO_PATH", plugins.to_str().unwrap())],
        tmp.path(),
    );
    let mut refused = 0;
    for _ in 0..300 {
        let reg = Registry::discover(&env, None);
        // The chain check refuses the foreign-owned grandparent whatever the directory holds at that moment.
        assert!(
            !reg.distros().iter().any(|d| d.name == "marker_distro"),
            "the other user's plugin was loaded"
        );
        refused += reg
            .failures()
            .iter()
            .filter(|f| f.to_string().contains("owned by uid 65534"))
            .count();
    }
    attacker.kill().unwrap();
    attacker.wait().unwrap();
    assert!(
        !marker.exists(),
        "the other user's code ran in this process"
    );
    assert!(refused > 0, "the foreign-owned grandparent was never named");
}

use std::os::unix::process::CommandExt as _;

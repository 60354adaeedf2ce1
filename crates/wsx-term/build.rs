//! Fetches the page's third-party files (xterm.js and its fit addon, pinned
//! by web/package-lock.json) with `npm ci` when they are missing, and copies
//! them to OUT_DIR for `include_bytes!`: the binary serves its page offline,
//! and no third-party file is committed.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: &[(&str, &str)] = &[
    ("@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("@xterm/xterm/css/xterm.css", "xterm.css"),
    ("@xterm/addon-fit/lib/addon-fit.js", "addon-fit.js"),
];

fn main() {
    let web = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("web");
    let modules = web.join("node_modules");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    for (src, _) in FILES {
        println!("cargo:rerun-if-changed=web/node_modules/{src}");
    }
    let lock_changed = is_newer(
        &web.join("package-lock.json"),
        &modules.join(".package-lock.json"),
    );
    if lock_changed || FILES.iter().any(|(src, _)| !modules.join(src).is_file()) {
        npm_ci(&web);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for (src, dst) in FILES {
        let from = modules.join(src);
        std::fs::copy(&from, out.join(dst)).unwrap_or_else(|e| {
            panic!(
                "wsx-term: cannot copy {}: {e} (run `npm ci` in {})",
                from.display(),
                web.display()
            )
        });
    }
}

fn is_newer(a: &Path, b: &Path) -> bool {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (m(a), m(b)) {
        (Some(a), Some(b)) => a > b,
        (_, None) => true,
        _ => false,
    }
}

fn npm_ci(web: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(web)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "wsx-term: `npm ci` in {} failed ({s}): the page's xterm.js is fetched from the npm registry at build time; check the network or the npm cache",
            web.display()
        ),
        Err(e) => panic!(
            "wsx-term: cannot run npm ({e}): building wsx-term fetches xterm.js with npm; install Node.js and npm (Debian: apt-get install nodejs npm)"
        ),
    }
}

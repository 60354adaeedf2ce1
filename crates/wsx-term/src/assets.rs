//! The page and its files, embedded in the binary (xterm.js is fetched by
//! build.rs from the npm registry, pinned by web/package-lock.json).

/// The page.
pub const INDEX_HTML: &str = include_str!("../web/index.html");

/// An asset by file name: its bytes and content type.
pub fn get(name: &str) -> Option<(&'static [u8], &'static str)> {
    const JS: &str = "text/javascript; charset=utf-8";
    Some(match name {
        "xterm.js" => (include_bytes!(concat!(env!("OUT_DIR"), "/xterm.js")), JS),
        "xterm.css" => (
            include_bytes!(concat!(env!("OUT_DIR"), "/xterm.css")),
            "text/css; charset=utf-8",
        ),
        "addon-fit.js" => (
            include_bytes!(concat!(env!("OUT_DIR"), "/addon-fit.js")),
            JS,
        ),
        "term.js" => (include_bytes!("../web/term.js"), JS),
        _ => return None,
    })
}

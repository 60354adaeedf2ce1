//! The soak scenario of the `soak` binary for 10 s: many loopback
//! connections opening, sending and closing abnormally; then zero panics,
//! zero open connections, tasks and file descriptors back to their baseline.
//! The long run: `cargo run --release -p wsx-testkit --bin soak -- --secs 120`.

use wsx_testkit::soak as scenario;

#[test]
fn soak_10_seconds() {
    let opts = scenario::Options {
        secs: 10,
        clients: 100,
        max_connections: 80,
        ..scenario::Options::default()
    };
    let report = scenario::run(&opts);
    println!("{report}");
    assert!(
        report.passed(),
        "soak failed: {:?}\n{report}",
        report.failures()
    );
}

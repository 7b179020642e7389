//! The build script of every function (and of the hello-world baseline): link the binary as a
//! position-dependent executable. A PIE binary the size of these has some 20,000 addresses for
//! the loader to relocate at every start, each relocated page a private copy; measured under the
//! Lambda emulator, that was about a fifth of a function's init. Without PIE the binary's own
//! code and data sit at fixed addresses, while libraries, heap and stack are still randomised
//! (Go's default builds are the same). docs/performance.md has the figures; delete the
//! `build` line of a function's Cargo.toml to trade them for a randomised executable.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    // Both Lambda architectures, on Linux, where `-no-pie` is what the C linker driver takes.
    if target.ends_with("-linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

//! Link options for the `continuum` binary only (the libraries and tests are linked as usual).

fn main() {
    // Packed relative relocations (DT_RELR, glibc ≥ 2.36 and binutils ≥ 2.38, as on Debian 12):
    // the binary's 131 000 relative relocations take ≈ 20 KiB instead of a 3 MiB table that the
    // dynamic loader reads at every start and that stays mapped in every process
    // (docs/performance.md, "Memory").
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

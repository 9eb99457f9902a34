//! Links libyara 4.2 (Debian's `libyara-dev`) statically, with the libraries its modules
//! use (`magic`, `cuckoo` → jansson, `hash`/`pe` → libcrypto, libmagic → zlib, bzip2, xz),
//! so the `kuroko` binary needs no shared library the appliance image does not carry.
//! Why libyara and not `yara-x`: see the crate docs (build cost measured on this box).

use std::path::Path;

/// Where Debian puts the static archives; `KUROKO_LIBYARA_DIR` overrides.
const DEFAULT_DIR: &str = "/usr/lib/x86_64-linux-gnu";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=KUROKO_LIBYARA_DIR");
    let dir = std::env::var("KUROKO_LIBYARA_DIR").unwrap_or_else(|_| DEFAULT_DIR.to_string());
    for lib in ["yara", "magic", "jansson", "crypto", "z", "bz2", "lzma"] {
        let archive = Path::new(&dir).join(format!("lib{lib}.a"));
        if !archive.exists() {
            panic!(
                "{} is missing: install Debian's libyara-dev (listed in .ci/packages.txt; it \
                 brings libjansson-dev, libmagic-dev, libssl-dev), or set KUROKO_LIBYARA_DIR \
                 to the directory holding lib{lib}.a",
                archive.display()
            );
        }
    }
    println!("cargo:rustc-link-search=native={dir}");
    for lib in ["yara", "magic", "jansson", "crypto", "z", "bz2", "lzma"] {
        println!("cargo:rustc-link-lib=static={lib}");
    }
    println!("cargo:rustc-link-lib=dylib=m");
}

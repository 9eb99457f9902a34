//! A pyftpdlib FTP server of the test's own on a site host: one user (`alice` /
//! `secret`), a root directory the test fills, writable so clients can upload (STOR).
//! Started through [`Site::serve`], which waits until it listens on port 21.

use crate::proc::Server;
use crate::scenarios::PYTHON;
use crate::site::{Host, Site};
use anyhow::Context;
use std::path::Path;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";

/// pyftpdlib on `host`:21 serving `root` to [`USER`]/[`PASSWORD`], writable.
pub fn serve(site: &Site, host: Host, root: &Path) -> anyhow::Result<Server> {
    site.serve(
        host,
        "pyftpdlib",
        "tcp",
        21,
        &[
            PYTHON,
            "-m",
            "pyftpdlib",
            "-i",
            host.ip,
            "-p",
            "21",
            "-w",
            "-d",
            root.to_str().context("utf-8")?,
            "-u",
            USER,
            "-P",
            PASSWORD,
        ],
    )
}

//! Offline threat intelligence: reputation lists, site-category domain lists and the
//! brand list for phishing checks (files shipped with the firmware or named in
//! `[intel]`), and the consultant's intel packs (`kuroko intel import`: feeds of
//! indicators and YARA rules under `DATA/intel/`, matched against sessions and files, and
//! re-checked against the past when they change; `docs/INTEL.md`). Nothing here touches
//! the network.

pub mod archive;
pub mod brands;
pub mod categories;
pub mod feeds;
pub mod indicator;
pub mod live;
pub mod matcher;
pub mod orphans;
pub mod packs;
pub mod reputation;
pub mod retro;
pub mod synthetic;
pub mod yara_retro;

use std::path::{Path, PathBuf};

/// The first `<name>` file found in `dirs`, in order (the consultant's lists win over
/// the shipped ones).
pub(crate) fn find_in_dirs(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| Path::exists(p))
}

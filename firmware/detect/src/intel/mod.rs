//! Offline threat intelligence: reputation lists, site-category domain lists and the
//! brand list for phishing checks. Nothing here touches the network; everything is
//! loaded from files shipped with the firmware or named in `[intel]`.

pub mod brands;
pub mod categories;
pub mod reputation;

use std::path::{Path, PathBuf};

/// The first `<name>` file found in `dirs`, in order (the consultant's lists win over
/// the shipped ones).
pub(crate) fn find_in_dirs(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| Path::exists(p))
}

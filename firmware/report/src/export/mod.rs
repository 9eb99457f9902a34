//! The USB export bundle.

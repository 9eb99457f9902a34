//! The seed of a test that kills processes at random points: from `KT_SEED` when set (to
//! repeat a run that failed), else from the clock; the test prints it either way.

/// `KT_SEED`, or the clock's nanoseconds (odd, so a xorshift generator never sits at 0).
pub fn from_env() -> u64 {
    std::env::var("KT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        })
}

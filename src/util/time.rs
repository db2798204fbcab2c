//! The clock, in whole seconds since the Unix epoch.

/// Now, in seconds since 1970-01-01T00:00:00Z (0 if the clock is before it).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

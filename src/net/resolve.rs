//! A resolver that looks each host up once per agent.

/// Resolves each host once per process. ureq looks the host up for every
/// request, even one that reuses a pooled connection; a build fetching a
/// hundred .debs 16 at a time sent so many lookups at once that some
/// were dropped and stalled on the resolver's 5-second retry. The first
/// lookup of a host holds the lock, so the others wait for its answer.
#[derive(Debug, Default)]
pub struct CachedResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    seen: std::sync::Mutex<
        std::collections::HashMap<String, ureq::unversioned::resolver::ResolvedSocketAddrs>,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(addrs) = seen.get(&key) {
            return Ok(addrs.clone());
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        seen.insert(key, addrs.clone());
        Ok(addrs)
    }
}

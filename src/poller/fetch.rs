//! Fetching one feed: a conditional GET over HTTP(S), or a local file read, with every
//! way it can go wrong classified into a [`FetchError`].
//!
//! What a hostile or broken server can do is bounded here: the whole fetch (connect,
//! redirects, headers and body) is bounded by the configured timeout, so a server
//! that stalls mid-body cannot hold a slot forever; the body is read as a stream and
//! cut off at `max_body` bytes *after* decompression, so a gzip bomb costs at most
//! that much memory; redirects are followed here, at most [`MAX_REDIRECTS`], and a
//! loop is an error rather than five wasted requests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::StatusCode;
use url::Url;

use crate::config::{FeedUrl, Poller as PollerConfig};
use crate::net::{AddressPolicy, GuardedResolver, Refused};
use crate::store::FeedState;

/// Redirects followed before giving up; browsers allow about 20, feeds need 1 or 2.
pub const MAX_REDIRECTS: usize = 5;

/// What a server said about how long its answer stays fresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheHints {
    /// From `Cache-Control: max-age`, else `Expires` relative to `Date`.
    pub max_age: Option<Duration>,
}

/// A successful fetch.
#[derive(Debug)]
pub enum FetchOutcome {
    /// `304 Not Modified`: the validators we sent still match; no body was read.
    NotModified {
        cache: CacheHints,
        /// Set when a 301/308 chain was followed to get here.
        permanent_redirect: Option<Url>,
    },
    Fetched {
        /// The HTTP status of the answer; `None` for a local file.
        status: Option<u16>,
        /// The body, decompressed, at most `max_body` bytes.
        body: Vec<u8>,
        /// The charset named by `Content-Type`, if any.
        charset: Option<String>,
        etag: Option<String>,
        last_modified: Option<String>,
        cache: CacheHints,
        /// Where the feed now lives, when every redirect up to it was permanent
        /// (301/308); a 302/307 is a detour and is not remembered.
        permanent_redirect: Option<Url>,
    },
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot set up the HTTP client: {reason}")]
    Client { reason: String },
    #[error("timed out after {}", humantime::format_duration(*.after))]
    Timeout { after: Duration },
    #[error("cannot connect to {}: {reason}", .url.host_str().unwrap_or("the server"))]
    Connect { url: Url, reason: String },
    #[error("request to {url} failed: {reason}")]
    Request { url: Url, reason: String },
    #[error("reading the body from {url} failed: {reason}")]
    Body { url: Url, reason: String },
    #[error("gave up following redirects after {hops}: {reason} (at {url})")]
    Redirects {
        url: Url,
        hops: usize,
        reason: &'static str,
    },
    #[error("{url} redirected to an unusable location {location:?}")]
    BadRedirect { url: Url, location: String },
    #[error("server answered HTTP {status}{}", retry_note(.retry_after))]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("the feed is gone: {url} answered HTTP 410 Gone")]
    Gone { url: Url },
    #[error("{0}")]
    Refused(Refused),
    #[error("body larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("cannot read {}: {source}", .path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn retry_note(retry_after: &Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| {
        format!(" (retry after {})", humantime::format_duration(d))
    })
}

impl FetchError {
    /// Whether trying again later may well succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout { .. }
            | FetchError::Connect { .. }
            | FetchError::Request { .. }
            | FetchError::Body { .. } => true,
            FetchError::Status { status, .. } => {
                status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429)
            }
            FetchError::File { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
            ),
            FetchError::Client { .. }
            | FetchError::Redirects { .. }
            | FetchError::BadRedirect { .. }
            | FetchError::Gone { .. }
            | FetchError::Refused(_)
            | FetchError::TooLarge { .. } => false,
        }
    }

    /// The HTTP status the server answered with, when the failure is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(status.as_u16()),
            FetchError::Gone { .. } => Some(410),
            _ => None,
        }
    }

    /// How long the server asked us to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Fetches feeds: one HTTP client (connection pool) shared by every feed.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_body: u64,
    policy: AddressPolicy,
}

impl Fetcher {
    pub fn new(config: &PollerConfig) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.as_str())
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // Followed in `fetch_http`: reqwest's policy cannot tell a request which
            // of its hops were permanent, and a 301 must be remembered.
            .redirect(reqwest::redirect::Policy::none())
            // Every name is resolved through the address policy (src/net.rs), so
            // each connection, redirect hops included, is checked after resolution.
            .dns_resolver(Arc::new(GuardedResolver::new(config.address_policy())))
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .build()
            .map_err(|err| FetchError::Client {
                reason: error_chain(&err),
            })?;
        Ok(Fetcher {
            client,
            timeout: config.timeout,
            max_body: config.max_body,
            policy: config.address_policy(),
        })
    }

    /// Fetches an item's page (for a `full_text` feed) with the same limits, redirect
    /// handling and address policy as a feed. Unconditional: a page is fetched once,
    /// when its item is new, so there is no validator to send.
    pub async fn fetch_page(&self, url: &Url) -> Result<(Vec<u8>, Option<String>), FetchError> {
        let fresh = FeedState::default();
        let work = self.fetch_http(url, &fresh);
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(FetchOutcome::Fetched { body, charset, .. })) => Ok((body, charset)),
            Ok(Ok(FetchOutcome::NotModified { .. })) => Err(FetchError::Status {
                status: StatusCode::NOT_MODIFIED,
                retry_after: None,
            }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(FetchError::Timeout {
                after: self.timeout,
            }),
        }
    }

    /// Fetches `url`, conditionally on the validators in `state`.
    pub async fn fetch(
        &self,
        url: &FeedUrl,
        state: &FeedState,
    ) -> Result<FetchOutcome, FetchError> {
        let work = async {
            match url {
                FeedUrl::Http(url) => self.fetch_http(url, state).await,
                FeedUrl::File(path) => self.read_file(path, state).await,
            }
        };
        // reqwest's own timeout covers each request; this bounds the whole fetch,
        // redirects and a body that trickles in or stalls included.
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or(Err(FetchError::Timeout {
                after: self.timeout,
            }))
    }

    async fn fetch_http(&self, url: &Url, state: &FeedState) -> Result<FetchOutcome, FetchError> {
        let mut current = url.clone();
        let mut visited = vec![url.clone()];
        let mut permanent: Option<Url> = None;
        let mut all_permanent = true;
        loop {
            // A URL naming an IP address is never resolved, so the resolver's check
            // cannot see it; checked here on every hop.
            self.policy
                .check_url(&current)
                .map_err(FetchError::Refused)?;
            let mut request = self.client.get(current.clone());
            // A validator the server sent that is not a valid header value cannot be
            // sent back; fetching unconditionally is the safe fallback.
            if let Some(etag) = state.etag.as_deref().and_then(header_value) {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = state.last_modified.as_deref().and_then(header_value) {
                request = request.header(header::IF_MODIFIED_SINCE, date);
            }
            let response = request
                .send()
                .await
                .map_err(|err| self.classify(err, &current))?;
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return self.finish(response, &current, permanent).await;
            }
            let Some(location) = response.headers().get(header::LOCATION) else {
                // A 300 Multiple Choices or a broken redirect without a target.
                return Err(FetchError::Status {
                    status,
                    retry_after: None,
                });
            };
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            let next = match current.join(location.trim()) {
                Ok(next) if matches!(next.scheme(), "http" | "https") => next,
                _ => {
                    return Err(FetchError::BadRedirect {
                        url: current,
                        location,
                    })
                }
            };
            // Redirects followed so far; this one would be one more.
            let hops = visited.len() - 1;
            if visited.contains(&next) {
                return Err(FetchError::Redirects {
                    url: next,
                    hops,
                    reason: "the chain loops back to an address already visited",
                });
            }
            if hops >= MAX_REDIRECTS {
                return Err(FetchError::Redirects {
                    url: next,
                    hops,
                    reason: "too many redirects",
                });
            }
            all_permanent &= matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            if all_permanent {
                permanent = Some(next.clone());
            }
            tracing::debug!(status = status.as_u16(), to = %next, "Following a redirect.");
            visited.push(next.clone());
            current = next;
        }
    }

    /// Turns a final (non-redirect) response into an outcome, reading the body.
    async fn finish(
        &self,
        mut response: reqwest::Response,
        url: &Url,
        permanent_redirect: Option<Url>,
    ) -> Result<FetchOutcome, FetchError> {
        let status = response.status();
        let headers = response.headers();
        let server_now = http_date(headers, header::DATE);
        let cache = cache_hints(headers, server_now);
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified {
                cache,
                permanent_redirect,
            });
        }
        if status == StatusCode::GONE {
            return Err(FetchError::Gone { url: url.clone() });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status,
                retry_after: retry_after(headers, server_now),
            });
        }
        let charset = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(charset_of);
        let etag = header_text(headers, header::ETAG);
        let last_modified = header_text(headers, header::LAST_MODIFIED);
        // reqwest drops Content-Length when it decompresses, so this only catches
        // plain bodies early; the count below is what holds for every body.
        if let Some(length) =
            header_text(headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok())
        {
            if length > self.max_body {
                return Err(FetchError::TooLarge {
                    limit: self.max_body,
                });
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| self.classify(err, url))?
        {
            if (body.len() + chunk.len()) as u64 > self.max_body {
                return Err(FetchError::TooLarge {
                    limit: self.max_body,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fetched {
            status: Some(status.as_u16()),
            body,
            charset,
            etag,
            last_modified,
            cache,
            permanent_redirect,
        })
    }

    /// A local feed. Its modification time stands in for `Last-Modified`, so an
    /// unchanged file is not parsed again.
    async fn read_file(&self, path: &Path, state: &FeedState) -> Result<FetchOutcome, FetchError> {
        let file_error = |source| FetchError::File {
            path: path.to_path_buf(),
            source,
        };
        let meta = tokio::fs::metadata(path).await.map_err(file_error)?;
        if meta.is_dir() {
            return Err(file_error(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a directory",
            )));
        }
        if meta.len() > self.max_body {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        let stamp = meta.modified().ok().map(|time| {
            format!(
                "{} {}",
                DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Nanos, true),
                meta.len()
            )
        });
        if stamp.is_some() && stamp == state.last_modified {
            return Ok(FetchOutcome::NotModified {
                cache: CacheHints::default(),
                permanent_redirect: None,
            });
        }
        // One blocking read of the whole file, into a buffer of its size: tokio's
        // async file reads go to the blocking pool a chunk at a time, which cost more
        // than parsing the feed did (BENCHMARKS.md, "Store records").
        let (owned, limit) = (path.to_path_buf(), self.max_body);
        let body = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let file = std::fs::File::open(&owned)?;
            let mut body = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
            // The file may have grown since the metadata was read.
            file.take(limit + 1).read_to_end(&mut body)?;
            Ok(body)
        })
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join)))
        .map_err(file_error)?;
        if body.len() as u64 > self.max_body {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        Ok(FetchOutcome::Fetched {
            status: None,
            body,
            charset: None,
            etag: None,
            last_modified: stamp,
            cache: CacheHints::default(),
            permanent_redirect: None,
        })
    }

    fn classify(&self, err: reqwest::Error, url: &Url) -> FetchError {
        if err.is_timeout() {
            return FetchError::Timeout {
                after: self.timeout,
            };
        }
        if let Some(refused) = find_refused(&err) {
            return FetchError::Refused(refused);
        }
        let url = url.clone();
        let connect = err.is_connect();
        let body = err.is_body() || err.is_decode();
        let reason = error_chain(&err.without_url());
        if connect {
            FetchError::Connect { url, reason }
        } else if body {
            FetchError::Body { url, reason }
        } else {
            FetchError::Request { url, reason }
        }
    }
}

/// The address refusal behind a connection error, when the resolver refused.
fn find_refused(err: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        source = cause.source();
    }
    None
}

/// An error and its causes in one line, repeats dropped (reqwest and hyper often
/// wrap an error in one with the same text).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn header_value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(text).ok()
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn http_date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
}

/// The `charset` parameter of a `Content-Type`.
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
    })
}

/// Freshness from `Cache-Control: max-age` (which wins, as in HTTP caching), else
/// `Expires` measured from the server's `Date` (so our clock's skew does not count).
pub fn cache_hints(headers: &HeaderMap, server_now: Option<SystemTime>) -> CacheHints {
    let directives: Vec<String> = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if directives
        .iter()
        .any(|d| d == "no-cache" || d == "no-store")
    {
        return CacheHints::default();
    }
    let max_age = directives.iter().find_map(|d| {
        let value = d.strip_prefix("max-age")?.trim_start().strip_prefix('=')?;
        value.trim().trim_matches('"').parse::<u64>().ok()
    });
    if let Some(seconds) = max_age {
        return CacheHints {
            max_age: (seconds > 0).then(|| Duration::from_secs(seconds)),
        };
    }
    let expires = http_date(headers, header::EXPIRES).and_then(|expires| {
        let now = server_now.unwrap_or_else(SystemTime::now);
        expires.duration_since(now).ok().filter(|d| !d.is_zero())
    });
    CacheHints { max_age: expires }
}

/// `Retry-After` as seconds or an HTTP date (measured from the server's `Date`).
pub fn retry_after(headers: &HeaderMap, server_now: Option<SystemTime>) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = server_now.unwrap_or_else(SystemTime::now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn charset_comes_from_content_type() {
        assert_eq!(
            charset_of("application/rss+xml; charset=\"windows-1251\"").as_deref(),
            Some("windows-1251")
        );
        assert_eq!(
            charset_of("text/xml;CHARSET=koi8-r").as_deref(),
            Some("koi8-r")
        );
        assert_eq!(charset_of("text/xml"), None);
    }

    #[test]
    fn max_age_wins_over_expires() {
        let date = httpdate::parse_http_date("Fri, 14 Mar 2025 10:00:00 GMT").unwrap();
        let h = headers(&[
            ("cache-control", "public, max-age=600"),
            ("expires", "Fri, 14 Mar 2025 11:00:00 GMT"),
        ]);
        assert_eq!(
            cache_hints(&h, Some(date)).max_age,
            Some(Duration::from_secs(600))
        );
        let h = headers(&[("expires", "Fri, 14 Mar 2025 11:00:00 GMT")]);
        assert_eq!(
            cache_hints(&h, Some(date)).max_age,
            Some(Duration::from_secs(3600))
        );
        let h = headers(&[("expires", "0")]);
        assert_eq!(cache_hints(&h, Some(date)).max_age, None);
        let h = headers(&[("cache-control", "no-cache, max-age=600")]);
        assert_eq!(cache_hints(&h, Some(date)).max_age, None);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let date = httpdate::parse_http_date("Fri, 14 Mar 2025 10:00:00 GMT").unwrap();
        let h = headers(&[("retry-after", "120")]);
        assert_eq!(retry_after(&h, Some(date)), Some(Duration::from_secs(120)));
        let h = headers(&[("retry-after", "Fri, 14 Mar 2025 10:05:00 GMT")]);
        assert_eq!(retry_after(&h, Some(date)), Some(Duration::from_secs(300)));
        let h = headers(&[("retry-after", "soon")]);
        assert_eq!(retry_after(&h, Some(date)), None);
    }

    #[test]
    fn errors_are_classified() {
        let status = |code: u16| FetchError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(404).is_transient());
        assert!(!status(403).is_transient());
        assert!(FetchError::Timeout {
            after: Duration::from_secs(2)
        }
        .is_transient());
        assert!(!FetchError::TooLarge { limit: 10 }.is_transient());
        assert_eq!(
            FetchError::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(Duration::from_secs(120)),
            }
            .to_string(),
            "server answered HTTP 429 Too Many Requests (retry after 2m)"
        );
    }
}

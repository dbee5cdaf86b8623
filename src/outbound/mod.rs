//! The outbound HTTP client: one shared client with timeouts, retries and limits.
//!
//! Owns building requests, timeouts, retries with backoff, per-host concurrency and rate
//! limits, body size limits and JSON decoding. It knows nothing about tasks or jobs. The
//! backend is surf's curl client (libcurl via isahc): its I/O and DNS run on isahc's own agent
//! thread, never on the event loop, and no tokio is involved. The client is built on first use,
//! so an idle daemon that makes no request keeps its two threads.
//!
//! May touch: the network, as asked.
//!
//! # Examples
//!
//! ```no_run
//! use robin::outbound::{Client, Settings};
//!
//! # futures_lite::future::block_on(async {
//! let client = Client::new(Settings::default());
//! let prices: serde_json::Value =
//!     client.get_json("https://api.coingecko.com/api/v3/simple/price?ids=ethereum&vs_currencies=eur").await?;
//! # Ok::<_, robin::outbound::Error>(()) });
//! ```
mod limits;

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use isahc::config::Configurable;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use limits::{HostGates, join_all_bounded};

/// The `User-Agent` robin sends.
pub fn user_agent() -> String {
    format!("robin/{}", crate::VERSION)
}

/// Bounds and retry policy. Every field has a default that suits public price and RPC APIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Time to establish a connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Time for a whole request, body included. Default 30 s.
    pub timeout: Duration,
    /// Largest response body read. Default 16 MiB.
    pub max_body: usize,
    /// Extra attempts for idempotent requests. Default 3.
    pub retries: u32,
    /// First backoff; doubled per attempt, with jitter. Default 250 ms.
    pub backoff: Duration,
    /// Longest wait between attempts, `Retry-After` included. Default 30 s.
    pub max_backoff: Duration,
    /// Requests in flight per host. Default 4.
    pub per_host_concurrency: usize,
    /// Shortest time between two request starts to one host. Default none.
    pub per_host_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body: 16 * 1024 * 1024,
            retries: 3,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            per_host_concurrency: 4,
            per_host_interval: Duration::ZERO,
        }
    }
}

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request failed, naming the host and what to expect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not parse.
    #[error("invalid URL '{0}'")]
    InvalidUrl(String),
    /// The request took longer than a limit.
    #[error("request to {host} timed out after {limit:?}")]
    Timeout {
        /// The host.
        host: String,
        /// The limit that ran out.
        limit: Duration,
    },
    /// The host could not be reached, or the connection broke.
    #[error("cannot reach {host}: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// What curl said.
        reason: String,
    },
    /// The host answered with an error status.
    #[error("{host} answered {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status {
        /// The host.
        host: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, for the log.
        body: String,
    },
    /// The body was larger than [`Settings::max_body`].
    #[error("response from {host} is larger than {limit} bytes")]
    TooLarge {
        /// The host.
        host: String,
        /// The limit.
        limit: usize,
    },
    /// The body is not the JSON that was expected.
    #[error("unexpected response from {host}: expected {expected}: {source}")]
    Decode {
        /// The host.
        host: String,
        /// The Rust type it should have decoded into.
        expected: &'static str,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Whether an idempotent request may be tried again after this.
    fn retryable(&self) -> bool {
        match self {
            Error::Connect { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The shared client. Lives on the loop thread; every request's I/O runs on curl's thread.
pub struct Client {
    settings: Settings,
    /// Built on first use (it starts curl's agent thread).
    inner: OnceCell<surf::Client>,
    /// Per-host concurrency and rate limits.
    gates: HostGates,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Client {
    /// A client with these settings; nothing is started until the first request.
    pub fn new(settings: Settings) -> Client {
        let gates = HostGates::new(settings.per_host_concurrency, settings.per_host_interval);
        Client { settings, inner: OnceCell::new(), gates }
    }

    /// `GET url` and decode its JSON body. Retried on connection errors, 5xx and 429.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        let (host, body) = self.send(surf::http::Method::Get, url, None, true).await?;
        decode(&host, &body)
    }

    /// `POST url` with a JSON body and decode the JSON answer. Retried only when `idempotent`
    /// (a JSON-RPC read is; a transfer is not).
    pub async fn post_json<T: DeserializeOwned, B: Serialize>(
        &self,
        url: &str,
        body: &B,
        idempotent: bool,
    ) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|source| Error::Decode {
            host: host_of(url).unwrap_or_default(),
            expected: "a serializable request body",
            source,
        })?;
        let (host, answer) = self.send(surf::http::Method::Post, url, Some(bytes), idempotent).await?;
        decode(&host, &answer)
    }

    fn surf(&self) -> Result<&surf::Client> {
        if let Some(client) = self.inner.get() {
            return Ok(client);
        }
        let mut builder = isahc::HttpClient::builder()
            .connect_timeout(self.settings.connect_timeout)
            .timeout(self.settings.timeout)
            .default_header("User-Agent", user_agent());
        // Honour SSL_CERT_FILE explicitly: libcurl's own CA path may not be where this system
        // (or a corporate proxy's bundle) keeps its certificates.
        if let Some(bundle) = std::env::var_os("SSL_CERT_FILE") {
            builder = builder.ssl_ca_certificate(isahc::config::CaCertificate::file(bundle));
        }
        let curl =
            builder.build().map_err(|e| Error::Connect { host: String::new(), reason: e.to_string() })?;
        let client: surf::Client = surf::Config::new()
            .set_http_client(http_client::isahc::IsahcClient::from_client(curl))
            .set_timeout(None) // curl enforces both limits, and says which one ran out
            .try_into()
            .map_err(|e: isahc::Error| Error::Connect { host: String::new(), reason: e.to_string() })?;
        Ok(self.inner.get_or_init(|| client))
    }

    async fn send(
        &self,
        method: surf::http::Method,
        url: &str,
        body: Option<Vec<u8>>,
        idempotent: bool,
    ) -> Result<(String, Vec<u8>)> {
        let parsed = surf::Url::parse(url).map_err(|_| Error::InvalidUrl(url.to_string()))?;
        let host = parsed.host_str().ok_or_else(|| Error::InvalidUrl(url.to_string()))?.to_string();
        let _slot = self.gates.enter(&host).await;
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let outcome = self.attempt(method, parsed.clone(), body.clone(), &host).await;
            let (error, retry_after) = match outcome {
                Ok(body) => return Ok((host, body)),
                Err(failure) => failure,
            };
            let error = match error {
                // curl reports both of its limits as a timeout; say which one it was.
                Error::Timeout { host, .. } if started.elapsed() < self.settings.timeout => {
                    Error::Timeout { host, limit: self.settings.connect_timeout }
                }
                other => other,
            };
            if !idempotent || !error.retryable() || attempt >= self.settings.retries {
                return Err(error);
            }
            attempt += 1;
            let backoff = retry_after.unwrap_or_else(|| limits::backoff(self.settings.backoff, attempt));
            let wait = backoff.min(self.settings.max_backoff);
            log::debug!(
                "http: {error}; attempt {} of {} in {wait:?}",
                attempt + 1,
                self.settings.retries + 1
            );
            async_io::Timer::after(wait).await;
        }
    }

    /// One attempt: the body on success, or the error and any `Retry-After`.
    async fn attempt(
        &self,
        method: surf::http::Method,
        url: surf::Url,
        body: Option<Vec<u8>>,
        host: &str,
    ) -> std::result::Result<Vec<u8>, (Error, Option<Duration>)> {
        let client = self.surf().map_err(|e| (e, None))?;
        let mut request = surf::Request::new(method, url);
        if let Some(body) = body {
            request.set_body(body);
            request.set_content_type(surf::http::mime::JSON);
        }
        let mut response =
            client.send(request).await.map_err(|e| (classify(host, &e, self.settings.timeout), None))?;
        let status = u16::from(response.status());
        let retry_after = response
            .header("Retry-After")
            .and_then(|v| v.as_str().trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_limited(&mut response, self.settings.max_body, host).await.map_err(|e| (e, None))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Err((Error::Status { host: host.to_string(), status, body: snippet }, retry_after))
    }
}

/// Reads at most `limit` bytes of the body; more is an error, not a truncation.
async fn read_limited(response: &mut surf::Response, limit: usize, host: &str) -> Result<Vec<u8>> {
    let mut body = response.take_body().into_reader();
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut chunk)
            .await
            .map_err(|e| Error::Connect { host: host.into(), reason: e.to_string() })?;
        if n == 0 {
            return Ok(bytes);
        }
        if bytes.len() + n > limit {
            return Err(Error::TooLarge { host: host.into(), limit });
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

fn classify(host: &str, error: &surf::Error, limit: Duration) -> Error {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("timeout") {
        Error::Timeout { host: host.to_string(), limit }
    } else {
        Error::Connect { host: host.to_string(), reason: text }
    }
}

fn decode<T: DeserializeOwned>(host: &str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| Error::Decode {
        host: host.to_string(),
        expected: std::any::type_name::<T>(),
        source,
    })
}

fn host_of(url: &str) -> Option<String> {
    surf::Url::parse(url).ok()?.host_str().map(str::to_string)
}

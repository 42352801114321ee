//! Remote roots: parsing their URLs and storage options, resolving Hub revisions to commits,
//! and building the `object_store` client of a root.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, GetOptions, ObjectStore, RetryConfig,
};

use super::object::{remote_error, store_error};
use super::state::{raise_cache_capacity, runtime, state, Remote, CONFIGS};
use super::{internal, RemoteOptions, MAX_IN_FLIGHT};
use crate::error::{Error, Location, Result};

/// A remote root as registered: what every process needs to reach it again.
#[derive(Debug, Clone)]
pub(super) struct RootConfig {
    /// The root's location prefix (`s3://bucket/prefix`, `hf://datasets/org/name@<commit>`).
    pub(super) location: String,
    /// The URL the store is built from (`s3://bucket`, `https://host/path`).
    pub(super) store_url: String,
    /// The key prefix of the root inside the store.
    pub(super) prefix: String,
    pub(super) kind: Kind,
    pub(super) options: Vec<(String, String)>,
    pub(super) token: Option<String>,
    pub(super) retry: RetryConfig,
    pub(super) cache_dir: Option<PathBuf>,
    /// The storage options as given (what another process needs to open the root again).
    pub(super) given: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    S3,
    Gcs,
    Azure,
    Http,
}

fn parse_seconds(key: &str, v: &str) -> Result<Duration> {
    let t = v.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x * scale < 86_400.0 => {
            Ok(Duration::from_secs_f64(x * scale))
        }
        _ => Err(Error::InvalidArgument {
            msg: format!("storage option '{key}' must be a duration in seconds, got '{v}'"),
        }),
    }
}

/// Registers a remote root (a URL) and returns its location, the prefix of every location
/// below it. `hf://datasets/org/name[@revision]` is resolved to a commit here, once.
pub fn open_root(url: &str, opts: &RemoteOptions) -> Result<PathBuf> {
    if let Some(b) = opts.block_cache_bytes {
        raise_cache_capacity(b)?;
    }
    let url = url.trim_end_matches('/');
    // a root that is one file (an MCAP recording): its folder is the root the store knows
    if let Some((parent, name)) = url
        .rsplit_once('/')
        .filter(|(p, n)| crate::mcapsrc::is_mcap_name(std::path::Path::new(n)) && super::is_url(p))
    {
        return Ok(open_root(parent, opts)?.join(name));
    }
    let at = || Location::file(url);
    if opts.storage_options.is_empty() && opts.cache_dir.is_none() {
        // the location of a root opened before (a tool reopening it, a worker process):
        // its configuration again, every object at its current version
        let known = CONFIGS
            .lock()
            .map_err(|_| internal("poisoned lock"))?
            .iter()
            .find(|c| c.location == url)
            .cloned();
        if let Some(cfg) = known {
            let store = build_store(&cfg)?;
            let mut state = state()?;
            let st = state.as_mut().ok_or_else(|| internal("no process state"))?;
            st.remotes
                .insert(cfg.location.clone(), Arc::new(Remote::new(cfg, store)));
            return Ok(PathBuf::from(url));
        }
    }
    let bad = |msg: String| Error::InvalidArgument { msg };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad(format!("'{url}' is not a URL")))?;
    let mut options = Vec::new();
    let mut token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
    let mut retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: 8,
        retry_timeout: Duration::from_secs(60),
    };
    for (k, v) in &opts.storage_options {
        match k.as_str() {
            "max_retries" => {
                retry.max_retries =
                    v.trim().parse().ok().filter(|n| *n <= 100).ok_or_else(|| {
                        bad(format!(
                            "storage option 'max_retries' must be an integer 0..=100, got '{v}'"
                        ))
                    })?
            }
            "retry_timeout" => retry.retry_timeout = parse_seconds(k, v)?,
            "token" | "hf_token" | "bearer_token" => token = Some(v.clone()),
            _ => options.push((k.clone(), v.clone())),
        }
    }
    let (kind, location, store_url, prefix) = match scheme {
        "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "adl" | "azure" => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(format!("'{url}' names no bucket")));
            }
            let kind = match scheme {
                "s3" | "s3a" => Kind::S3,
                "gs" => Kind::Gcs,
                _ => Kind::Azure,
            };
            (
                kind,
                url.to_owned(),
                format!("{scheme}://{bucket}"),
                prefix.to_owned(),
            )
        }
        "http" | "https" => (Kind::Http, url.to_owned(), url.to_owned(), String::new()),
        "hf" => {
            let (location, store_url) = resolve_hub(rest, token.as_deref(), &retry, url)?;
            (Kind::Http, location, store_url, String::new())
        }
        _ => {
            return Err(bad(format!(
                "unsupported URL scheme '{scheme}://' in '{url}' (supported: s3://, gs://, \
                 az://, http(s)://, hf://datasets/...)"
            )))
        }
    };
    if kind != Kind::Http {
        token = None;
    }
    let cfg = RootConfig {
        location: location.clone(),
        store_url,
        prefix,
        kind,
        options,
        token,
        retry,
        cache_dir: opts.cache_dir.clone(),
        given: opts.storage_options.clone(),
    };
    // building the client checks the options now, not at the first read
    let store = build_store(&cfg).map_err(|e| match e {
        Error::InvalidArgument { .. } => e,
        other => Error::Remote {
            at: at(),
            msg: other.to_string(),
        },
    })?;
    {
        let mut configs = CONFIGS.lock().map_err(|_| internal("poisoned lock"))?;
        configs.retain(|c| c.location != location);
        configs.push(cfg.clone());
    }
    let mut state = state()?;
    let st = state.as_mut().ok_or_else(|| internal("no process state"))?;
    // a new dataset reads every object at its current version
    st.remotes
        .insert(location.clone(), Arc::new(Remote::new(cfg, store)));
    Ok(PathBuf::from(location))
}

/// `org/name[@rev][/sub/path]` of an `hf://datasets/...` URL: the root's location (with the
/// revision resolved to a commit) and the URL of its files on the Hub (`HF_ENDPOINT`).
fn resolve_hub(
    rest: &str,
    token: Option<&str>,
    retry: &RetryConfig,
    url: &str,
) -> Result<(String, String)> {
    let bad = |msg: String| Error::InvalidArgument { msg };
    let rest = rest.strip_prefix("datasets/").ok_or_else(|| {
        bad(format!(
            "'{url}': Hub roots are hf://datasets/<org>/<name>[@revision]"
        ))
    })?;
    let mut parts = rest.splitn(3, '/');
    let org = parts.next().unwrap_or_default();
    let name_rev = parts.next().unwrap_or_default();
    let sub = parts.next().unwrap_or_default();
    let (name, rev) = name_rev.split_once('@').unwrap_or((name_rev, "main"));
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !ok(org) || !ok(name) || !ok(rev) {
        return Err(bad(format!(
            "'{url}': Hub roots are hf://datasets/<org>/<name>[@revision] (names of letters, \
             digits, '-', '_' and '.')"
        )));
    }
    let endpoint = std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into());
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let commit = if rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()) {
        rev.to_owned()
    } else {
        let api = RootConfig {
            location: endpoint.clone(),
            store_url: endpoint.clone(),
            prefix: String::new(),
            kind: Kind::Http,
            options: Vec::new(),
            token: token.map(str::to_owned),
            retry: retry.clone(),
            cache_dir: None,
            given: Vec::new(),
        };
        let store = build_store(&api)?;
        let rel = format!("api/datasets/{org}/{name}/revision/{rev}");
        let shown = PathBuf::from(format!("{endpoint}/{rel}"));
        let rt = runtime()?;
        let body = rt
            .block_on(async {
                store
                    .get_opts(&ObjPath::from(rel.as_str()), GetOptions::default())
                    .await?
                    .bytes()
                    .await
            })
            .map_err(|e| match store_error(&shown, e) {
                Error::NotFound { at, .. } => Error::NotFound {
                    at,
                    detail: format!("no dataset '{org}/{name}' at revision '{rev}' on the Hub"),
                },
                other => other,
            })?;
        let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            remote_error(
                &shown,
                format!("the Hub's revision answer is not JSON: {e}"),
            )
        })?;
        let sha = doc
            .get("sha")
            .and_then(|s| s.as_str())
            .filter(|s| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| {
                remote_error(&shown, "the Hub's revision answer holds no commit 'sha'")
            })?;
        sha.to_owned()
    };
    let sub = sub.trim_matches('/');
    let tail = if sub.is_empty() {
        String::new()
    } else {
        format!("/{sub}")
    };
    Ok((
        format!("hf://datasets/{org}/{name}@{commit}{tail}"),
        format!("{endpoint}/datasets/{org}/{name}/resolve/{commit}{tail}"),
    ))
}

pub(super) fn build_store(cfg: &RootConfig) -> Result<Arc<dyn ObjectStore>> {
    let bad_key = |k: &str, e: object_store::Error| Error::InvalidArgument {
        msg: format!("storage option '{k}': {e}"),
    };
    let mut client = ClientOptions::new()
        .with_timeout(Duration::from_secs(30))
        .with_read_timeout(Duration::from_secs(10))
        .with_connect_timeout(Duration::from_secs(10))
        .with_pool_max_idle_per_host(MAX_IN_FLIGHT);
    let http_endpoint = |v: &str| v.trim().starts_with("http://");
    // A store's builder with the client options, the retry policy, the URL and then every
    // storage option parsed as that store's configuration key (the user's options win).
    macro_rules! configured {
        ($builder:expr, $key:ty, $client:expr) => {{
            let mut b = $builder
                .with_client_options($client)
                .with_retry(cfg.retry.clone())
                .with_url(&cfg.store_url);
            for (k, v) in &cfg.options {
                let key: $key = k.parse().map_err(|e| bad_key(k, e))?;
                b = b.with_config(key, v);
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }};
    }
    let built: std::result::Result<Arc<dyn ObjectStore>, object_store::Error> =
        match cfg.kind {
            Kind::S3 => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env();
                let mut plain = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .is_ok_and(|v| http_endpoint(&v));
                for (k, v) in &cfg.options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|e| bad_key(k, e))?;
                    if matches!(key, AmazonS3ConfigKey::Endpoint) {
                        plain = http_endpoint(v);
                    }
                    b = b.with_config(key, v);
                }
                if plain {
                    // an http:// endpoint (a local MinIO or moto) is what the user asked for
                    client = client.with_allow_http(true);
                }
                // user options after the defaults (client keys apply to the options set here)
                let mut b = b
                    .with_client_options(client)
                    .with_retry(cfg.retry.clone())
                    .with_url(&cfg.store_url);
                for (k, v) in &cfg.options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|e| bad_key(k, e))?;
                    if matches!(key, AmazonS3ConfigKey::Client(_)) {
                        b = b.with_config(key, v);
                    }
                }
                b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            Kind::Gcs => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                configured!(
                    GoogleCloudStorageBuilder::from_env(),
                    GoogleConfigKey,
                    client
                )
            }
            Kind::Azure => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                configured!(MicrosoftAzureBuilder::from_env(), AzureConfigKey, client)
            }
            Kind::Http => {
                use object_store::http::HttpBuilder;
                if cfg.store_url.starts_with("http://") {
                    client = client.with_allow_http(true);
                }
                if let Some(t) = &cfg.token {
                    let mut headers = http::header::HeaderMap::new();
                    let value = http::header::HeaderValue::from_str(&format!("Bearer {t}"))
                        .map_err(|_| Error::InvalidArgument {
                            msg: "the token holds characters an HTTP header cannot".into(),
                        })?;
                    headers.insert(http::header::AUTHORIZATION, value);
                    client = client.with_default_headers(headers);
                }
                configured!(HttpBuilder::new(), ClientConfigKey, client)
            }
        };
    built.map_err(|e| Error::InvalidArgument {
        msg: format!("cannot reach '{}': {e}", cfg.location),
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn bad_roots_are_invalid_arguments() {
        let o = RemoteOptions::default();
        for bad in [
            "ftp://host/x",
            "s3:///prefix",
            "hf://models/a/b",
            "hf://datasets/a",
            "hf://datasets/a/b@../x",
            "hf://datasets/../b",
            "hf://datasets/a/..@main",
        ] {
            let e = open_root(bad, &o).expect_err(bad);
            assert!(matches!(e, Error::InvalidArgument { .. }), "{bad}: {e}");
        }
        let o = RemoteOptions {
            storage_options: vec![("no_such_option".into(), "1".into())],
            ..Default::default()
        };
        let e = open_root("s3://bucket/x", &o).expect_err("unknown option");
        assert!(e.to_string().contains("no_such_option"), "{e}");
        let o = RemoteOptions {
            storage_options: vec![("retry_timeout".into(), "soon".into())],
            ..Default::default()
        };
        assert!(open_root("s3://bucket/x", &o).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_seconds("t", "2").ok(), Some(Duration::from_secs(2)));
        assert_eq!(parse_seconds("t", "2s").ok(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_seconds("t", "250ms").ok(),
            Some(Duration::from_millis(250))
        );
        assert!(parse_seconds("t", "-1").is_err());
        assert!(parse_seconds("t", "inf").is_err());
    }
}

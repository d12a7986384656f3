//! Model routing: which configured model entry serves a request, chosen by the request's `model`
//! (an exact name first, then the longest matching `prefix*` wildcard, `*` last).
//!
//! Everything a route needs on the request path (upstream address, path prefix, the provider
//! credential as a ready header value, label values) is computed once here at startup, so routing a
//! request is one hash lookup or a short scan, with no string building.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use agentgateway_wire::Operation;
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue};

use crate::config::{check_base_url, CredentialHeader, ModelConfig, ProviderApi, ProviderKind};
use crate::record::RouteInfo;

/// `max_tokens` sent to Anthropic for an OpenAI-style caller that gave none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Where and how to call the provider for one model entry.
#[derive(Debug)]
pub struct Upstream {
    pub scheme: Scheme,
    pub authority: Authority,
    /// The base URL's path without a trailing slash, e.g. `/v1`.
    pub base_path: String,
    /// The provider credential as its header (`authorization: Bearer ...`, `x-api-key`,
    /// `api-key`), the value marked sensitive so it is never printed.
    pub credential: Option<(HeaderName, HeaderValue)>,
    /// The header the provider reads its key from (also for a caller's own key, passed through).
    pub credential_header: CredentialHeader,
    /// The wire format the provider speaks.
    pub api: ProviderApi,
    /// Azure's dated API: deployment-addressed paths with `?api-version=`.
    pub azure_api_version: Option<Box<str>>,
    /// Azure's v1 API: `/v1` goes between the resource root and the operation.
    pub azure_v1: bool,
    /// Whether to ask for `stream_options.include_usage` on Chat Completions streams.
    pub stream_options: bool,
    /// OpenAI's own API (and Azure's): a translated output limit goes as
    /// `max_completion_tokens`, which its reasoning models require.
    pub max_completion_tokens: bool,
}

#[derive(Debug)]
pub struct Route {
    /// The configured name pattern (what `/v1/models` lists for exact names).
    pub name: Arc<str>,
    /// The model to send upstream instead of the requested one (`params.model`).
    pub target_model: Option<Arc<str>>,
    pub upstream: Upstream,
    pub info: Arc<RouteInfo>,
    /// `max_tokens` for translated requests to Anthropic that carry none.
    pub default_max_tokens: u64,
}

impl Upstream {
    /// The upstream path and query for `op`: the base path, Azure's deployment segment or `/v1`,
    /// the operation's path, then Azure's `api-version` or else the caller's query. `model` is
    /// what goes upstream (an Azure deployment name); `None` when it is not a usable URL segment.
    pub fn path_and_query(
        &self,
        op: Operation,
        model: &str,
        query: Option<&str>,
    ) -> Option<String> {
        let mut out = String::with_capacity(self.base_path.len() + model.len() + 64);
        out.push_str(&self.base_path);
        if let Some(version) = &self.azure_api_version {
            let plain = !model.is_empty()
                && model
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !plain {
                return None;
            }
            out.push_str("/deployments/");
            out.push_str(model);
            out.push_str(op.upstream_path());
            out.push_str("?api-version=");
            out.push_str(version);
            return Some(out);
        }
        if self.azure_v1 {
            out.push_str("/v1");
        }
        out.push_str(op.upstream_path());
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        Some(out)
    }
}

#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<Box<str>, Arc<Route>>,
    /// (prefix, route), longest prefix first.
    wildcards: Vec<(Box<str>, Arc<Route>)>,
    /// Exact names in config order, for `/v1/models`.
    listed: Vec<Arc<Route>>,
    /// The `/v1/models` answer, serialised once.
    models_json: bytes::Bytes,
}

impl Router {
    /// Routes for `models`, none of which may be `provider: mock`.
    pub fn new(models: &[ModelConfig]) -> Result<Router, String> {
        Router::with_mock(models, None)
    }

    /// Routes for `models`; `provider: mock` models call the mock server at `mock`. An optional
    /// model whose credential is empty gets no route (a warning says so).
    pub fn with_mock(models: &[ModelConfig], mock: Option<SocketAddr>) -> Result<Router, String> {
        let mut router = Router::default();
        for (i, model) in models.iter().enumerate() {
            if is_disabled(model) {
                tracing::warn!(
                    "llm.models[{i}] {:?} ({}) is disabled: it is optional and its params.apiKey \
                     is empty (is its environment variable set?)",
                    model.name,
                    model.provider.system(),
                );
                continue;
            }
            let base = base_url(model, i, mock)?;
            let route =
                Arc::new(build_route(model, &base).map_err(|e| format!("llm.models[{i}].{e}"))?);
            match model.name.strip_suffix('*') {
                Some(prefix) => router.wildcards.push((prefix.into(), route)),
                None => {
                    router
                        .exact
                        .insert(model.name.as_str().into(), route.clone());
                    router.listed.push(route);
                }
            }
        }
        router
            .wildcards
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        router.models_json = models_json(&router.listed);
        Ok(router)
    }

    /// The OpenAI-style model list of the exact names (wildcards cannot be listed).
    pub fn models_json(&self) -> bytes::Bytes {
        self.models_json.clone()
    }

    /// The model list restricted to names `keep` accepts (a caller's allow-list).
    pub fn models_json_where(&self, keep: impl Fn(&str) -> bool) -> bytes::Bytes {
        let routes: Vec<Arc<Route>> = self
            .listed
            .iter()
            .filter(|route| keep(&route.name))
            .cloned()
            .collect();
        models_json(&routes)
    }

    pub fn select(&self, model: &str) -> Option<&Arc<Route>> {
        self.exact.get(model).or_else(|| {
            self.wildcards
                .iter()
                .find(|(prefix, _)| model.starts_with(prefix.as_ref()))
                .map(|(_, route)| route)
        })
    }

    /// Routes with exact names, in config order.
    pub fn listed(&self) -> &[Arc<Route>] {
        &self.listed
    }
}

fn models_json(routes: &[Arc<Route>]) -> bytes::Bytes {
    let data: Vec<serde_json::Value> = routes
        .iter()
        .map(|route| {
            serde_json::json!({
                "id": route.name.as_ref(),
                "object": "model",
                "created": 0,
                "owned_by": route.info.system,
            })
        })
        .collect();
    bytes::Bytes::from(serde_json::json!({"object": "list", "data": data}).to_string())
}

/// An optional model without its credential.
fn is_disabled(model: &ModelConfig) -> bool {
    model.optional && model.params.api_key.as_deref() == Some("")
}

/// The API root: the mock server's for a mock model, else `params.baseUrl`, Azure's
/// per-resource root, or the preset's.
fn base_url(model: &ModelConfig, index: usize, mock: Option<SocketAddr>) -> Result<String, String> {
    if model.provider == ProviderKind::Mock {
        return mock
            .map(|addr| crate::mock::base_url(addr, index))
            .ok_or_else(|| format!("llm.models[{index}]: provider mock needs the mock server"));
    }
    if let Some(base) = &model.params.base_url {
        return Ok(base.clone());
    }
    Ok(match (&model.provider, &model.params.azure_resource_name) {
        (ProviderKind::Azure, Some(resource)) => {
            format!("https://{resource}.openai.azure.com/openai")
        }
        (kind, _) => kind.default_base_url().to_owned(),
    })
}

fn credential(model: &ModelConfig) -> Result<Option<(HeaderName, HeaderValue)>, String> {
    let Some(key) = &model.params.api_key else {
        return Ok(None);
    };
    credential_header(model.provider.credential_header(), key)
        .map(Some)
        .ok_or_else(|| "params.apiKey: contains characters not allowed in a header".to_string())
}

/// A key as the header `kind` carries it, marked sensitive; `None` if it cannot be a header.
pub fn credential_header(kind: CredentialHeader, key: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = match kind {
        CredentialHeader::Bearer => (http::header::AUTHORIZATION, format!("Bearer {key}")),
        CredentialHeader::XApiKey => (HeaderName::from_static("x-api-key"), key.to_owned()),
        CredentialHeader::ApiKey => (HeaderName::from_static("api-key"), key.to_owned()),
    };
    let mut value = HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

fn build_route(model: &ModelConfig, base: &str) -> Result<Route, String> {
    let uri = check_base_url(base).map_err(|e| format!("params.baseUrl: {e}"))?;
    let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTPS);
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("params.baseUrl: {base:?} has no host"))?;
    let port = authority
        .port_u16()
        .unwrap_or(if scheme == Scheme::HTTP { 80 } else { 443 });
    let azure = model.provider == ProviderKind::Azure;
    let version = model.params.azure_api_version.as_deref();
    let dated = version.filter(|v| !v.eq_ignore_ascii_case("v1") && azure);
    Ok(Route {
        name: model.name.as_str().into(),
        target_model: model.params.model.as_deref().map(Into::into),
        upstream: Upstream {
            scheme,
            authority: authority.clone(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
            credential: credential(model)?,
            credential_header: model.provider.credential_header(),
            api: model.provider.api(),
            azure_api_version: dated.map(Into::into),
            azure_v1: azure && dated.is_none(),
            stream_options: model.provider.accepts_stream_options(),
            max_completion_tokens: matches!(
                model.provider,
                ProviderKind::OpenAi | ProviderKind::Azure
            ),
        },
        default_max_tokens: model.params.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        info: Arc::new(RouteInfo {
            route: format!("llm/{}", model.name).into(),
            system: model.provider.system(),
            endpoint: format!("{}:{port}", authority.host()).into(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelParams, ProviderKind};

    fn model(name: &str, base: Option<&str>) -> ModelConfig {
        ModelConfig {
            name: name.into(),
            provider: ProviderKind::OpenAi,
            optional: false,
            params: ModelParams {
                base_url: base.map(Into::into),
                ..Default::default()
            },
        }
    }

    #[test]
    fn exact_beats_wildcards_and_longest_wildcard_wins() {
        let router = Router::new(&[
            model("*", None),
            model("gpt-*", None),
            model("gpt-4o-*", None),
            model("gpt-4o-mini", None),
        ])
        .unwrap();
        let pick = |m: &str| router.select(m).map(|r| r.name.to_string());
        assert_eq!(pick("gpt-4o-mini").as_deref(), Some("gpt-4o-mini"));
        assert_eq!(pick("gpt-4o-2024").as_deref(), Some("gpt-4o-*"));
        assert_eq!(pick("gpt-3.5").as_deref(), Some("gpt-*"));
        assert_eq!(pick("llama3").as_deref(), Some("*"));
        assert_eq!(router.listed().len(), 1);
        let models: serde_json::Value = serde_json::from_slice(&router.models_json()).unwrap();
        assert_eq!(models["data"][0]["id"], "gpt-4o-mini");
        assert_eq!(models["data"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn no_match_without_catch_all() {
        let router = Router::new(&[model("gpt-4o", None)]).unwrap();
        assert!(router.select("gpt-4o-mini").is_none());
    }

    #[test]
    fn upstream_parts_from_base_url() {
        let router = Router::new(&[
            model("a", Some("http://127.0.0.1:11434/v1/")),
            model("b", None),
        ])
        .unwrap();
        let a = router.select("a").unwrap();
        assert_eq!(a.upstream.scheme, Scheme::HTTP);
        assert_eq!(a.upstream.base_path, "/v1");
        assert_eq!(a.info.endpoint.as_ref(), "127.0.0.1:11434");
        let b = router.select("b").unwrap();
        assert_eq!(b.info.endpoint.as_ref(), "api.openai.com:443");
        assert_eq!(b.info.route.as_ref(), "llm/b");
    }

    #[test]
    fn optional_models_without_a_key_get_no_route() {
        let mut optional = model("gpt-4o-mini", None);
        optional.optional = true;
        optional.params.api_key = Some(String::new());
        let mut keyed = model("gpt-4o", None);
        keyed.optional = true;
        keyed.params.api_key = Some("sk-test".into());
        let router = Router::new(&[optional, keyed]).unwrap();
        assert!(router.select("gpt-4o-mini").is_none());
        assert!(router.select("gpt-4o").is_some());
    }

    #[test]
    fn mock_models_call_the_mock_server() {
        let mut mock = model("mock-gpt", None);
        mock.provider = ProviderKind::Mock;
        assert!(Router::new(std::slice::from_ref(&mock)).is_err());
        let addr: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let router = Router::with_mock(&[model("a", None), mock], Some(addr)).unwrap();
        let route = router.select("mock-gpt").unwrap();
        assert_eq!(route.upstream.base_path, "/1/v1");
        assert_eq!(route.info.endpoint.as_ref(), "127.0.0.1:4321");
        assert_eq!(route.info.system, "mock");
    }
}

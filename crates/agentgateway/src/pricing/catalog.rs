//! [`PriceCatalog`]: which price applies to a response. The builtin catalog comes first, then
//! the user's files in order, each entry replacing the one before it for the same provider and
//! model. A lookup prefers the model the provider says it ran (the response model), then the one
//! the caller asked for, and forgives a release date on either (`gpt-4o-mini-2024-07-18` is priced
//! as `gpt-4o-mini` when only the latter is listed), because providers answer with dated names.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::value::RawValue;

use super::{litellm, native, Entry, ModelPrice};

/// The generated default catalog (`scripts/gen-price-catalog.py`).
const BUILTIN: &str = include_str!("../../data/prices.json");

/// Names are hashed up to five times per request (provider, then up to four model probes);
/// foldhash is several times faster than SipHash on short strings, and catalog keys are not
/// chosen by callers.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Model prices by provider (`gen_ai_system` name) and model.
#[derive(Debug, Clone, Default)]
pub struct PriceCatalog {
    providers: Map<&'static str, Map<String, ModelPrice>>,
}

impl PriceCatalog {
    /// The catalog compiled into the binary. A test guarantees it parses; were it ever broken,
    /// the gateway would log the error and count every request as unpriced rather than stop.
    pub fn builtin() -> PriceCatalog {
        static PARSED: OnceLock<PriceCatalog> = OnceLock::new();
        PARSED
            .get_or_init(|| {
                Self::empty().with_text(BUILTIN).unwrap_or_else(|e| {
                    tracing::error!("builtin price catalog: {e}");
                    Self::empty()
                })
            })
            .clone()
    }

    /// The builtin catalog, then each file in order (later entries override earlier ones, per
    /// provider and model). The error names the file and the entry.
    pub fn load(files: &[PathBuf]) -> Result<PriceCatalog, String> {
        files.iter().try_fold(Self::builtin(), |catalog, file| {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("price catalog {}: {e}", file.display()))?;
            catalog
                .with_text(&text)
                .map_err(|e| format!("price catalog {}: {e}", file.display()))
        })
    }

    /// `provider` is the `gen_ai_system` name. Tries the response model, then the request model,
    /// each as given and then without a release-date suffix (`-2024-07-18`, `-20250929`,
    /// `@20240620`). Returns the catalog's name for the model that matched, and its price.
    pub fn lookup(
        &self,
        provider: &str,
        response_model: Option<&str>,
        request_model: Option<&str>,
    ) -> Option<(&str, &ModelPrice)> {
        let models = self.providers.get(provider)?;
        let find = |name: &str| {
            models
                .get_key_value(name)
                .map(|(model, price)| (model.as_str(), price))
        };
        [response_model, request_model]
            .into_iter()
            .flatten()
            .find_map(|name| find(name).or_else(|| undated(name).and_then(find)))
    }

    /// Number of priced models, over all providers.
    pub fn len(&self) -> usize {
        self.providers.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn empty() -> PriceCatalog {
        PriceCatalog::default()
    }

    /// This catalog with `price` set for `model` of `provider` (a price given in the config
    /// rather than a file, e.g. a mock model's).
    pub fn with_price(
        mut self,
        provider: &str,
        model: &str,
        price: ModelPrice,
    ) -> Result<PriceCatalog, String> {
        let provider = super::known_provider(provider)?;
        self.providers
            .entry(provider)
            .or_default()
            .insert(model.to_owned(), price);
        Ok(self)
    }

    /// This catalog with every price of `top` set over its own.
    pub fn overlaid(mut self, top: &PriceCatalog) -> PriceCatalog {
        for (provider, models) in &top.providers {
            let mine = self.providers.entry(provider).or_default();
            for (model, price) in models {
                mine.insert(model.clone(), price.clone());
            }
        }
        self
    }

    /// This catalog with the entries of one file's text applied on top.
    pub(super) fn with_text(mut self, text: &str) -> Result<PriceCatalog, String> {
        for entry in parse(text)? {
            self.providers
                .entry(entry.provider)
                .or_default()
                .insert(entry.model, entry.price);
        }
        Ok(self)
    }
}

/// Entries of one catalog file, its format told by content: a JSON object (LiteLLM's table or
/// our format), else YAML in our format. An empty file is an error: during a reload it is most
/// likely a file caught half-written, and keeping the previous prices is the safe reading.
pub(super) fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let start = text.trim_start();
    if start.is_empty() {
        return Err("the file is empty".to_owned());
    }
    if !start.starts_with('{') {
        return native::from_yaml(text);
    }
    let top: BTreeMap<String, &RawValue> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if litellm::is_litellm(&top) {
        litellm::entries(&top)
    } else {
        native::from_json(text, top)
    }
}

/// `name` without a trailing release date, if it has one: `@YYYYMMDD` (Vertex), `-YYYYMMDD`
/// (Anthropic) or `-YYYY-MM-DD` (OpenAI).
pub(crate) fn undated(name: &str) -> Option<&str> {
    let compact = name
        .rsplit_once('@')
        .filter(|(_, date)| is_compact_date(date))
        .or_else(|| {
            name.rsplit_once('-')
                .filter(|(_, date)| is_compact_date(date))
        });
    if let Some((model, _)) = compact {
        return (!model.is_empty()).then_some(model);
    }
    let (rest, day) = name.rsplit_once('-')?;
    let (rest, month) = rest.rsplit_once('-')?;
    let (model, year) = rest.rsplit_once('-')?;
    let dashed = digits(year, 4) && year.starts_with("20") && digits(month, 2) && digits(day, 2);
    (dashed && !model.is_empty()).then_some(model)
}

/// `YYYYMMDD` in this century.
fn is_compact_date(s: &str) -> bool {
    digits(s, 8) && s.starts_with("20")
}

fn digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

//! The `keys` command line: its clap definitions, and the mapping from flags to the admin API's
//! JSON bodies. The mapping is pure (the clock and the key's current state are parameters), so
//! what each flag sends is unit-tested without a server.
//!
//! `update` sends only what a flag names. `limits` and `metadata` are merged into the key's
//! current values (fetched first) and sent whole, with an explicit `null` for each cleared limit:
//! that reads the same whether the server replaces those objects or merges them. `budgets`, like
//! `allowedModels`, is a list and is replaced whole by the `--budget` flags given.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use crate::budget::BudgetSpec;
use crate::config::{parse_duration, Secret};
use crate::identity::ModelPatterns;
use crate::keys::record::budgets_json;
use crate::keys::validate::{parse_usd, parse_window};

/// Manage virtual keys through the admin API of a running gateway.
#[derive(Args)]
pub struct KeysArgs {
    /// Admin API base URL [env: AGW_ADMIN_URL] [default: http://127.0.0.1:15000]
    #[arg(long, global = true, value_name = "URL")]
    pub admin_url: Option<String>,
    /// Admin API bearer token [env: AGW_ADMIN_TOKEN]; prefer the environment variable, since
    /// command-line arguments are visible to other local users.
    #[arg(long, global = true, value_name = "TOKEN", value_parser = parse_secret)]
    pub admin_token: Option<Secret>,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key. Its secret is printed once and cannot be retrieved later.
    Create(CreateArgs),
    /// List every key as a table.
    List(JsonFlag),
    /// Show one key, with its usage.
    Get(IdArgs),
    /// Revoke a key: it stops authenticating at once.
    Revoke(IdArgs),
    /// Change a key's name, owner, models, limits, budgets, metadata or expiry.
    Update(UpdateArgs),
}

#[derive(Args)]
pub struct JsonFlag {
    /// Print the admin API's JSON response as it is.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct IdArgs {
    /// The key's id (see `keys list`).
    pub id: String,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Args)]
pub struct CreateArgs {
    /// A name for the key, e.g. the service that will use it.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub fields: KeyFields,
    #[command(flatten)]
    pub output: JsonFlag,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// The key's id (see `keys list`).
    pub id: String,
    /// A new name for the key.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub fields: KeyFields,
    /// Remove a setting (repeatable or comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FIELD")]
    pub clear: Vec<ClearField>,
    #[command(flatten)]
    pub output: JsonFlag,
}

/// The settings `create` and `update` share.
#[derive(Args, Default)]
pub struct KeyFields {
    /// The user the key belongs to (`apiKey.user` in metrics and logs).
    #[arg(long)]
    pub user: Option<String>,
    /// The team the key belongs to (`apiKey.team`).
    #[arg(long)]
    pub team: Option<String>,
    /// Requests per minute.
    #[arg(long, value_name = "N")]
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute.
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Tokens (input + output) per day.
    #[arg(long, value_name = "N")]
    pub tpd: Option<u64>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<u64>,
    /// A US-dollar budget, e.g. `10/1d`, or `5/month/soft` for one that is only reported, never
    /// refuses. Windows: 1h, 1d, 7d, 30d, month. Repeatable; on update, replaces the key's
    /// budgets, and `--budget none` removes them.
    #[arg(long, value_name = "USD/WINDOW[/soft]", value_parser = parse_budget)]
    pub budget: Vec<BudgetFlag>,
    /// Models the key may use: exact, `prefix*`, `*suffix` (repeatable or comma-separated;
    /// on update, replaces the list).
    #[arg(long, value_delimiter = ',', value_name = "PATTERN")]
    pub models: Vec<String>,
    /// Free-form metadata (repeatable; on update, merged into the key's metadata).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_metadata)]
    pub metadata: Vec<(String, String)>,
    /// Expire the key after this long, e.g. `30d`, `12h`, `1d12h`.
    #[arg(long, value_name = "DURATION", value_parser = parse_expires_in, conflicts_with = "expires_at")]
    pub expires_in: Option<Duration>,
    /// Expire the key at this time (RFC 3339, e.g. `2030-01-31T00:00:00Z`).
    #[arg(long, value_name = "TIME", value_parser = parse_expires_at)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// One `--budget` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetFlag {
    /// `none`: no budgets at all (update only).
    None,
    Budget(BudgetSpec),
}

/// What `update --clear` can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClearField {
    User,
    Team,
    Models,
    Metadata,
    Rpm,
    Tpm,
    Tpd,
    MaxParallel,
    Budgets,
    Expiry,
}

const LIMIT_FIELDS: [(&str, ClearField); 4] = [
    ("rpm", ClearField::Rpm),
    ("tpm", ClearField::Tpm),
    ("tpd", ClearField::Tpd),
    ("maxParallel", ClearField::MaxParallel),
];

// === value parsers ===

fn parse_secret(text: &str) -> Result<Secret, String> {
    if text.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(Secret(text.to_owned()))
}

fn parse_metadata(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?}: expected KEY=VALUE")),
    }
}

/// `30d`, `1d12h`, or anything [`parse_duration`] reads. Days exist only here: a key's lifetime
/// is counted in days, a config's timeouts never are.
pub fn parse_expires_in(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (days, rest) = match text.split_once('d') {
        Some((days, rest)) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => {
            let days: u64 = days
                .parse()
                .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
            (Some(days), rest)
        }
        _ => (None, text),
    };
    let rest = match (days, rest) {
        (Some(_), "") => Duration::ZERO,
        (_, rest) => parse_duration(rest).map_err(|e| format!("{e} (or d for days)"))?,
    };
    let days = Duration::from_secs(days.unwrap_or(0).saturating_mul(86_400));
    let total = days.saturating_add(rest);
    if total.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(total)
}

/// `10/1d`, `2.50/month/soft`, `$10/1d` (as `keys list` shows it), or `none`.
pub fn parse_budget(text: &str) -> Result<BudgetFlag, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(BudgetFlag::None);
    }
    let shape = || format!("{text:?}: expected USD/WINDOW[/soft], e.g. 10/1d or 5/month/soft");
    let mut parts = text.split('/');
    let (Some(usd), Some(window)) = (parts.next(), parts.next()) else {
        return Err(shape());
    };
    let soft = match (parts.next(), parts.next()) {
        (None, _) => false,
        (Some("soft"), None) => true,
        _ => return Err(shape()),
    };
    let usd = parse_usd(usd.strip_prefix('$').unwrap_or(usd))
        .ok_or_else(|| format!("{text:?}: the amount must be a positive number of dollars"))?;
    let window = parse_window(window)
        .ok_or_else(|| format!("{text:?}: the window must be one of 1h, 1d, 7d, 30d, month"))?;
    Ok(BudgetFlag::Budget(BudgetSpec { usd, window, soft }))
}

fn parse_expires_at(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?}: expected an RFC 3339 time such as 2030-01-31T00:00:00Z ({e})")
        })
}

// === bodies ===

/// The `POST /v1/keys` body.
pub fn create_body(args: &CreateArgs, now: DateTime<Utc>) -> Result<Value, String> {
    let fields = &args.fields;
    let mut body = Map::new();
    body.insert("name".into(), json!(args.name));
    insert_some(&mut body, "user", fields.user.as_deref().map(Value::from));
    insert_some(&mut body, "team", fields.team.as_deref().map(Value::from));
    if !fields.metadata.is_empty() {
        body.insert(
            "metadata".into(),
            Value::Object(metadata_map(&fields.metadata)),
        );
    }
    if !fields.models.is_empty() {
        body.insert("allowedModels".into(), models(&fields.models)?);
    }
    let limits: Map<String, Value> = LIMIT_FIELDS
        .iter()
        .filter_map(|(name, _)| Some((name.to_string(), json!(limit_flag(fields, name)?))))
        .collect();
    if !limits.is_empty() {
        body.insert("limits".into(), Value::Object(limits));
    }
    if fields.budget.contains(&BudgetFlag::None) {
        return Err("--budget none: a new key has no budgets to remove".into());
    }
    insert_some(&mut body, "budgets", budgets(&fields.budget)?);
    insert_some(
        &mut body,
        "expiresAt",
        expires_at(fields, now)?.map(Value::from),
    );
    Ok(Value::Object(body))
}

/// Whether [`update_body`] needs the key's current state: only to merge limits and metadata.
pub fn update_needs_current(args: &UpdateArgs) -> bool {
    let f = &args.fields;
    let limits = [f.rpm, f.tpm, f.tpd, f.max_parallel]
        .iter()
        .any(Option::is_some);
    let clears_a_limit = LIMIT_FIELDS.iter().any(|(_, c)| args.clear.contains(c));
    limits || clears_a_limit || !f.metadata.is_empty()
}

/// The `PATCH /v1/keys/{id}` body; `current` is the key as `GET` returned it (see
/// [`update_needs_current`]).
pub fn update_body(
    args: &UpdateArgs,
    current: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<Value, String> {
    check_contradictions(args)?;
    let fields = &args.fields;
    let cleared = |field| args.clear.contains(&field);
    let mut body = Map::new();
    insert_some(&mut body, "name", args.name.as_deref().map(Value::from));
    let text = |value: &Option<String>, clear| match value {
        Some(v) => Some(Value::from(v.as_str())),
        None => cleared(clear).then_some(Value::Null),
    };
    insert_some(&mut body, "user", text(&fields.user, ClearField::User));
    insert_some(&mut body, "team", text(&fields.team, ClearField::Team));
    if !fields.models.is_empty() {
        body.insert("allowedModels".into(), models(&fields.models)?);
    } else if cleared(ClearField::Models) {
        body.insert("allowedModels".into(), Value::Null);
    }
    if update_needs_current(args) {
        let current = current.ok_or("the key's current state is needed to merge limits")?;
        insert_some(&mut body, "limits", merged_limits(args, current));
        insert_some(&mut body, "metadata", merged_metadata(args, current));
    } else if cleared(ClearField::Metadata) {
        body.insert("metadata".into(), Value::Null);
    }
    match budgets(&fields.budget)? {
        Some(list) => body.insert("budgets".into(), list),
        None if cleared(ClearField::Budgets) => body.insert("budgets".into(), json!([])),
        None => None,
    };
    match expires_at(fields, now)? {
        Some(at) => body.insert("expiresAt".into(), Value::from(at)),
        None if cleared(ClearField::Expiry) => body.insert("expiresAt".into(), Value::Null),
        None => None,
    };
    if body.is_empty() {
        return Err("nothing to update: give at least one setting (see --help)".into());
    }
    Ok(Value::Object(body))
}

fn check_contradictions(args: &UpdateArgs) -> Result<(), String> {
    let f = &args.fields;
    let set = [
        (ClearField::User, "--user", f.user.is_some()),
        (ClearField::Team, "--team", f.team.is_some()),
        (ClearField::Models, "--models", !f.models.is_empty()),
        (ClearField::Rpm, "--rpm", f.rpm.is_some()),
        (ClearField::Tpm, "--tpm", f.tpm.is_some()),
        (ClearField::Tpd, "--tpd", f.tpd.is_some()),
        (
            ClearField::MaxParallel,
            "--max-parallel",
            f.max_parallel.is_some(),
        ),
        (ClearField::Budgets, "--budget", !f.budget.is_empty()),
        (
            ClearField::Expiry,
            "--expires-in/--expires-at",
            f.expires_in.is_some() || f.expires_at.is_some(),
        ),
    ];
    match set
        .iter()
        .find(|(field, _, given)| *given && args.clear.contains(field))
    {
        Some((field, flag, _)) => {
            let name = field.to_possible_value().map(|v| v.get_name().to_owned());
            Err(format!(
                "{flag} and --clear {} contradict each other",
                name.unwrap_or_default()
            ))
        }
        None => Ok(()),
    }
}

/// All four limits, each from its flag, else `null` if cleared, else the key's current value.
fn merged_limits(args: &UpdateArgs, current: &Value) -> Option<Value> {
    let touched = LIMIT_FIELDS
        .iter()
        .any(|(name, c)| limit_flag(&args.fields, name).is_some() || args.clear.contains(c));
    if !touched {
        return None;
    }
    let limits = LIMIT_FIELDS.iter().map(|(name, clear)| {
        let value = match limit_flag(&args.fields, name) {
            Some(n) => json!(n),
            None if args.clear.contains(clear) => Value::Null,
            None => current["limits"].get(*name).cloned().unwrap_or(Value::Null),
        };
        (name.to_string(), value)
    });
    Some(Value::Object(limits.collect()))
}

/// The key's metadata (or none, with `--clear metadata`) with the `--metadata` pairs on top.
fn merged_metadata(args: &UpdateArgs, current: &Value) -> Option<Value> {
    let pairs = &args.fields.metadata;
    if pairs.is_empty() {
        return args
            .clear
            .contains(&ClearField::Metadata)
            .then_some(Value::Null);
    }
    let mut map = match (
        &current["metadata"],
        args.clear.contains(&ClearField::Metadata),
    ) {
        (Value::Object(map), false) => map.clone(),
        _ => Map::new(),
    };
    map.extend(metadata_map(pairs));
    Some(Value::Object(map))
}

fn limit_flag(fields: &KeyFields, name: &str) -> Option<u64> {
    match name {
        "rpm" => fields.rpm,
        "tpm" => fields.tpm,
        "tpd" => fields.tpd,
        _ => fields.max_parallel,
    }
}

fn metadata_map(pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect()
}

/// Checked here too so a typo is named before anything is sent.
fn models(list: &[String]) -> Result<Value, String> {
    let list: Vec<String> = list.iter().map(|m| m.trim().to_owned()).collect();
    ModelPatterns::parse(&list).map_err(|e| format!("--models{e}"))?;
    Ok(json!(list))
}

/// The `budgets` list the flags ask for: `None` without flags, `[]` for `--budget none`.
fn budgets(flags: &[BudgetFlag]) -> Result<Option<Value>, String> {
    let specs: Vec<BudgetSpec> = flags
        .iter()
        .filter_map(|flag| match flag {
            BudgetFlag::Budget(spec) => Some(spec.clone()),
            BudgetFlag::None => None,
        })
        .collect();
    match (flags.is_empty(), specs.len() < flags.len()) {
        (true, _) => Ok(None),
        (false, true) if !specs.is_empty() => {
            Err("--budget none cannot be combined with other budgets".into())
        }
        _ => Ok(Some(budgets_json(&specs))),
    }
}

fn expires_at(fields: &KeyFields, now: DateTime<Utc>) -> Result<Option<String>, String> {
    let at = match (fields.expires_in, fields.expires_at) {
        (Some(after), _) => chrono::Duration::from_std(after)
            .ok()
            .and_then(|after| now.checked_add_signed(after))
            .ok_or("--expires-in: too far in the future")?,
        (None, Some(at)) => at,
        (None, None) => return Ok(None),
    };
    Ok(Some(at.to_rfc3339_opts(SecondsFormat::Secs, true)))
}

fn insert_some(body: &mut Map<String, Value>, name: &str, value: Option<Value>) {
    if let Some(value) = value {
        body.insert(name.into(), value);
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;

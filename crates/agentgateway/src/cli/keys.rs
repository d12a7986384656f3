//! `agentgateway keys ...`: each subcommand is one admin API call (two for an `update` that
//! merges limits or metadata) and one rendering of the answer. Output goes to stdout, errors to
//! stderr with exit code 1; the admin token is only ever put in the `Authorization` header.

use std::io::Write;
use std::process::ExitCode;

use chrono::Utc;
use http::Method;
use serde_json::Value;

use super::args::{
    create_body, update_body, update_needs_current, CreateArgs, KeysArgs, KeysCommand, UpdateArgs,
};
use super::client::{path_segment, AdminClient, DEFAULT_ADMIN_URL};
use super::{render, CliError};
use crate::config::Secret;

/// Runs one `keys` subcommand and reports any error on stderr.
pub fn run(args: KeysArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Usage(format!("cannot start the runtime: {e}")))
        .and_then(|runtime| runtime.block_on(execute(args, &|name| std::env::var(name).ok())));
    match result.and_then(|out| write_stdout(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand and returns what to print; `env` supplies `AGW_ADMIN_URL`/`AGW_ADMIN_TOKEN`.
pub async fn execute(
    args: KeysArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, CliError> {
    let url = args
        .admin_url
        .or_else(|| env("AGW_ADMIN_URL"))
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_owned());
    let token = match args.admin_token {
        Some(token) => Some(token),
        None => token_from_env(env)?,
    };
    let client = AdminClient::new(&url, token.as_ref())?;
    match args.command {
        KeysCommand::Create(create) => create_key(&client, &create).await,
        KeysCommand::List(output) => list(&client, output.json).await,
        KeysCommand::Get(get) => {
            let key = client.call(Method::GET, &key_path(&get.id), None).await?;
            Ok(details(&key, get.output.json, ""))
        }
        KeysCommand::Revoke(revoke) => {
            let path = key_path(&revoke.id);
            let key = client.call(Method::DELETE, &path, None).await?;
            let headline = "Revoked: the key no longer authenticates.\n";
            Ok(details(&key, revoke.output.json, headline))
        }
        KeysCommand::Update(update) => update_key(&client, &update).await,
    }
}

async fn create_key(client: &AdminClient, create: &CreateArgs) -> Result<String, CliError> {
    let body = create_body(create, Utc::now()).map_err(CliError::Usage)?;
    let key = client.call(Method::POST, "/v1/keys", Some(&body)).await?;
    let secret = key["key"].as_str().ok_or_else(|| {
        CliError::Protocol("the admin API did not return the new key's secret".into())
    })?;
    Ok(match create.output.json {
        true => pretty(&key),
        false => render::created(&key, secret),
    })
}

async fn list(client: &AdminClient, json: bool) -> Result<String, CliError> {
    let list = client.call(Method::GET, "/v1/keys", None).await?;
    let keys = list["data"].as_array().ok_or_else(|| {
        CliError::Protocol("the admin API's key list has no \"data\" array".into())
    })?;
    Ok(match json {
        true => pretty(&list),
        false => render::key_table(keys, Utc::now()),
    })
}

async fn update_key(client: &AdminClient, update: &UpdateArgs) -> Result<String, CliError> {
    let path = key_path(&update.id);
    let current = match update_needs_current(update) {
        true => Some(client.call(Method::GET, &path, None).await?),
        false => None,
    };
    let body = update_body(update, current.as_ref(), Utc::now()).map_err(CliError::Usage)?;
    let key = client.call(Method::PATCH, &path, Some(&body)).await?;
    Ok(details(&key, update.output.json, "Updated.\n"))
}

fn token_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Secret>, CliError> {
    match env("AGW_ADMIN_TOKEN") {
        Some(token) if token.trim().is_empty() => {
            Err(CliError::Usage("AGW_ADMIN_TOKEN is set but empty".into()))
        }
        token => Ok(token.map(Secret)),
    }
}

fn key_path(id: &str) -> String {
    format!("/v1/keys/{}", path_segment(id))
}

fn details(key: &Value, json: bool, headline: &str) -> String {
    match json {
        true => pretty(key),
        false => format!("{headline}{}", render::key_details(key, Utc::now())),
    }
}

fn pretty(value: &Value) -> String {
    // Serializing a `Value` cannot fail; the fallback only avoids a panic path.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// A closed pipe (`keys list | head`) is not an error worth reporting.
fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::Usage(format!("cannot write the output: {e}")))
        }
        _ => Ok(()),
    }
}

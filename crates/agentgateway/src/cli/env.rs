//! The environment's say over a served config: `STATS_ADDR`, `READINESS_ADDR` and `ADMIN_ADDR`
//! replace the config's addresses (so one file serves several environments), and
//! `AGW_ADMIN_TOKEN` supplies the admin token when the config has none (so the file need not
//! hold it). `env` is a parameter so tests need not touch the process environment.

use crate::config::{Config, Secret};

/// The variable that supplies `config.adminToken` when the config leaves it unset.
pub const ADMIN_TOKEN_VAR: &str = "AGW_ADMIN_TOKEN";

/// Applies the overrides; an unparsable address or an empty token is an error that names it.
pub fn apply_env(config: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    let global = &mut config.config;
    for (var, slot) in [
        ("STATS_ADDR", &mut global.stats_addr),
        ("READINESS_ADDR", &mut global.readiness_addr),
        ("ADMIN_ADDR", &mut global.admin_addr),
    ] {
        if let Some(value) = env(var) {
            *slot = Some(value.parse().map_err(|e| format!("{var}={value:?}: {e}"))?);
        }
    }
    match &global.admin_token {
        // An empty token would either lock everyone out or, worse, be compared against nothing.
        Some(token) if token.expose().trim().is_empty() => {
            Err("config.adminToken: is empty (is its environment variable set?)".to_owned())
        }
        Some(_) => Ok(()),
        None => match env(ADMIN_TOKEN_VAR) {
            Some(token) if token.trim().is_empty() => {
                Err(format!("{ADMIN_TOKEN_VAR} is set but empty"))
            }
            token => {
                global.admin_token = token.map(Secret);
                Ok(())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml, &|_| None).unwrap()
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn addresses_come_from_the_environment() {
        let mut c = config("config: {statsAddr: '127.0.0.1:1'}\nllm: {}\n");
        apply_env(
            &mut c,
            &env(&[("STATS_ADDR", "127.0.0.1:2"), ("ADMIN_ADDR", "[::1]:3")]),
        )
        .unwrap();
        assert_eq!(c.config.stats_addr, Some("127.0.0.1:2".parse().unwrap()));
        assert_eq!(c.config.admin_addr, Some("[::1]:3".parse().unwrap()));
        assert_eq!(c.config.readiness_addr, None);
        let err = apply_env(&mut c, &env(&[("READINESS_ADDR", "nope")])).unwrap_err();
        assert!(err.starts_with("READINESS_ADDR=\"nope\""), "{err}");
    }

    #[test]
    fn the_admin_token_comes_from_the_environment_only_when_unset() {
        let mut c = config("llm: {}\n");
        apply_env(&mut c, &env(&[(ADMIN_TOKEN_VAR, "from-env")])).unwrap();
        assert_eq!(c.config.admin_token, Some(Secret("from-env".into())));
        let mut c = config("config: {adminToken: from-file}\nllm: {}\n");
        apply_env(&mut c, &env(&[(ADMIN_TOKEN_VAR, "from-env")])).unwrap();
        assert_eq!(c.config.admin_token, Some(Secret("from-file".into())));
        let mut c = config("llm: {}\n");
        apply_env(&mut c, &env(&[])).unwrap();
        assert_eq!(c.config.admin_token, None);
    }

    #[test]
    fn an_empty_admin_token_is_named() {
        let mut c = config("llm: {}\n");
        let err = apply_env(&mut c, &env(&[(ADMIN_TOKEN_VAR, " ")])).unwrap_err();
        assert_eq!(err, "AGW_ADMIN_TOKEN is set but empty");
        let mut c = config("config: {adminToken: ''}\nllm: {}\n");
        let err = apply_env(&mut c, &env(&[(ADMIN_TOKEN_VAR, "ignored")])).unwrap_err();
        assert!(err.starts_with("config.adminToken: is empty"), "{err}");
    }
}

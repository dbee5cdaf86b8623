//! Checking command parameters: each checker returns the clean value or a reason the client
//! can act on.
use serde_json::Value;

/// Settings that `settings.set` accepts, with their defaults (shown by `settings.get`).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("main_currency", "USD", "the currency balances are valued in, e.g. EUR"),
    ("price_api_url", "https://api.coingecko.com/api/v3", "a CoinGecko-compatible price API"),
    ("rpc_url", "", "an Ethereum JSON-RPC endpoint"),
    ("prices_interval_secs", "300", "seconds between price queries (>= 60)"),
    ("balances_interval_secs", "3600", "seconds between balance queries (>= 60)"),
];

/// A string parameter that must be present.
pub fn required_str<'a>(params: Option<&'a Value>, name: &str) -> Result<&'a str, String> {
    params
        .and_then(|p| p.get(name))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("expected a string \"{name}\""))
}

/// An optional string parameter.
pub fn optional_str<'a>(params: Option<&'a Value>, name: &str) -> Result<Option<&'a str>, String> {
    match params.and_then(|p| p.get(name)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{name}\" must be a string")),
    }
}

/// An EVM address: `0x` and 40 hex digits, stored lower-case.
pub fn evm_address(raw: &str) -> Result<String, String> {
    let hex = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X"));
    match hex {
        Some(hex) if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(format!("0x{}", hex.to_ascii_lowercase()))
        }
        _ => Err(format!("'{raw}' is not an EVM address (0x followed by 40 hex digits)")),
    }
}

/// An asset identifier such as a CoinGecko id (`ethereum`) or a symbol.
pub fn asset(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(format!("'{raw}' is not an asset identifier (letters, digits, - _ .)"))
    }
}

/// A chain name; only `eth` is supported so far.
pub fn chain(raw: Option<&str>) -> Result<String, String> {
    match raw.unwrap_or("eth") {
        "eth" => Ok("eth".into()),
        other => Err(format!("unsupported chain '{other}' (supported: eth)")),
    }
}

/// A user name for `unlock`: it names a directory, so only a safe subset is allowed.
pub fn username(raw: &str) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && !raw.starts_with('.')
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(format!("'{raw}' is not a valid user name (letters, digits, - _ .)"))
    }
}

/// Settings that set a job's interval: `(setting, job)`.
pub const INTERVAL_SETTINGS: &[(&str, &str)] =
    &[("prices_interval_secs", "query_prices"), ("balances_interval_secs", "query_balances")];

/// A known setting's value, checked.
pub fn setting(name: &str, value: &str) -> Result<String, String> {
    match name {
        "main_currency" => {
            let ok = (3..=5).contains(&value.len()) && value.chars().all(|c| c.is_ascii_uppercase());
            if ok { Ok(value.into()) } else { Err(format!("'{value}' is not a currency code such as EUR")) }
        }
        "price_api_url" | "rpc_url" => {
            if value.starts_with("http://") || value.starts_with("https://") {
                Ok(value.trim_end_matches('/').into())
            } else {
                Err(format!("'{value}' is not an http:// or https:// URL"))
            }
        }
        "prices_interval_secs" | "balances_interval_secs" => match value.parse::<u64>() {
            Ok(secs) if secs >= 60 => Ok(secs.to_string()),
            _ => Err(format!("'{value}' is not a number of seconds >= 60")),
        },
        other => {
            let known: Vec<&str> = SETTINGS.iter().map(|(n, _, _)| *n).collect();
            Err(format!("unknown setting '{other}' (known: {})", known.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_lower_cased() {
        assert_eq!(
            evm_address("0xAbCdEf0123456789abcdef0123456789ABCDEF01").unwrap(),
            "0xabcdef0123456789abcdef0123456789abcdef01"
        );
        assert!(evm_address("0x123").is_err());
        assert!(evm_address("abcdef0123456789abcdef0123456789abcdef01").is_err());
        assert!(evm_address("0xZZcdef0123456789abcdef0123456789abcdef01").is_err());
    }

    #[test]
    fn settings_are_validated() {
        assert_eq!(setting("main_currency", "EUR").unwrap(), "EUR");
        assert!(setting("main_currency", "euro").is_err());
        assert_eq!(setting("rpc_url", "http://127.0.0.1:8545/").unwrap(), "http://127.0.0.1:8545");
        assert!(setting("rpc_url", "ftp://x").is_err());
        assert!(setting("prices_interval_secs", "5").is_err());
        assert!(setting("colour", "blue").unwrap_err().contains("known: main_currency"));
    }

    #[test]
    fn user_names_cannot_escape_their_directory() {
        assert!(username("alice").is_ok());
        for bad in ["", "..", "../root", "a/b", ".hidden"] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }
}

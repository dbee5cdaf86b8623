//! Checking command parameters: each checker returns the clean value or a reason the client
//! can act on.
use serde_json::Value;

use super::command::Command;

/// Why params were refused, in words the caller can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

/// A job interval's bounds in seconds: a minute to a year.
pub const INTERVAL_SECS: std::ops::RangeInclusive<u64> = 60..=365 * 24 * 3600;
/// Longest URL a setting may hold.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest account label, in characters.
pub const MAX_LABEL_CHARS: usize = 128;

/// Settings that `settings.set` accepts, with their defaults (shown by `settings.get`).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("main_currency", "USD", "the currency balances are valued in, e.g. EUR"),
    ("price_api_url", "https://api.coingecko.com/api/v3", "a CoinGecko-compatible price API"),
    ("rpc_url", "", "an Ethereum JSON-RPC endpoint"),
    ("prices_interval_secs", "300", "seconds between price queries (60 to 31536000)"),
    ("balances_interval_secs", "3600", "seconds between balance queries (60 to 31536000)"),
];

/// A request's params, read field by field.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a>(Option<&'a Value>);

impl<'a> Params<'a> {
    /// Wraps the raw params (`None` when the request had none).
    pub fn new(raw: Option<&'a Value>) -> Params<'a> {
        Params(raw)
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.and_then(|p| p.get(name)).filter(|v| !v.is_null())
    }

    /// A parameter of any JSON type, if present and not null.
    pub fn value(&self, name: &str) -> Option<&'a Value> {
        self.get(name)
    }

    /// `command`, if the request carried no params (absent, `null` or `{}`).
    pub fn none(&self, command: Command) -> Result<Command, Invalid> {
        match self.0 {
            None | Some(Value::Null) => Ok(command),
            Some(Value::Object(map)) if map.is_empty() => Ok(command),
            Some(_) => Err(Invalid("takes no params".into())),
        }
    }

    /// A string parameter that must be present.
    pub fn required_str(&self, name: &str) -> Result<&'a str, Invalid> {
        self.get(name).and_then(Value::as_str).ok_or_else(|| Invalid(format!("expected a string \"{name}\"")))
    }

    /// An optional string parameter.
    pub fn optional_str(&self, name: &str) -> Result<Option<&'a str>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Invalid(format!("\"{name}\" must be a string"))),
        }
    }

    /// A boolean parameter that must be present.
    pub fn required_bool(&self, name: &str) -> Result<bool, Invalid> {
        self.get(name)
            .and_then(Value::as_bool)
            .ok_or_else(|| Invalid(format!("expected {{\"{name}\": true|false}}")))
    }

    /// An optional boolean parameter.
    pub fn optional_bool(&self, name: &str) -> Result<Option<bool>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => {
                value.as_bool().map(Some).ok_or_else(|| Invalid(format!("\"{name}\" must be true or false")))
            }
        }
    }

    /// A non-negative integer parameter that must be present.
    pub fn required_u64(&self, name: &str) -> Result<u64, Invalid> {
        self.optional_u64(name)?.ok_or_else(|| Invalid(format!("expected {{\"{name}\": N}}")))
    }

    /// An optional non-negative integer parameter.
    pub fn optional_u64(&self, name: &str) -> Result<Option<u64>, Invalid> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| Invalid(format!("\"{name}\" must be a whole number >= 0"))),
        }
    }
}

/// An EVM address: `0x` and 40 hex digits, stored lower-case.
pub fn evm_address(raw: &str) -> Result<String, Invalid> {
    let hex = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X"));
    match hex {
        Some(hex) if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            Ok(format!("0x{}", hex.to_ascii_lowercase()))
        }
        _ => Err(Invalid(format!("'{raw}' is not an EVM address (0x followed by 40 hex digits)"))),
    }
}

/// An asset identifier such as a CoinGecko id (`ethereum`) or a symbol.
pub fn asset(raw: &str) -> Result<String, Invalid> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Invalid(format!("'{raw}' is not an asset identifier (letters, digits, - _ .)")))
    }
}

/// A tracked asset's identifier as `assets.remove` takes it: a plain id, or a token's
/// `eip155:1/erc20:<contract>` (the contract lower-cased).
pub fn asset_identifier(raw: &str) -> Result<String, Invalid> {
    match raw.strip_prefix(crate::db::Asset::ERC20_PREFIX) {
        Some(contract) => Ok(format!("{}{}", crate::db::Asset::ERC20_PREFIX, evm_address(contract)?)),
        None => asset(raw),
    }
}

/// A token's symbol: 1 to 16 characters, no spaces or control characters.
pub fn symbol(raw: &str) -> Result<String, Invalid> {
    let ok =
        (1..=16).contains(&raw.chars().count()) && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Invalid(format!("'{}' is not a symbol (1 to 16 characters, no spaces)", shown(raw))))
    }
}

/// A chain name; only `eth` is supported so far.
pub fn chain(raw: Option<&str>) -> Result<String, Invalid> {
    match raw.unwrap_or("eth") {
        "eth" => Ok("eth".into()),
        other => Err(Invalid(format!("unsupported chain '{other}' (supported: eth)"))),
    }
}

/// A user name for `unlock`: it names a directory, so only a safe subset is allowed.
pub fn username(raw: &str) -> Result<String, Invalid> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && !raw.starts_with('.')
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(Invalid(format!("'{raw}' is not a valid user name (letters, digits, - _ .)")))
    }
}

/// Settings that set a job's interval: `(setting, job)`.
pub const INTERVAL_SETTINGS: &[(&str, &str)] =
    &[("prices_interval_secs", "query_prices"), ("balances_interval_secs", "query_balances")];

/// A known setting's value, checked.
pub fn setting(name: &str, value: &str) -> Result<String, Invalid> {
    match name {
        "main_currency" => {
            let ok = (3..=5).contains(&value.len()) && value.chars().all(|c| c.is_ascii_uppercase());
            if ok {
                Ok(value.into())
            } else {
                Err(Invalid(format!("'{}' is not a currency code such as EUR", shown(value))))
            }
        }
        "price_api_url" | "rpc_url" => http_url(value),
        "prices_interval_secs" | "balances_interval_secs" => match value.parse::<u64>() {
            Ok(secs) if INTERVAL_SECS.contains(&secs) => Ok(secs.to_string()),
            _ => Err(Invalid(format!(
                "'{}' is not a number of seconds from {} (a minute) to {} (a year)",
                shown(value),
                INTERVAL_SECS.start(),
                INTERVAL_SECS.end()
            ))),
        },
        other => Err(unknown_setting(other)),
    }
}

/// An http:// or https:// URL with a host, checked by a real URL parser, at most
/// [`MAX_URL_BYTES`], without control characters (which the parser would silently drop).
pub fn http_url(value: &str) -> Result<String, Invalid> {
    let refuse = |why: &str| Invalid(format!("'{}' is not a usable URL: {why}", shown(value)));
    if value.len() > MAX_URL_BYTES {
        return Err(refuse(&format!("longer than {MAX_URL_BYTES} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(refuse("it contains control characters"));
    }
    if value.trim() != value {
        return Err(refuse("it has spaces around it"));
    }
    let url = url::Url::parse(value).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("only http:// and https:// are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse("it has no host"));
    }
    if url.fragment().is_some() {
        return Err(refuse(
            "a '#' fragment is never sent; percent-encode it as %23 if it is part of the path",
        ));
    }
    // Stored as the parser understood it (`http:host` becomes `http://host`), so what a
    // settings listing shows is what the outbound client will ask.
    Ok(url.as_str().trim_end_matches('/').into())
}

/// An account label: at most [`MAX_LABEL_CHARS`] characters, no control characters.
pub fn label(raw: &str) -> Result<String, Invalid> {
    if raw.chars().count() > MAX_LABEL_CHARS || raw.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "a label is at most {MAX_LABEL_CHARS} characters without control characters"
        )));
    }
    Ok(raw.to_string())
}

/// A value as an error message shows it: control characters escaped, long ones cut.
fn shown(value: &str) -> String {
    let escaped: String = value.chars().take(80).flat_map(char::escape_default).collect();
    if value.chars().count() > 80 { format!("{escaped}...") } else { escaped }
}

/// A known setting's default; an error naming the known ones otherwise.
pub fn setting_default(name: &str) -> Result<&'static str, Invalid> {
    SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, default, _)| *default)
        .ok_or_else(|| unknown_setting(name))
}

fn unknown_setting(name: &str) -> Invalid {
    let known: Vec<&str> = SETTINGS.iter().map(|(n, _, _)| *n).collect();
    Invalid(format!("unknown setting '{name}' (known: {})", known.join(", ")))
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
        assert!(setting("rpc_url", "http://").is_err(), "no host");
        assert!(setting("rpc_url", "http://a b.example").is_err());
        assert!(setting("rpc_url", "http://node.example/\n").unwrap_err().0.contains("control characters"));
        assert!(setting("rpc_url", &format!("http://x/{}", "a".repeat(3000))).is_err());
        assert!(setting("rpc_url", " http://node.example").unwrap_err().0.contains("spaces"));
        assert!(setting("price_api_url", "http://p.example/api#v3").unwrap_err().0.contains("fragment"));
        assert_eq!(setting("rpc_url", "http:127.0.0.1:1").unwrap(), "http://127.0.0.1:1", "stored as parsed");
        assert!(setting("prices_interval_secs", "5").is_err());
        assert!(setting("prices_interval_secs", "18446744073709551615").is_err(), "no overflow at use");
        assert!(setting("prices_interval_secs", "31536001").is_err(), "more than a year");
        assert_eq!(setting("balances_interval_secs", "31536000").unwrap(), "31536000");
        assert!(setting("colour", "blue").unwrap_err().0.contains("known: main_currency"));
    }

    #[test]
    fn user_names_cannot_escape_their_directory() {
        assert!(username("alice").is_ok());
        for bad in ["", "..", "../root", "a/b", ".hidden"] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }
}

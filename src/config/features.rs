//! The typed registry of feature flags.
//!
//! Every flag is a [`Feature`] variant with a default and a description, so a typo in
//! `ROBIN_FEATURE_WEBSOCKET` or in the config file's `[features]` table is a start-up error
//! rather than a silently ignored setting.
use std::fmt;

use super::{Setting, Source};

/// A named part of the daemon that can be switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// The `/ws` notification endpoint.
    Websockets,
    /// The local control socket.
    Ipc,
    /// The periodic scheduler of background jobs.
    Scheduler,
    /// The JSON routes under `/api/1/` on the HTTP listener.
    HttpApi,
}

impl Feature {
    /// Every flag, in the order they are printed.
    pub const ALL: [Feature; 4] = [Feature::Websockets, Feature::Ipc, Feature::Scheduler, Feature::HttpApi];

    /// The name used in the config file, the environment and `status`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Websockets => "websockets",
            Feature::Ipc => "ipc",
            Feature::Scheduler => "scheduler",
            Feature::HttpApi => "http_api",
        }
    }

    /// Whether the flag is on when nobody says otherwise.
    pub fn default_enabled(self) -> bool {
        true
    }

    /// One line for humans.
    pub fn description(self) -> &'static str {
        match self {
            Feature::Websockets => "WebSocket notifications on /ws",
            Feature::Ipc => "control socket for robinctl and local processes",
            Feature::Scheduler => "periodic background jobs",
            Feature::HttpApi => "JSON API under /api/1/",
        }
    }

    /// Looks a flag up by its name.
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The environment variable that overrides this flag, `ROBIN_FEATURE_<NAME>`.
    pub fn env_var(self) -> String {
        format!("{}{}", ENV_PREFIX, self.name().to_ascii_uppercase())
    }

    fn index(self) -> usize {
        Feature::ALL.iter().position(|f| *f == self).expect("ALL lists every variant")
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The prefix of the feature-flag environment variables.
pub const ENV_PREFIX: &str = "ROBIN_FEATURE_";

/// The names of all flags, for error messages.
pub fn known_names() -> String {
    Feature::ALL.map(Feature::name).join(", ")
}

/// The resolved state of every flag, with where each value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    /// Indexed like [`Feature::ALL`].
    settings: [Setting<bool>; 4],
}

impl Default for Features {
    fn default() -> Self {
        Features::defaults()
    }
}

impl Features {
    /// Every flag at its default.
    pub fn defaults() -> Self {
        Features {
            settings: Feature::ALL.map(|f| Setting { value: f.default_enabled(), source: Source::Default }),
        }
    }

    /// Whether `feature` is on.
    pub fn enabled(&self, feature: Feature) -> bool {
        self.settings[feature.index()].value
    }

    /// The flag's value and source.
    pub fn get(&self, feature: Feature) -> &Setting<bool> {
        &self.settings[feature.index()]
    }

    /// Sets a flag (later layers call this over earlier ones).
    pub fn set(&mut self, feature: Feature, value: bool, source: Source) {
        self.settings[feature.index()] = Setting { value, source };
    }

    /// Every flag with its setting, in [`Feature::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Feature, &Setting<bool>)> {
        Feature::ALL.into_iter().zip(self.settings.iter())
    }
}

/// Parses a flag value from the environment: `true`/`false` or `1`/`0`, any case.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_env_vars_are_upper_case() {
        for feature in Feature::ALL {
            assert_eq!(Feature::from_name(feature.name()), Some(feature));
        }
        assert_eq!(Feature::HttpApi.env_var(), "ROBIN_FEATURE_HTTP_API");
        assert_eq!(Feature::from_name("websocket"), None);
    }

    #[test]
    fn booleans_accept_only_clear_spellings() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes please"), None);
    }
}

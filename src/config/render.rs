//! `--print-config`: the effective configuration as TOML, each value with its source.
use std::fmt::Write as _;

use super::{Config, Source};

impl Config {
    /// The configuration as TOML that could be fed back through `--config`, each value followed by
    /// a comment that says where it came from.
    pub fn render(&self) -> String {
        let mut out =
            String::from("# robind effective configuration; '# ...' says where each value came from\n");
        let line = |out: &mut String, key: &str, value: String, source: &Source| {
            let _ = writeln!(out, "{key} = {value}  # {source}");
        };
        line(&mut out, "listen", toml_string(&self.listen.value.to_string()), &self.listen.source);
        line(
            &mut out,
            "data_dir",
            toml_string(&self.data_dir.value.to_string_lossy()),
            &self.data_dir.source,
        );
        line(
            &mut out,
            "runtime_dir",
            toml_string(&self.runtime_dir.value.to_string_lossy()),
            &self.runtime_dir.source,
        );
        line(&mut out, "log_level", toml_string(&self.log_level.value), &self.log_level.source);
        let origins: Vec<String> = self.ws_origins.value.iter().map(|o| toml_string(o)).collect();
        line(&mut out, "ws_origins", format!("[{}]", origins.join(", ")), &self.ws_origins.source);
        match &self.api_token_file {
            Some(file) => {
                line(&mut out, "api_token_file", toml_string(&file.value.to_string_lossy()), &file.source)
            }
            None => out.push_str("# api_token_file: none\n"),
        }
        let generate = &self.generate_api_token;
        line(&mut out, "generate_api_token", generate.value.to_string(), &generate.source);
        // Command line and environment only: commented out so the output stays a valid file.
        for (key, setting) in [
            ("exit_with_parent", &self.exit_with_parent),
            ("stdin_lifeline", &self.stdin_lifeline),
            ("attach_existing", &self.attach_existing),
        ] {
            let _ =
                writeln!(out, "# {key} = {}  # {}; flag or environment only", setting.value, setting.source);
        }
        match &self.config_file {
            Some(file) => {
                let _ = writeln!(out, "# config file: {} ({})", file.value.display(), file.source);
            }
            None => out.push_str("# config file: none\n"),
        }
        out.push_str("\n[features]\n");
        for (feature, setting) in self.features.iter() {
            let _ = writeln!(
                out,
                "{} = {}  # {}; {}",
                feature.name(),
                setting.value,
                setting.source,
                feature.description()
            );
        }
        out
    }
}

fn toml_string(value: &str) -> String {
    // serde_json's string escaping is valid TOML basic-string escaping for every input.
    serde_json::Value::String(value.to_string()).to_string()
}

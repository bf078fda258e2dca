//! Config shared by every binary: value types (secrets that never print, durations
//! like `250ms`) and the flattened clap groups several binaries read the same way,
//! [`UpstreamArgs`] (how a service reaches the control plane) and [`LogArgs`].

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

/// Fewest characters a service token may have, wherever one is read: the control
/// plane's accepted tokens and the token the edge and ingest-hooks present.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a setting was refused. It names the variable, and never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a number followed by a unit.
    #[error("`{0}` is not a duration like 250ms, 10s, 5m, 24h or 30d")]
    NotADuration(String),
    /// A number with a unit other than ms, s, m, h and d.
    #[error("`{0}`: unit must be ms, s, m, h or d")]
    DurationUnit(String),
    /// A secret shorter than its minimum.
    #[error("{var}: needs at least {min} characters")]
    TooShort {
        /// The variable.
        var: &'static str,
        /// Least number of characters.
        min: usize,
    },
    /// A number that must be above zero.
    #[error("{0} must be positive")]
    NotPositive(&'static str),
    /// A `NOVA_HTTP_*` connection limit.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// Any other value the variable does not accept.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong, in words.
        reason: String,
    },
}

impl ConfigError {
    /// A value of `var` refused for `reason`.
    pub fn invalid(var: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            var,
            reason: reason.into(),
        }
    }
}

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Returns the secret value; call it only where the value is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the secret has at least `min` characters; the error names `var`, never
    /// the value.
    pub fn require_len(&self, var: &'static str, min: usize) -> Result<(), ConfigError> {
        if self.0.chars().count() < min {
            return Err(ConfigError::TooShort { var, min });
        }
        Ok(())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How a service reaches the control plane: `NOVA_CONTROL_PLANE_URL`,
/// `NOVA_CONTROL_PLANE_CA` and `NOVA_SERVICE_TOKEN` (flatten it into a binary's config).
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamArgs {
    /// Control-plane gRPC URL.
    #[arg(
        long = "control-plane-url",
        value_name = "CONTROL_PLANE_URL",
        env = "NOVA_CONTROL_PLANE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub url: String,
    /// CA (PEM file) that signed the control plane's certificate, for an `https://`
    /// control-plane URL; without it the system's trust store is used.
    #[arg(
        long = "control-plane-ca",
        value_name = "CONTROL_PLANE_CA",
        env = "NOVA_CONTROL_PLANE_CA"
    )]
    pub ca: Option<PathBuf>,
    /// Service token for the control plane.
    #[arg(
        long = "service-token",
        env = "NOVA_SERVICE_TOKEN",
        hide_env_values = true
    )]
    pub service_token: Secret,
}

impl UpstreamArgs {
    /// Checks the service token has at least [`MIN_TOKEN_LEN`] characters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.service_token
            .require_len("NOVA_SERVICE_TOKEN", MIN_TOKEN_LEN)
    }
}

/// Log settings: `NOVA_LOG_FORMAT` (the filter is `RUST_LOG`, read by
/// [`crate::telemetry::init`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(
        long = "log-format",
        value_name = "LOG_FORMAT",
        env = "NOVA_LOG_FORMAT",
        default_value = "text"
    )]
    pub format: LogFormat,
}

impl Default for LogArgs {
    /// Text lines, the documented default.
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
        }
    }
}

/// Parses `250ms`, `10s`, `5m`, `24h`, `30d` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, ConfigError> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| ConfigError::NotADuration(raw.to_owned()))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(n.saturating_mul(3600))),
        "d" => Ok(Duration::from_secs(n.saturating_mul(86_400))),
        _ => Err(ConfigError::DurationUnit(raw.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(
            parse_duration("10w"),
            Err(ConfigError::DurationUnit("10w".into()))
        );
        assert_eq!(
            parse_duration("soon").unwrap_err().to_string(),
            "`soon` is not a duration like 250ms, 10s, 5m, 24h or 30d"
        );
    }

    #[test]
    fn a_short_secret_is_named_not_shown() {
        let err = Secret::from("hunter2")
            .require_len("NOVA_X", 16)
            .unwrap_err();
        assert_eq!(err.to_string(), "NOVA_X: needs at least 16 characters");
    }

    #[derive(Debug, clap::Parser)]
    struct Flattened {
        #[command(flatten)]
        control_plane: UpstreamArgs,
        #[command(flatten)]
        log: LogArgs,
    }

    #[test]
    fn upstream_and_log_flags_keep_their_names_and_defaults() {
        use clap::Parser;
        let parsed =
            Flattened::try_parse_from(["nova", "--service-token", "0123456789abcdef"]).unwrap();
        assert_eq!(parsed.control_plane.url, "http://127.0.0.1:50051");
        assert_eq!(parsed.control_plane.ca, None);
        assert_eq!(parsed.log, LogArgs::default());
        parsed.control_plane.validate().unwrap();
        let parsed = Flattened::try_parse_from([
            "nova",
            "--control-plane-url",
            "https://cp:50051",
            "--control-plane-ca",
            "/ca.pem",
            "--service-token",
            "short",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(parsed.control_plane.url, "https://cp:50051");
        assert_eq!(parsed.log.format, LogFormat::Json);
        assert_eq!(
            parsed.control_plane.validate().unwrap_err().to_string(),
            "NOVA_SERVICE_TOKEN: needs at least 16 characters"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::from("hunter2")), "Secret(..)");
    }
}

//! The one typed configuration, built once at start: defaults, then an optional TOML file
//! (`--config` / `SEVA_CONFIG`), then `SEVA_*` environment variables, then command-line flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./seva-data";

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None`: SQLite in the data folder.
    pub database_url: Option<String>,
    /// The address users reach Seva at; defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Extra certificate authorities (PEM) trusted for mail servers.
    pub mail_ca_file: Option<PathBuf>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("public_url", &self.public_url)
            .field("mail_ca_file", &self.mail_ca_file)
            .finish()
    }
}

/// A URL with its password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// What the file may set. Every field optional: the file only overrides defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub mail_ca_file: Option<PathBuf>,
}

/// Values given by flags or environment (clap reads both), which win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub mail_ca_file: Option<PathBuf>,
}

impl Config {
    pub fn build(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let file: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("cannot read config file {}: {e}", path.display())
                })?;
                toml::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen = overrides
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen.parse().map_err(|_| {
            anyhow::anyhow!("listen address '{listen}' is not host:port, e.g. 127.0.0.1:8080")
        })?;
        let database_url = overrides
            .database_url
            .clone()
            .or(file.database_url)
            .filter(|u| !u.is_empty());
        if let Some(url) = &database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            anyhow::bail!(
                "database URL must start with sqlite: or postgres:// (got {})",
                redact_url(url)
            );
        }
        Ok(Self {
            listen,
            data_dir: overrides
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            database_url,
            public_url: overrides
                .public_url
                .clone()
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
            mail_ca_file: overrides.mail_ca_file.clone().or(file.mail_ca_file),
        })
    }

    /// A configuration for tests: an ephemeral port and the given data folder.
    #[cfg(test)]
    pub fn for_tests(data_dir: &Path) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            data_dir: data_dir.to_owned(),
            database_url: None,
            public_url: None,
            mail_ca_file: None,
        }
    }

    /// The database to open: the configured URL, else `seva.db` in the data folder.
    pub fn effective_database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("seva.db").display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_environment_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("seva.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/seva\"\n",
        )
        .unwrap();
        let from_file = Config::build(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(from_file.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(from_file.data_dir, PathBuf::from("/var/lib/seva"));
        let overridden = Config::build(
            Some(&file),
            &Overrides {
                listen: Some("127.0.0.1:7000".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(overridden.listen.to_string(), "127.0.0.1:7000");
        let defaults = Config::build(None, &Overrides::default()).unwrap();
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
        assert!(
            defaults
                .effective_database_url()
                .starts_with("sqlite://./seva-data/seva.db")
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let bad_listen = Config::build(
            None,
            &Overrides {
                listen: Some("localhost".into()),
                ..Overrides::default()
            },
        );
        assert!(bad_listen.unwrap_err().to_string().contains("host:port"));
        let bad_url = Config::build(
            None,
            &Overrides {
                database_url: Some("mysql://x".into()),
                ..Overrides::default()
            },
        );
        assert!(
            bad_url
                .unwrap_err()
                .to_string()
                .contains("sqlite: or postgres://")
        );
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact_url("postgres://seva:s3cret@db:5432/seva"),
            "postgres://seva:***@db:5432/seva"
        );
        let config = Config {
            database_url: Some("postgres://seva:s3cret@db/seva".into()),
            ..Config::for_tests(Path::new("/tmp"))
        };
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}

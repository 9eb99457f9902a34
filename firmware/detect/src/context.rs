//! What the rules know about the site, taken once from the config: which addresses are
//! inside, the VPN pools, business hours in the site's time zone, thresholds and the
//! offline intel. Built by `Context::new`, which is where config values that the model
//! crate accepted but the rules cannot use are turned into errors naming the key.

use crate::error::DetectError;
use crate::intel::{brands::Brands, categories::Categories, reputation::Reputation};
use crate::versions::Version;
use crate::versions::advisories::AdvisoryList;
use ipnet::IpNet;
use kuroko_model::Timestamp;
use kuroko_model::config::{BusinessHours, Config};
use kuroko_model::units::{parse_bytes, parse_duration_secs};
use std::net::IpAddr;

#[derive(Debug)]
pub struct Context {
    pub internal: Vec<IpNet>,
    pub vpn_pools: kuroko_model::config::VpnPools,
    pub allowed_ssh: Vec<IpNet>,
    pub tz: chrono_tz::Tz,
    pub business_hours: BusinessHours,
    pub large_upload: u64,
    pub upload_window_ns: i64,
    pub openssh_min: Version,
    /// The advisory list (shipped, or an intel pack's `advisories.toml`).
    pub advisories: AdvisoryList,
    pub categories: Categories,
    pub reputation: Reputation,
    pub brands: Brands,
    /// `DIR/files/` (reconstructed objects), when the engine runs on a data directory:
    /// lets the phishing rule list the names inside attached archives.
    pub files_dir: Option<std::path::PathBuf>,
}

fn config_err(key: &str, message: String) -> DetectError {
    DetectError::Config {
        key: key.into(),
        message,
    }
}

impl Context {
    pub fn new(config: &Config) -> Result<Context, DetectError> {
        let nets = |key: &str, list: &[String]| -> Result<Vec<IpNet>, DetectError> {
            list.iter()
                .map(|n| kuroko_model::config::parse_net(n).map_err(|m| config_err(key, m)))
                .collect()
        };
        let openssh_min = Version::parse(
            config
                .detect
                .openssh_min_version
                .trim()
                .trim_start_matches("OpenSSH_"),
        )
        .ok_or_else(|| {
            config_err(
                "detect.openssh_min_version",
                format!(
                    "`{}` is not an OpenSSH version; write e.g. 9.8p1",
                    config.detect.openssh_min_version
                ),
            )
        })?;
        let window = parse_duration_secs(&config.detect.upload_window)
            .map_err(|m| config_err("detect.upload_window", m))?;
        if window == 0 {
            return Err(config_err(
                "detect.upload_window",
                "must be longer than 0s; the default is 24h".into(),
            ));
        }
        let large_upload = parse_bytes(&config.detect.large_upload)
            .map_err(|m| config_err("detect.large_upload", m))?;
        if large_upload == 0 {
            return Err(config_err(
                "detect.large_upload",
                "must be above 0; the default is 100MB".into(),
            ));
        }
        for rule in config
            .detect
            .disabled_rules
            .iter()
            .chain(config.detect.overrides.keys())
        {
            if crate::catalog::RuleId::parse(rule).is_none() {
                let key = if config.detect.disabled_rules.contains(rule) {
                    "detect.disabled_rules".to_string()
                } else {
                    format!("detect.overrides.{rule}")
                };
                return Err(config_err(
                    &key,
                    format!(
                        "`{rule}` is not a rule; the rules are: {}",
                        crate::rule_ids().join(", ")
                    ),
                ));
            }
        }
        Ok(Context {
            internal: nets("site.internal_networks", &config.site.internal_networks)?,
            vpn_pools: kuroko_model::config::VpnPools::new(nets(
                "site.vpn_pools",
                &config.site.vpn_pools,
            )?),
            allowed_ssh: nets(
                "intel.allowed_ssh_servers",
                &config.intel.allowed_ssh_servers,
            )?,
            tz: config
                .site
                .tz()
                .map_err(|m| config_err("site.timezone", m))?,
            business_hours: BusinessHours::parse(&config.site.business_hours)
                .map_err(|m| config_err("site.business_hours", m))?,
            large_upload,
            upload_window_ns: i64::try_from(window)
                .unwrap_or(i64::MAX / 1_000_000_000)
                .saturating_mul(1_000_000_000),
            openssh_min,
            advisories: AdvisoryList::load(&config.intel.category_dirs)?,
            categories: Categories::load(&config.intel.category_dirs)?,
            reputation: Reputation::load(&config.intel.reputation_lists)?,
            brands: {
                let mut b = Brands::load(&config.intel.category_dirs)?;
                b.add_own(&config.intel.own_domains);
                b
            },
            files_dir: None,
        })
    }

    pub fn is_internal(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        self.internal.iter().any(|n| n.contains(&ip))
    }
    pub fn is_vpn(&self, ip: IpAddr) -> bool {
        self.vpn_pools.contains(ip)
    }
    pub fn ssh_allowed(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        self.allowed_ssh.iter().any(|n| n.contains(&ip))
    }
    pub fn in_business_hours(&self, t: Timestamp) -> bool {
        self.business_hours.contains(t, &self.tz)
    }
}

/// `::ffff:10.0.0.1` → `10.0.0.1`, so IPv4 networks match mapped addresses.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

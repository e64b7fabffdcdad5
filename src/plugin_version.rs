//! What a capacitor-updater release does, read from the `plugin_version` it sends: the answers
//! that depend on it follow Capgo's server (`plugin_runtime/plugins/channel_self.ts`,
//! `utils/update.ts`), whose thresholds are the plugin's own release history.
//!
//! | release | behaviour |
//! |---|---|
//! | 5.x < 5.34, 6.x < 6.34, 7.x < 7.34 | a self-set channel lives on the server (a channel override) |
//! | from 7.34 (and 5.34, 6.34, 8.x) | the plugin keeps its channel and sends it as `defaultChannel` |
//! | < 6.2.0 | cannot go back to the builtin bundle when told to |
//! | 5.10.0+, 6.25.0+, 7.0.35+, 8.x and later | reads a bundle's `manifest` (downloads only the files it lacks) |

use semver::Version;

fn parse(plugin_version: &str) -> Option<Version> {
    let text = plugin_version.trim();
    Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

/// Whether the plugin keeps a channel it sets itself (and sends it as `defaultChannel`), rather
/// than asking the server to store it. As Capgo decides it: a missing version counts as a
/// current plugin, one that does not parse as an old one.
pub fn keeps_channel_locally(plugin_version: &str) -> bool {
    if plugin_version.trim().is_empty() {
        return true;
    }
    match parse(plugin_version) {
        None => false,
        Some(version) => match version.major {
            5..=7 => version >= Version::new(version.major, 34, 0),
            _ => true,
        },
    }
}

/// Whether the plugin can be told to go back to its builtin bundle (`already_on_builtin` with
/// `version: "builtin"`): from 6.2.0. A version that does not parse counts as able.
pub fn can_revert_to_builtin(plugin_version: &str) -> bool {
    parse(plugin_version).is_none_or(|version| version >= Version::new(6, 2, 0))
}

/// Whether the plugin reads a bundle's `manifest` in `/updates` answers, as Capgo's
/// `resToVersion` decides it (`isDeprecatedPluginVersion(pv, '5.10.0', '6.25.0', '7.0.35')`,
/// 8.0.0 for 8.x; majors after 8 read it). An unknown version is sent no manifest: the bundle's
/// zip URL serves every plugin.
pub fn reads_manifest(plugin_version: &str) -> bool {
    let Some(version) = parse(plugin_version) else {
        return false;
    };
    match version.major {
        0..=4 => false,
        5 => version >= Version::new(5, 10, 0),
        6 => version >= Version::new(6, 25, 0),
        7 => version >= Version::new(7, 0, 35),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_go_to_the_releases_that_read_them() {
        for old in ["4.9.0", "5.9.5", "6.24.9", "7.0.34", "", "not-semver"] {
            assert!(!reads_manifest(old), "{old}");
        }
        for new in [
            "5.10.0", "5.50.1", "6.25.0", "6.50.1", "7.0.35", "7.50.1", "8.0.0", "9.0.0",
        ] {
            assert!(reads_manifest(new), "{new}");
        }
    }

    #[test]
    fn channel_storage_follows_capgo_thresholds() {
        for old in [
            "5.9.5",
            "5.33.9",
            "6.27.11",
            "6.33.0",
            "7.0.0",
            "7.33.4",
            "not-semver",
        ] {
            assert!(!keeps_channel_locally(old), "{old}");
        }
        for new in [
            "", "5.34.0", "5.50.1", "6.34.0", "6.50.1", "7.34.0", "7.50.1", "8.0.0", "8.51.14",
            "4.0.0", "v7.34.0",
        ] {
            assert!(keeps_channel_locally(new), "{new}");
        }
        // A pre-release of 7.34.0 comes before it.
        assert!(!keeps_channel_locally("7.34.0-beta.1"));
    }

    #[test]
    fn builtin_reverts_need_6_2() {
        assert!(!can_revert_to_builtin("5.9.5"));
        assert!(!can_revert_to_builtin("6.1.9"));
        assert!(can_revert_to_builtin("6.2.0"));
        assert!(can_revert_to_builtin("8.51.14"));
        assert!(can_revert_to_builtin(""));
    }
}

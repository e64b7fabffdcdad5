//! Stores for unit tests, here and in the modules built on the store.

use super::*;

/// A small store that flushes only when asked.
pub fn open(dir: &Path) -> Arc<SledStore> {
    let options = SledOptions {
        cache_bytes: 8 << 20,
        flush_every_ms: None,
        durable: false,
        min_free_bytes: 0,
        accept_lost_writes: false,
    };
    SledStore::open(dir, &options).unwrap()
}

/// A device's report, for tests to vary.
pub fn report() -> DeviceReport {
    DeviceReport {
        custom_id: String::new(),
        version_name: Some("1.0.0".into()),
        version_build: "1.0.0".into(),
        os_version: "17".into(),
        plugin_version: "6.0.0".into(),
        platform: crate::model::Platform::Ios,
        is_prod: true,
        is_emulator: false,
        default_channel: None,
        install_source: None,
        key_id: None,
    }
}

/// [`open`], with the app `app` and its channel `beta`.
pub fn open_with_beta(dir: &Path) -> Arc<SledStore> {
    let store = open(dir);
    store.create_app("app", "app", 1).unwrap();
    store
        .upsert_channel(
            "app",
            "beta",
            &ChannelPatch::default(),
            crate::store::Change {
                actor: crate::model::Actor::Admin,
                at: 1,
            },
        )
        .unwrap();
    store
}

pub fn at(at: Micros) -> Change {
    Change {
        actor: Actor::Admin,
        at,
    }
}

pub fn link_to_beta(device_ids: &[&str], change: Change) -> OverrideWrite {
    OverrideWrite {
        app_id: "app".into(),
        device_ids: device_ids.iter().map(|id| id.to_string()).collect(),
        action: OverrideAction::Link {
            channel: Some("beta".into()),
            version: None,
        },
        change,
    }
}

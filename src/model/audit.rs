//! The audit log's records: who made a change, what it was, and pages of entries.

use serde::{Deserialize, Serialize};

use super::{Overrides, RolloutAudit};
use crate::timefmt::Micros;

/// Who made a change: an API key (by id, never its secret), the configured admin key, the
/// server itself, or the device (a plugin before 7.34 choosing its channel through
/// `/channel_self`). New variants go at the end: stored audit entries name them by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    Key(u64),
    Admin,
    Sweep,
    Import,
    Device,
    /// A rollout's guard (auto-pause).
    Guard,
}

impl Actor {
    pub fn label(self) -> String {
        match self {
            Actor::Key(id) => format!("key:{id}"),
            Actor::Admin => "admin".into(),
            Actor::Sweep => "sweep".into(),
            Actor::Import => "import".into(),
            Actor::Device => "device".into(),
            Actor::Guard => "guard".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditAction {
    Link,
    Unlink,
    Erase,
    /// The sweep removed the device or its orphan override.
    Expire,
    /// The channel the override named was deleted.
    ChannelDeleted,
    /// A channel's rollout changed (the entry's `rollout` says how).
    Rollout,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Link => "link",
            AuditAction::Unlink => "unlink",
            AuditAction::Erase => "erase",
            AuditAction::Expire => "expire",
            AuditAction::ChannelDeleted => "channel_deleted",
            AuditAction::Rollout => "rollout",
        }
    }
}

/// One change of a device's overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Micros,
    /// Orders entries of the same microsecond; with `at`, the entry's position.
    pub seq: u64,
    pub device_id: String,
    pub actor: Actor,
    pub action: AuditAction,
    pub before: Overrides,
    pub after: Overrides,
    /// For a change of a channel's rollout (`device_id` empty), what it was and became (stored
    /// after the fields above: see `StoredAuditEntry` in the sled engine).
    #[serde(skip)]
    pub rollout: Option<RolloutAudit>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// (at, seq) of the last entry, when there are more.
    pub next: Option<(Micros, u64)>,
}

impl AuditPage {
    /// The page of `limit` entries from `entries`, read one past the page to know whether
    /// more follow.
    pub fn of(mut entries: Vec<AuditEntry>, limit: usize) -> Self {
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = if more {
            entries.last().map(|e| (e.at, e.seq))
        } else {
            None
        };
        AuditPage { entries, next }
    }
}

impl AuditEntry {
    /// The entry of a change of a device's overrides.
    pub fn of_change(
        device_id: &str,
        seq: u64,
        (actor, at): (Actor, Micros),
        action: AuditAction,
        before: &Overrides,
        after: &Overrides,
    ) -> Self {
        AuditEntry {
            at,
            seq,
            device_id: device_id.to_owned(),
            actor,
            action,
            before: before.clone(),
            after: after.clone(),
            rollout: None,
        }
    }
}

//! The webhook event types: the documented names owners subscribe to and receive in
//! `type`, and which logged event each one is.

use crate::service::{
    StreamStatus,
    events::{Event, Notice},
};

/// A webhook event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A stream was created (`stream.created`).
    StreamCreated,
    /// A broadcaster went live on a PENDING stream (`stream.active`).
    StreamActive,
    /// The broadcaster left; the reconnect window is open (`stream.interrupted`).
    StreamInterrupted,
    /// An interrupted stream is live again (`stream.resumed`).
    StreamResumed,
    /// The stream ended for good (`stream.completed`).
    StreamCompleted,
    /// The stream's key was replaced (`stream.key_rotated`).
    StreamKeyRotated,
    /// The renditions or source quality changed (`stream.quality_changed`).
    StreamQualityChanged,
    /// One of the owner's endpoints was disabled after failures (`webhook.disabled`).
    WebhookDisabled,
    /// A recording of the stream became a READY asset (`asset.ready`).
    AssetReady,
    /// A recording of the stream could not be made into an asset (`asset.errored`).
    AssetErrored,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 10] = [
        EventType::StreamCreated,
        EventType::StreamActive,
        EventType::StreamInterrupted,
        EventType::StreamResumed,
        EventType::StreamCompleted,
        EventType::StreamKeyRotated,
        EventType::StreamQualityChanged,
        EventType::WebhookDisabled,
        EventType::AssetReady,
        EventType::AssetErrored,
    ];

    /// Returns the documented name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::StreamCreated => "stream.created",
            EventType::StreamActive => "stream.active",
            EventType::StreamInterrupted => "stream.interrupted",
            EventType::StreamResumed => "stream.resumed",
            EventType::StreamCompleted => "stream.completed",
            EventType::StreamKeyRotated => "stream.key_rotated",
            EventType::StreamQualityChanged => "stream.quality_changed",
            EventType::WebhookDisabled => "webhook.disabled",
            EventType::AssetReady => "asset.ready",
            EventType::AssetErrored => "asset.errored",
        }
    }

    /// Parses a documented name; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// Returns the type of a lifecycle event.
    pub fn of_event(event: &Event) -> Self {
        match event {
            Event::StreamStarted { resumed: false, .. } => EventType::StreamActive,
            Event::StreamStarted { resumed: true, .. } => EventType::StreamResumed,
            Event::StreamEnded { status, .. }
                if StreamStatus::from_db(status) == StreamStatus::Interrupted =>
            {
                EventType::StreamInterrupted
            }
            Event::StreamEnded { .. } => EventType::StreamCompleted,
            Event::QualityChanged { .. } => EventType::StreamQualityChanged,
            Event::AssetReady { .. } => EventType::AssetReady,
            Event::AssetErrored { .. } => EventType::AssetErrored,
        }
    }

    /// Returns the type of a notice.
    pub fn of_notice(notice: &Notice) -> Self {
        match notice {
            Notice::StreamCreated { .. } => EventType::StreamCreated,
            Notice::StreamKeyRotated => EventType::StreamKeyRotated,
            Notice::WebhookDisabled { .. } => EventType::WebhookDisabled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{StreamStatus, events::Playback};

    #[test]
    fn names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("stream.started"), None);
        assert_eq!(EventType::parse("STREAM.ACTIVE"), None);
    }

    #[test]
    fn lifecycle_events_map_to_their_types() {
        let started = |resumed| Event::StreamStarted {
            resumed,
            playback: Playback::default(),
        };
        assert_eq!(
            EventType::of_event(&started(false)),
            EventType::StreamActive
        );
        assert_eq!(
            EventType::of_event(&started(true)),
            EventType::StreamResumed
        );
        let ended = |status| Event::ended(status, "publisher_disconnected");
        assert_eq!(
            EventType::of_event(&ended(StreamStatus::Interrupted)),
            EventType::StreamInterrupted
        );
        assert_eq!(
            EventType::of_event(&ended(StreamStatus::Completed)),
            EventType::StreamCompleted
        );
    }
}

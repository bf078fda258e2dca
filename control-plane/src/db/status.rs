//! The stream lifecycle states and the asset states, and how they are stored in
//! `streams.status` and `assets.status`: the one place that spells the stored values
//! (the service re-exports the enums).

/// Lifecycle state of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamStatus {
    /// Created; nobody has published yet.
    Pending,
    /// A broadcaster is publishing.
    Active,
    /// The broadcaster left; the reconnect window is open.
    Interrupted,
    /// Ended for good.
    Completed,
}

impl StreamStatus {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Active,
        Self::Interrupted,
        Self::Completed,
    ];

    /// Returns the value stored in `streams.status`.
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Interrupted => "interrupted",
            Self::Completed => "completed",
        }
    }

    /// Parses a stored value; the table's CHECK constraint admits only these four, so
    /// anything else is treated as `Completed` (the state that allows nothing).
    pub fn from_db(raw: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.as_db() == raw)
            .unwrap_or(Self::Completed)
    }
}

/// Where an asset (a recording made playable) is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetStatus {
    /// The recording is being remuxed and uploaded.
    Preparing,
    /// Playable.
    Ready,
    /// Gave up; the row says why.
    Errored,
}

impl AssetStatus {
    /// Every state.
    pub const ALL: [Self; 3] = [Self::Preparing, Self::Ready, Self::Errored];

    /// Returns the value stored in `assets.status`.
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Preparing => "preparing",
            Self::Ready => "ready",
            Self::Errored => "errored",
        }
    }

    /// Parses a stored value; the table's CHECK constraint admits only these three,
    /// so anything else is treated as `Preparing` (not playable).
    pub fn from_db(raw: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|s| s.as_db() == raw)
            .unwrap_or(Self::Preparing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip() {
        for status in StreamStatus::ALL {
            assert_eq!(StreamStatus::from_db(status.as_db()), status);
        }
        for status in AssetStatus::ALL {
            assert_eq!(AssetStatus::from_db(status.as_db()), status);
        }
    }
}

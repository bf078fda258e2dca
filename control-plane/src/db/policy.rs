//! Playback policies: who may play a stream, and how they are stored in
//! `streams.playback_policy`: the one place that spells the stored values (the
//! service re-exports the enum).

/// Who may play a stream's HLS, DASH and RTMP output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlaybackPolicy {
    /// Anyone with the stream id plays its plain URLs.
    #[default]
    Public,
    /// Only players presenting a valid playback token.
    Signed,
}

impl PlaybackPolicy {
    /// Returns the value stored in `streams.playback_policy`.
    pub fn as_db(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Signed => "signed",
        }
    }

    /// Parses a stored value; the table's CHECK constraint admits only the two, so
    /// anything else is treated as `Signed` (the policy that allows less).
    pub fn from_db(raw: &str) -> Self {
        match raw {
            "public" => Self::Public,
            _ => Self::Signed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_round_trip_and_unknown_ones_are_signed() {
        for policy in [PlaybackPolicy::Public, PlaybackPolicy::Signed] {
            assert_eq!(PlaybackPolicy::from_db(policy.as_db()), policy);
        }
        assert_eq!(PlaybackPolicy::from_db("PUBLIC"), PlaybackPolicy::Signed);
        assert_eq!(PlaybackPolicy::default(), PlaybackPolicy::Public);
    }
}

//! Where the edge's upstream WatchEvents resumes after a break, and which events are
//! news: the cursor of the last lifecycle event handed to the sockets is kept across
//! reconnects, sent as `after_cursor`, and any lifecycle event at or before it (a
//! replay overlapping what was already delivered) is dropped, so each socket sees
//! each lifecycle event once, in order.

/// The resume point of one upstream event stream.
#[derive(Debug, Default, Clone)]
pub struct Resume {
    /// The last durable event delivered, or `None` before the first.
    last: Option<Cursor>,
}

/// A cursor as the control plane sent it, and its log position when it is one.
#[derive(Debug, Clone)]
struct Cursor {
    /// The cursor text, sent back as `after_cursor`.
    raw: String,
    /// Its position in the durable log (the control plane's cursors are decimal log
    /// ids that become visible in increasing order); `None` for an opaque cursor.
    position: Option<u64>,
}

impl Resume {
    /// Returns the `after_cursor` of the next WatchEvents: the last delivered
    /// cursor, or empty (live events only) before the first lifecycle event.
    pub fn after_cursor(&self) -> String {
        self.last
            .as_ref()
            .map(|c| c.raw.clone())
            .unwrap_or_default()
    }

    /// Tells whether a reconnect can resume exactly (a lifecycle event was seen).
    pub fn has_cursor(&self) -> bool {
        self.last.is_some()
    }

    /// Starts from `cursor` (the position the control plane says a live-only stream
    /// starts after) unless a lifecycle event was already delivered, so a break before
    /// the first event still resumes exactly.
    pub fn start_at(&mut self, cursor: &str) {
        if self.last.is_none() && !cursor.is_empty() {
            self.last = Some(Cursor {
                raw: cursor.to_owned(),
                position: cursor.parse::<u64>().ok(),
            });
        }
    }

    /// Decides whether an event with `cursor` is news and, when it is a durable one,
    /// records it as the resume point. Live-only events (empty cursor, viewer
    /// counts) are always news; a durable event at or before the last delivered one
    /// is a duplicate.
    pub fn admit(&mut self, cursor: &str) -> bool {
        if cursor.is_empty() {
            return true;
        }
        let position = cursor.parse::<u64>().ok();
        if let (Some(last), Some(this)) = (self.last.as_ref().and_then(|c| c.position), position)
            && this <= last
        {
            return false;
        }
        self.last = Some(Cursor {
            raw: cursor.to_owned(),
            position,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_position_of_a_live_only_stream_is_the_first_resume_point() {
        let mut resume = Resume::default();
        resume.start_at("41");
        assert!(resume.has_cursor());
        assert_eq!(resume.after_cursor(), "41");
        assert!(!resume.admit("41"), "at the start position: already there");
        assert!(resume.admit("42"));
        resume.start_at("7");
        assert_eq!(
            resume.after_cursor(),
            "42",
            "a delivered event wins over a position"
        );
    }

    #[test]
    fn starts_live_only_then_keeps_the_last_delivered_cursor() {
        let mut resume = Resume::default();
        assert_eq!(resume.after_cursor(), "", "live only before any event");
        assert!(!resume.has_cursor());
        assert!(resume.admit(""), "a viewer count is always news");
        assert_eq!(resume.after_cursor(), "", "counts do not move the cursor");
        assert!(resume.admit("7"));
        assert!(resume.admit("9"));
        assert_eq!(resume.after_cursor(), "9");
        assert!(resume.has_cursor());
    }

    #[test]
    fn a_replay_overlapping_what_was_delivered_is_dropped() {
        let mut resume = Resume::default();
        for cursor in ["3", "4", "5"] {
            assert!(resume.admit(cursor));
        }
        // The stream broke; the replay after "5" overlaps with a live tail that
        // still carried 4 and 5 (say another replica's fan-out).
        let delivered: Vec<&str> = ["4", "5", "6", "5", "7", "", "7"]
            .into_iter()
            .filter(|c| resume.admit(c))
            .collect();
        assert_eq!(
            delivered,
            ["6", "7", ""],
            "each lifecycle event once, in order"
        );
        assert_eq!(resume.after_cursor(), "7", "the cursor survives duplicates");
    }

    #[test]
    fn positions_compare_as_numbers_not_text() {
        let mut resume = Resume::default();
        assert!(resume.admit("9"));
        assert!(resume.admit("10"), "10 comes after 9");
        assert!(!resume.admit("9"));
        assert_eq!(resume.after_cursor(), "10");
    }

    #[test]
    fn opaque_cursors_are_passed_through_and_kept() {
        let mut resume = Resume::default();
        assert!(resume.admit("abc"));
        assert_eq!(resume.after_cursor(), "abc");
        assert!(resume.admit("12"));
        assert_eq!(resume.after_cursor(), "12");
    }
}

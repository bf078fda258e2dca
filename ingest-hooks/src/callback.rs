//! Every nginx-rtmp callback as one typed enum, parsed from the form nginx POSTs.
//!
//! nginx sends `call=` to say which callback it is: `publish`, `publish_done`,
//! `update_publish`, `play`, `play_done`, `update_play`, `done`, `connect`,
//! `record_done`. For a broadcaster on the ingest application, `name` is the stream
//! key: it is kept in a [`StreamKey`] that never prints.

use std::{collections::HashMap, fmt};

use crate::error::HookError;

/// A stream key as nginx passed it (`name`); `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(String);

impl StreamKey {
    /// Returns the key, only for sending it to the control plane.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

/// Fields every callback carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// RTMP application, e.g. `live`; empty for nginx's local relay.
    pub app: String,
    /// nginx's connection id.
    pub client_id: String,
    /// Peer address as nginx saw it.
    pub addr: String,
}

/// One nginx-rtmp callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// `on_publish`: a broadcaster wants to publish with `key`.
    Publish {
        /// Common fields.
        origin: Origin,
        /// The stream name, i.e. the key on the ingest application.
        key: StreamKey,
    },
    /// `on_publish_done`: the broadcaster left.
    PublishDone {
        /// Common fields.
        origin: Origin,
        /// The stream name, i.e. the key on the ingest application.
        key: StreamKey,
    },
    /// `on_update` for a publisher: still publishing.
    UpdatePublish {
        /// Common fields.
        origin: Origin,
        /// The stream name, i.e. the key on the ingest application.
        key: StreamKey,
    },
    /// `on_play`: a player (or nginx's own relay, or our transcoder) starts playing `name`.
    Play {
        /// Common fields.
        origin: Origin,
        /// Stream name played.
        name: String,
        /// Whether this is nginx's local relay or our ABR transcoder, not a viewer.
        relay: bool,
    },
    /// `on_play_done`: a player stopped.
    PlayDone {
        /// Common fields.
        origin: Origin,
        /// Stream name played.
        name: String,
        /// Whether this is nginx's local relay.
        relay: bool,
    },
    /// `on_update` for a player.
    UpdatePlay {
        /// Common fields.
        origin: Origin,
        /// Whether this is nginx's local relay.
        relay: bool,
    },
    /// `on_done`: a publisher or player finished (after the specific `_done`).
    Done {
        /// Common fields.
        origin: Origin,
    },
    /// `on_connect` / `on_record_done` and anything newer: acknowledged, ignored.
    Other {
        /// The `call` value.
        call: String,
    },
}

/// `flashver` nginx gives its own relay connections.
const RELAY_FLASHVER: &str = "ngx-local-relay";
/// RTMP URL argument our ABR transcoder adds when it pulls a stream
/// (`?internal=transcoder`, see deploy/nginx/abr-on.conf.template).
const INTERNAL_ARG: (&str, &str) = ("internal", "transcoder");

impl Callback {
    /// Parses the callback form. Missing or empty required fields are a
    /// [`HookError::Malformed`] naming the field.
    pub fn parse(form: &HashMap<String, String>) -> Result<Self, HookError> {
        let field = |name: &'static str| -> Result<String, HookError> {
            form.get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(HookError::Malformed(name))
        };
        let call = field("call")?;
        // nginx's local relay sends its callbacks without `app`.
        let origin = || -> Result<Origin, HookError> {
            Ok(Origin {
                app: form.get("app").cloned().unwrap_or_default(),
                client_id: form.get("clientid").cloned().unwrap_or_default(),
                addr: form.get("addr").cloned().unwrap_or_default(),
            })
        };
        let relay = form.get("flashver").is_some_and(|f| f == RELAY_FLASHVER)
            || form
                .get(INTERNAL_ARG.0)
                .is_some_and(|v| v == INTERNAL_ARG.1);
        let key = || field("name").map(StreamKey);
        Ok(match call.as_str() {
            "publish" => Self::Publish {
                origin: origin()?,
                key: key()?,
            },
            "publish_done" => Self::PublishDone {
                origin: origin()?,
                key: key()?,
            },
            "update_publish" => Self::UpdatePublish {
                origin: origin()?,
                key: key()?,
            },
            "play" => Self::Play {
                origin: origin()?,
                name: field("name")?,
                relay,
            },
            "play_done" => Self::PlayDone {
                origin: origin()?,
                name: field("name")?,
                relay,
            },
            "update_play" => Self::UpdatePlay {
                origin: origin()?,
                relay,
            },
            "done" => Self::Done { origin: origin()? },
            other => Self::Other {
                call: other.chars().take(32).collect(),
            },
        })
    }

    /// Returns the callback's name for logs and metrics (a fixed set of values).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Publish { .. } => "publish",
            Self::PublishDone { .. } => "publish_done",
            Self::UpdatePublish { .. } => "update_publish",
            Self::Play { .. } => "play",
            Self::PlayDone { .. } => "play_done",
            Self::UpdatePlay { .. } => "update_play",
            Self::Done { .. } => "done",
            Self::Other { .. } => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn publish_callbacks_carry_the_key_hidden() {
        let cb = Callback::parse(&form(&[
            ("call", "publish"),
            ("app", "live"),
            ("name", "sk_live_secret"),
            ("addr", "127.0.0.1"),
            ("clientid", "7"),
            ("type", "live"),
        ]))
        .unwrap();
        let Callback::Publish { origin, key } = &cb else {
            panic!("{cb:?}")
        };
        assert_eq!(origin.app, "live");
        assert_eq!(key.expose(), "sk_live_secret");
        assert!(!format!("{cb:?}").contains("sk_live_secret"));
    }

    #[test]
    fn every_call_maps_to_its_variant() {
        for (call, label) in [
            ("publish_done", "publish_done"),
            ("update_publish", "update_publish"),
            ("play", "play"),
            ("play_done", "play_done"),
            ("update_play", "update_play"),
            ("done", "done"),
            ("connect", "other"),
        ] {
            let cb =
                Callback::parse(&form(&[("call", call), ("app", "live"), ("name", "x")])).unwrap();
            assert_eq!(cb.label(), label);
        }
    }

    #[test]
    fn the_local_relay_is_recognised() {
        let cb = Callback::parse(&form(&[
            ("call", "play"),
            ("app", "live"),
            ("name", "a1b2c3"),
            ("flashver", "ngx-local-relay"),
        ]))
        .unwrap();
        assert!(matches!(cb, Callback::Play { relay: true, .. }));
        let cb = Callback::parse(&form(&[
            ("call", "play"),
            ("app", "stream"),
            ("name", "a1b2c3"),
            ("internal", "transcoder"),
        ]))
        .unwrap();
        assert!(matches!(cb, Callback::Play { relay: true, .. }));
    }

    #[test]
    fn missing_fields_are_named() {
        let err = Callback::parse(&form(&[("app", "live")])).unwrap_err();
        assert!(matches!(err, HookError::Malformed("call")));
        let err = Callback::parse(&form(&[("call", "publish"), ("app", "live")])).unwrap_err();
        assert!(matches!(err, HookError::Malformed("name")));
        let relay = Callback::parse(&form(&[("call", "play"), ("name", "k")])).unwrap();
        assert!(matches!(relay, Callback::Play { ref origin, .. } if origin.app.is_empty()));
    }
}

//! Every nginx-rtmp callback as one typed enum, parsed so that no client can steer it.
//!
//! nginx-rtmp (`ngx_rtmp_netcall_http_format_session` and `ngx_rtmp_notify_*_create`)
//! writes its own fields first, each URL-escaped: `app`, `flashver`, `swfurl`,
//! `tcurl`, `pageurl`, `addr`, `clientid`, then `call` and the callback's own fields
//! (`name`, `type`; `start`, `duration`, `reset`; `time`, `timestamp`). Then it appends
//! the client's `?args` from the RTMP URL **raw and unescaped**, so a client can add
//! any field, again. Three rules follow:
//!
//! 1. Which callback it is comes from the URL nginx was configured with
//!    ([`Kind`], one path each), never from the body; `call` must agree with it.
//! 2. Every field is taken from its first occurrence, which nginx wrote.
//! 3. A field name nginx writes in any callback that occurs twice, or occurs at all
//!    in a callback where nginx does not write it (compared after percent-decoding,
//!    in any letter case), is a forgery: the callback is refused
//!    ([`HookError::Forged`]).
//!
//! A broadcaster's `name` on the ingest application is its stream key: kept in a
//! [`StreamKey`] that never prints and refused unless it is plain URL-safe text.

use std::fmt;

use crate::error::HookError;

/// Which callback nginx makes; each has its own URL so the body cannot choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `on_publish`.
    Publish,
    /// `on_publish_done`.
    PublishDone,
    /// `on_update`, for publishers and players alike.
    Update,
    /// `on_play`.
    Play,
    /// `on_play_done`.
    PlayDone,
    /// `on_done`.
    Done,
    /// `on_record_done` of the recording application.
    RecordDone,
}

impl Kind {
    /// Every kind, in the order the router mounts them.
    pub const ALL: [Self; 7] = [
        Self::Publish,
        Self::PublishDone,
        Self::Update,
        Self::Play,
        Self::PlayDone,
        Self::Done,
        Self::RecordDone,
    ];

    /// Returns the URL path nginx is configured to call for this kind.
    pub fn path(self) -> &'static str {
        match self {
            Self::Publish => "/rtmp/publish",
            Self::PublishDone => "/rtmp/publish_done",
            Self::Update => "/rtmp/update",
            Self::Play => "/rtmp/play",
            Self::PlayDone => "/rtmp/play_done",
            Self::Done => "/rtmp/done",
            Self::RecordDone => "/rtmp/record_done",
        }
    }

    /// Returns the fields nginx writes for this kind after the session's and `call`
    /// (`name` may be left out by nginx when it is empty).
    fn own_fields(self) -> &'static [&'static str] {
        match self {
            Self::Publish => &["name", "type"],
            Self::Play => &["name", "start", "duration", "reset"],
            Self::Update => &["time", "timestamp", "name"],
            Self::PublishDone | Self::PlayDone | Self::Done => &["name"],
            Self::RecordDone => &["recorder", "name", "path"],
        }
    }

    /// Tells whether nginx writes `field` in this kind of callback.
    fn writes(self, field: &str) -> bool {
        SESSION_FIELDS.contains(&field) || field == "call" || self.own_fields().contains(&field)
    }
}

/// Fields nginx writes first in every callback (`ngx_rtmp_netcall_http_format_session`).
const SESSION_FIELDS: [&str; 7] = [
    "app", "flashver", "swfurl", "tcurl", "pageurl", "addr", "clientid",
];

/// Field names nginx-rtmp writes itself in some callback. A client argument may
/// never repeat one of them.
const NGINX_FIELDS: [&str; 18] = [
    "app",
    "flashver",
    "swfurl",
    "tcurl",
    "pageurl",
    "addr",
    "clientid",
    "epoch",
    "call",
    "name",
    "type",
    "start",
    "duration",
    "reset",
    "time",
    "timestamp",
    "recorder",
    "path",
];

/// Longest stream name accepted (nginx's own limit, `NGX_RTMP_MAX_NAME`, is 256).
const MAX_NAME: usize = 256;

/// A stream key as nginx passed it (`name`); `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(String);

impl StreamKey {
    /// Accepts a key only if it is 1 to 256 characters of `A-Z a-z 0-9 _ -`, so
    /// `?`, `&`, `%`, spaces and control characters never reach the control plane.
    pub fn parse(raw: &str) -> Result<Self, HookError> {
        let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        if raw.is_empty() || raw.len() > MAX_NAME || !raw.bytes().all(plain) {
            return Err(HookError::Refused("stream key not accepted".into()));
        }
        Ok(Self(raw.to_owned()))
    }

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

/// Fields every callback carries, all as nginx wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// RTMP application, e.g. `live`; empty for nginx's local relay.
    pub app: String,
    /// nginx's connection id.
    pub client_id: String,
    /// Peer address as nginx saw it (for nginx's own relay: the relay's target URL).
    pub addr: String,
}

/// Who is on the other end of a play: a viewer, or one of nginx's own helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Player {
    /// Somebody watching: counted.
    Viewer,
    /// nginx's local relay into the internal application, or our ABR transcoder.
    Internal,
}

/// One nginx-rtmp callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// `on_publish`: a broadcaster wants to publish under `name`.
    Publish {
        /// Common fields.
        origin: Origin,
        /// The stream name as sent; on the ingest application it should be a key,
        /// checked with [`StreamKey::parse`] after the address's budget.
        name: String,
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
        /// Viewer or internal helper.
        player: Player,
        /// The `token` argument of the player's RTMP URL (its own claim, checked
        /// as a playback token for signed streams).
        token: Option<String>,
    },
    /// `on_play_done`: a player stopped.
    PlayDone {
        /// Common fields.
        origin: Origin,
    },
    /// `on_update` for a player.
    UpdatePlay {
        /// Common fields.
        origin: Origin,
    },
    /// `on_done`: a publisher or player finished (after the specific `_done`).
    Done {
        /// Common fields.
        origin: Origin,
    },
    /// `on_record_done`: the recording application closed a recorded piece.
    RecordDone {
        /// Common fields.
        origin: Origin,
        /// The stream name recorded: a public stream id in the recording application.
        name: String,
        /// The piece's file as nginx wrote it.
        path: String,
    },
}

/// What the parser must know to recognise nginx's own connections.
#[derive(Debug, Clone)]
pub struct Insiders {
    /// `addr` prefixes of nginx's local relays: each relay target without scheme,
    /// e.g. `127.0.0.1:1935/stream/` and `127.0.0.1:1935/record/` (nginx sets a
    /// relay's address to its target URL, which no network peer can have).
    relay_addr_prefixes: Vec<String>,
    /// Value of the `nova_internal` argument our ABR transcoder carries (the hooks
    /// secret, which only nginx's config knows); `None` recognises no transcoder.
    transcoder_mark: Option<String>,
}

/// `flashver` nginx gives its own relay connections (clients can claim it too, so
/// it is only believed together with a relay address).
const RELAY_FLASHVER: &str = "ngx-local-relay";
/// RTMP URL argument our ABR transcoder adds when it pulls a stream.
const TRANSCODER_ARG: &str = "nova_internal";

impl Insiders {
    /// Describes nginx's helpers for a node relaying into `relay_urls`
    /// (`rtmp://host:port/app`: the public application, and the recording one)
    /// whose transcoder carries `transcoder_mark`.
    pub fn new(relay_urls: &[&str], transcoder_mark: Option<String>) -> Self {
        let relay_addr_prefixes = relay_urls
            .iter()
            .map(|url| {
                let target = url
                    .strip_prefix("rtmp://")
                    .unwrap_or(url)
                    .trim_end_matches('/');
                format!("{target}/")
            })
            .collect();
        Self {
            relay_addr_prefixes,
            transcoder_mark,
        }
    }
}

/// A callback body split into `(name, value)` pairs, in order, percent-decoded.
struct Form(Vec<(String, String)>);

impl Form {
    /// Decodes the body of a `kind` callback; refuses an nginx field that is
    /// repeated, or present where nginx does not write it.
    fn parse(kind: Kind, body: &[u8]) -> Result<Self, HookError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for field in NGINX_FIELDS {
            let count = pairs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(field))
                .count();
            let allowed = usize::from(kind.writes(field));
            if count > allowed {
                return Err(HookError::Forged(field));
            }
        }
        Ok(Self(pairs))
    }

    /// Returns the value of `name` (its first occurrence), if present.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Returns the non-empty value of `name`, or names it as missing.
    fn require(&self, name: &'static str) -> Result<&str, HookError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or(HookError::Malformed(name))
    }

    fn origin(&self) -> Result<Origin, HookError> {
        Ok(Origin {
            // nginx's local relay sends its callbacks with an empty `app`.
            app: self
                .get("app")
                .ok_or(HookError::Malformed("app"))?
                .to_owned(),
            client_id: self.require("clientid")?.to_owned(),
            addr: self.require("addr")?.to_owned(),
        })
    }
}

impl Callback {
    /// Parses the body nginx POSTed to the URL of `kind`. A missing field is
    /// [`HookError::Malformed`]; a `call` that disagrees with the URL, or a client
    /// argument repeating an nginx field, is [`HookError::Forged`].
    pub fn parse(kind: Kind, body: &[u8], insiders: &Insiders) -> Result<Self, HookError> {
        let form = Form::parse(kind, body)?;
        let call = form.require("call")?;
        let origin = form.origin()?;
        let key = || StreamKey::parse(form.require("name")?);
        let expect = |wanted: &str| {
            if call == wanted {
                Ok(())
            } else {
                Err(HookError::Forged("call"))
            }
        };
        Ok(match kind {
            Kind::Publish => {
                expect("publish")?;
                Self::Publish {
                    name: form.require("name")?.to_owned(),
                    origin,
                }
            }
            Kind::PublishDone => {
                expect("publish_done")?;
                Self::PublishDone {
                    key: key()?,
                    origin,
                }
            }
            Kind::Update => match call {
                "update_publish" => Self::UpdatePublish {
                    key: key()?,
                    origin,
                },
                "update_play" => Self::UpdatePlay { origin },
                _ => return Err(HookError::Forged("call")),
            },
            Kind::Play => {
                expect("play")?;
                let name = form.require("name")?;
                if name.len() > MAX_NAME {
                    return Err(HookError::Malformed("name"));
                }
                Self::Play {
                    player: insiders.classify(&form, &origin),
                    name: name.to_owned(),
                    token: form.get("token").map(str::to_owned),
                    origin,
                }
            }
            Kind::PlayDone => {
                expect("play_done")?;
                Self::PlayDone { origin }
            }
            Kind::Done => {
                expect("done")?;
                Self::Done { origin }
            }
            Kind::RecordDone => {
                expect("record_done")?;
                let name = form.require("name")?;
                if name.len() > MAX_NAME {
                    return Err(HookError::Malformed("name"));
                }
                Self::RecordDone {
                    name: name.to_owned(),
                    path: form.require("path")?.to_owned(),
                    origin,
                }
            }
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
            Self::RecordDone { .. } => "record_done",
        }
    }
}

impl Insiders {
    /// Tells nginx's relay and our transcoder from viewers, by what no client can
    /// forge: the relay's address, and the transcoder's secret mark.
    fn classify(&self, form: &Form, origin: &Origin) -> Player {
        let relay = form.get("flashver") == Some(RELAY_FLASHVER)
            && self
                .relay_addr_prefixes
                .iter()
                .any(|prefix| origin.addr.starts_with(prefix));
        let transcoder = match (&self.transcoder_mark, form.get(TRANSCODER_ARG)) {
            (Some(mark), Some(presented)) => {
                subtle::ConstantTimeEq::ct_eq(mark.as_bytes(), presented.as_bytes()).into()
            }
            _ => false,
        };
        if relay || transcoder {
            Player::Internal
        } else {
            Player::Viewer
        }
    }
}

#[cfg(test)]
#[path = "callback_tests.rs"]
mod tests;

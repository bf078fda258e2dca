//! Private playback: tokens the platform signs for a stream's owner, the signing keys
//! owners sign their own tokens with, and the rules media origins verify by.
//! `crypto` holds the key material, `tokens` the claims and their limits.

pub mod crypto;
pub mod tokens;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncConnection;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::{
    auth::{Actor, Principal},
    db::{
        DbPool, assets, playback_rules,
        signing_keys::{self, NewSigningKey, SigningKeyRow},
        streams,
    },
    error::{Error, Result},
    service::{
        PlaybackPolicy, StreamStatus,
        audit::{self, AuditAction, Change},
        sessions::Sessions,
    },
};

/// Most signing keys one principal may hold.
pub const MAX_KEYS_PER_OWNER: usize = 20;
/// A signed stream stays in the rules this long after it completed, while its last
/// files may still be on an origin.
const ENDED_RETENTION_HOURS: i64 = 1;

/// What a token request asks for.
#[derive(Debug, Default)]
pub struct TokenRequest {
    /// Lifetime in seconds; `None` for the default.
    pub ttl_seconds: Option<i64>,
    /// Session id; `None` for a new random one.
    pub session_id: Option<String>,
    /// Networks the token plays from (CIDR blocks or addresses); empty for any.
    pub allowed_networks: Vec<String>,
}

/// An issued token with its URLs.
#[derive(Debug)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Its claims.
    pub claims: tokens::Claims,
    /// HLS playlist carrying it; empty until the stream first went live.
    pub hls_url: String,
    /// DASH manifest carrying it; empty until the stream first went live.
    pub dash_url: String,
}

/// The public half of a key that signs playback tokens, as owners and verifiers see
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Key id.
    pub id: Uuid,
    /// Owning principal; `None` for the platform key.
    pub owner: Option<String>,
    /// Uncompressed SEC1 P-256 point.
    pub public_key: Vec<u8>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<SigningKeyRow> for SigningKey {
    fn from(row: SigningKeyRow) -> Self {
        Self {
            id: row.id,
            owner: row.owner,
            public_key: row.public_key,
            created_at: row.created_at,
        }
    }
}

/// A stream as verifiers see it.
#[derive(Debug, Clone)]
pub struct RuleStream {
    /// Stream id.
    pub id: Uuid,
    /// Owner.
    pub owner: String,
    /// Policy.
    pub policy: PlaybackPolicy,
    /// Cap on concurrent viewers.
    pub max_viewers: Option<i32>,
}

/// A READY asset as verifiers see it.
#[derive(Debug, Clone)]
pub struct RuleAsset {
    /// Asset id.
    pub id: Uuid,
    /// Recorded stream (in the rules' streams).
    pub stream_id: Uuid,
    /// Store folder of its files.
    pub prefix: String,
}

/// What verifiers need: every key, the streams they may be asked about, and the
/// READY assets.
#[derive(Debug)]
pub struct Rules {
    /// Every key, platform key included (owner `None`).
    pub keys: Vec<SigningKey>,
    /// The streams.
    pub streams: Vec<RuleStream>,
    /// The READY assets.
    pub assets: Vec<RuleAsset>,
    /// When they were read.
    pub read_at: DateTime<Utc>,
}

/// Playback rules over PostgreSQL.
#[derive(Clone)]
pub struct Playback {
    /// Connection pool.
    pool: DbPool,
    /// Live viewer counts, for viewer caps.
    sessions: Sessions,
    /// The platform key (id and signer), loaded or created on first use.
    platform: Arc<OnceCell<(Uuid, EncodingKey)>>,
}

impl Playback {
    /// Builds the service over a pool.
    pub fn new(pool: DbPool, sessions: Sessions) -> Self {
        Self {
            pool,
            sessions,
            platform: Arc::default(),
        }
    }

    /// Issues a token for stream `id` of `caller`, signed with the platform key.
    pub async fn issue(
        &self,
        caller: &Principal,
        id: Uuid,
        request: TokenRequest,
    ) -> Result<IssuedToken> {
        let ttl = tokens::ttl_seconds(request.ttl_seconds)?;
        let sid = match request.session_id {
            Some(sid) => {
                tokens::validate_session_id("session_id", &sid)?;
                sid
            }
            None => Uuid::new_v4().simple().to_string(),
        };
        let nets = tokens::networks("allowed_networks", &request.allowed_networks)?;
        let (row, recorded) = {
            let mut conn = self.pool.get().await?;
            let row = streams::find(&mut conn, id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("streams/{id}")))?;
            let recorded = assets::has_ready(&mut conn, id).await?;
            (row, recorded)
        };
        if row.owner != caller.as_str() {
            return Err(Error::PermissionDenied(
                "only the owner of a stream may issue its playback tokens",
            ));
        }
        let completed = StreamStatus::from_db(&row.status) == StreamStatus::Completed;
        // A completed stream still plays its READY assets (on demand, not counted
        // against the viewer cap).
        if completed && !recorded {
            return Err(Error::FailedPrecondition(
                "the stream is completed; nothing is left to play".into(),
            ));
        }
        if let Some(cap) = row.max_viewers.filter(|_| !completed) {
            let count = self
                .sessions
                .counts(&[id])
                .await?
                .first()
                .map_or(0, |(count, _)| *count);
            if count >= i64::from(cap) {
                return Err(Error::ResourceExhausted(format!(
                    "the stream has its maximum of {cap} viewers; retry later"
                )));
            }
        }
        let (kid, key) = self.platform_key().await?;
        let now = Utc::now().timestamp();
        let claims = tokens::Claims {
            aud: tokens::AUDIENCE.into(),
            sub: id.to_string(),
            sid,
            iat: now,
            exp: now + ttl,
            nets,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_string());
        let token = jsonwebtoken::encode(&header, &claims, key)
            .map_err(|_| Error::Internal("could not sign a playback token"))?;
        let url = |plain: &Option<String>| {
            tokens::tokenized_url(plain.as_deref().unwrap_or_default(), &token)
        };
        Ok(IssuedToken {
            hls_url: url(&row.hls_url),
            dash_url: url(&row.dash_url),
            token,
            claims,
        })
    }

    /// Loads or creates the platform key now, so the media origins' verifiers read
    /// it before the first token is issued; a failure is retried on first use.
    pub async fn warm_up(&self) {
        if let Err(err) = self.platform_key().await {
            tracing::warn!(error = %err, "platform playback key not ready yet; retried on first use");
        }
    }

    /// Returns the platform key, creating it on first use (one per deployment: the
    /// unique index makes concurrent creators agree on the first one stored).
    async fn platform_key(&self) -> Result<&(Uuid, EncodingKey)> {
        self.platform
            .get_or_try_init(|| async {
                let mut conn = self.pool.get().await?;
                if let Some((id, der)) = signing_keys::platform(&mut conn).await? {
                    return Ok((id, EncodingKey::from_ec_der(&der)));
                }
                let generated = crypto::generate()?;
                signing_keys::insert(
                    &mut conn,
                    &NewSigningKey {
                        id: Uuid::now_v7(),
                        owner: None,
                        public_key: &generated.public_key,
                        private_key: Some(&generated.pkcs8),
                    },
                )
                .await?;
                let (id, der) = signing_keys::platform(&mut conn)
                    .await?
                    .ok_or(Error::Internal("the platform key vanished"))?;
                tracing::info!(key.id = %id, "platform playback key ready");
                Ok((id, EncodingKey::from_ec_der(&der)))
            })
            .await
    }

    /// Creates a signing key for `caller`; returns it with its private key (PKCS#8
    /// PEM), which is not stored.
    pub async fn create_key(&self, actor: &Actor) -> Result<(SigningKey, String)> {
        let owner = actor.principal.as_str();
        let generated = crypto::generate()?;
        let id = Uuid::now_v7();
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            // Under the owner's lock: concurrent creations count one after another,
            // so the limit holds however many arrive at once.
            signing_keys::lock_owner(conn, owner).await?;
            let count = signing_keys::count_by_owner(conn, owner).await?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_KEYS_PER_OWNER {
                return Err(Error::FailedPrecondition(format!(
                    "at most {MAX_KEYS_PER_OWNER} signing keys per owner; delete one first"
                )));
            }
            signing_keys::insert(
                conn,
                &NewSigningKey {
                    id,
                    owner: Some(owner),
                    public_key: &generated.public_key,
                    private_key: None,
                },
            )
            .await?;
            audit_key(conn, actor, id, AuditAction::SigningKeyCreated).await
        })
        .await?;
        tracing::info!(key.id = %id, key.owner = owner, "signing key created");
        let key = SigningKey {
            id,
            owner: Some(owner.to_owned()),
            public_key: generated.public_key,
            created_at: Utc::now(),
        };
        Ok((key, crypto::private_pem(&generated.pkcs8)))
    }

    /// Returns the keys of `caller`, oldest first.
    pub async fn list_keys(&self, caller: &Principal) -> Result<Vec<SigningKey>> {
        let mut conn = self.pool.get().await?;
        let rows = signing_keys::list_by_owner(&mut conn, caller.as_str()).await?;
        Ok(rows.into_iter().map(SigningKey::from).collect())
    }

    /// Deletes key `id` of `caller`.
    pub async fn delete_key(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let owner = actor.principal.as_str();
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            if !signing_keys::delete(conn, owner, id).await? {
                return Err(Error::NotFound(format!("signingKeys/{id}")));
            }
            audit_key(conn, actor, id, AuditAction::SigningKeyDeleted).await
        })
        .await?;
        tracing::info!(key.id = %id, key.owner = owner, "signing key deleted");
        Ok(())
    }

    /// Returns the verifiers' rules.
    pub async fn rules(&self) -> Result<Rules> {
        let read_at = Utc::now();
        let mut conn = self.pool.get().await?;
        let keys = signing_keys::all(&mut conn)
            .await?
            .into_iter()
            .map(SigningKey::from)
            .collect();
        let since = read_at - Duration::hours(ENDED_RETENTION_HOURS);
        let streams = playback_rules::streams(&mut conn, since)
            .await?
            .into_iter()
            .map(|(id, owner, policy, max_viewers)| RuleStream {
                id,
                owner,
                policy: PlaybackPolicy::from_db(&policy),
                max_viewers,
            })
            .collect();
        let assets = assets::ready_rules(&mut conn)
            .await?
            .into_iter()
            .map(|(id, stream_id, prefix)| RuleAsset {
                id,
                stream_id,
                prefix: prefix.unwrap_or_default(),
            })
            .collect();
        Ok(Rules {
            keys,
            streams,
            assets,
            read_at,
        })
    }
}

/// Writes the audit record of a change to signing key `id` of the actor (inside its
/// transaction).
async fn audit_key(
    conn: &mut diesel_async::AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    action: AuditAction,
) -> Result<()> {
    let resource = format!("signingKeys/{id}");
    let change = Change {
        action,
        stream_id: None,
        resource: &resource,
        owner: actor.principal.as_str(),
        fields: &["signing_key"],
    };
    audit::record(conn, actor, &change).await
}

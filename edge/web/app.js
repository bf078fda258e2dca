// Nova Streaming viewer page: a list of live streams (#/) and a player with a live
// viewer count over the edge's WebSocket (#/streams/<id>). A signed stream plays
// with a playback token in the fragment (#/streams/<id>?token=<token>): the page
// then plays the tokenized URLs (/hls/t/<token>/<id>.m3u8) and still holds the
// WebSocket for live events; a socket on a signed stream joins no viewer session,
// so this viewer is counted once, as the token's session at the origin
// (docs/playback.md). On a public stream, whose socket is the viewer's session,
// the page plays the plain URLs even when given a token. Plain JS, no build step;
// hls.js is served by the edge at /vendor/hls.min.js. Every string that comes from
// the API goes through textContent, never innerHTML.
'use strict';

const $ = (id) => document.getElementById(id);
const api = (path) => `/api/v1${path}`;
const DASH = '–';
const PRIVATE = 'This stream is private: it plays only with a playback token.';

// The edge derives each viewer's id itself (unique-viewer counts cannot be steered
// from here), so the socket URL carries no viewer id.

// Reads a JSON answer; throws an Error carrying the API's message and HTTP status.
async function getJson(path) {
  const res = await fetch(api(path), { headers: { accept: 'application/json' } });
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) {
    const err = new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body || {};
}

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// "1280×720" from anything with width and height, or null.
const resolution = (r) => (r && r.width > 0 && r.height > 0 ? `${r.width}×${r.height}` : null);

// ---- list of live streams -------------------------------------------------

let listTimer = null;
let listLoading = false;

async function refreshList() {
  if (listLoading || $('list-view').hidden) return;
  listLoading = true;
  try {
    const body = await getJson('/streams?status=live');
    renderList(body.streams || []);
    $('list-error').hidden = true;
  } catch (err) {
    $('list-error').textContent = `Could not load streams: ${err.message}`;
    $('list-error').hidden = false;
  } finally {
    listLoading = false;
  }
}

function ago(date) {
  const minutes = Math.round((Date.now() - date.getTime()) / 60000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min ago`;
}

function renderList(streams) {
  $('streams').replaceChildren(...streams.map((s) => {
    const a = el('a', 'stream');
    a.href = `#/streams/${encodeURIComponent(s.id)}`;
    a.dataset.testid = 'stream-link';
    a.dataset.streamId = s.id;

    const badge = el('span', `badge ${s.status}`, s.status === 'active' ? 'live' : s.status);
    badge.dataset.testid = 'stream-badge';
    const viewers = el('span', 'viewers', `${s.viewer_count ?? 0} watching`);
    viewers.dataset.testid = 'stream-viewers';
    const meta = el('div', 'meta');
    meta.append(badge, viewers);
    if (s.started_at) {
      const started = new Date(s.started_at);
      const time = el('time', null, `started ${started.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })} (${ago(started)})`);
      time.dateTime = s.started_at;
      time.title = started.toLocaleString();
      meta.append(time);
    }
    if (s.owner) meta.append(el('span', 'owner', `by ${s.owner}`));

    const title = el('div', 'title', s.title || 'Untitled stream');
    title.dataset.testid = 'stream-title-item';
    a.append(title, meta);
    const li = el('li');
    li.append(a);
    return li;
  }));
  $('list-empty').hidden = streams.length > 0;
}

// ---- video -----------------------------------------------------------------

// `novaPlayer.hls` is replaced on every (re)load; tests read it through this object.
const player = {
  video: $('player'), hls: null, url: null,
  socket: null, streamId: null, retry: 0, retryTimer: null, connectedAt: 0,
  token: null, policy: null, pending: null, locked: false,
};
window.novaPlayer = player;

function message(text) {
  $('player-message').textContent = text || '';
  $('player-message').hidden = !text;
}

function setText(id, value) {
  if (value !== undefined && value !== null) $(id).textContent = String(value);
}

function stopMedia() {
  if (player.hls) {
    player.hls.destroy();
    player.hls = null;
  }
  player.url = null;
  player.video.removeAttribute('src');
  player.video.load();
}

// Returns `url` with the page's playback token as a path component before the file
// name (relative segment names in the playlist keep it), or `url` without a token.
function tokenized(url) {
  if (!url || !player.token) return url;
  const slash = url.lastIndexOf('/');
  return `${url.slice(0, slash)}/t/${player.token}${url.slice(slash)}`;
}

// Starts playing `playback`. Unless `force`, a source that is already loaded is left
// alone, so a WebSocket reconnect (new snapshot) does not interrupt the picture.
function load(playback, force) {
  // With a token, wait for the stream's policy (REST): a public stream's socket is
  // this viewer's session, so it plays the plain URLs and the token goes unused.
  if (player.token && !player.policy) {
    player.pending = playback;
    return;
  }
  const url = tokenized(playback && (playback.hls_master_url || playback.hls_url));
  if (!url || (!force && url === player.url)) return;
  stopMedia();
  player.url = url;
  const video = player.video;
  const tryPlay = () => video.play().catch(() => { /* autoplay refused: controls remain */ });

  if (window.Hls && Hls.isSupported()) {
    const hls = new Hls({
      lowLatencyMode: false,
      liveSyncDurationCount: 2, // play 2 segments behind the live edge
      liveMaxLatencyDurationCount: 5, // jump forward when further behind than this
      maxLiveSyncPlaybackRate: 1.1, // or catch up by playing slightly faster
      backBufferLength: 30,
    });
    let networkRetries = 0;
    let lastMediaRecovery = 0;
    hls.on(Hls.Events.MANIFEST_PARSED, tryPlay);
    hls.on(Hls.Events.FRAG_LOADED, () => { networkRetries = 0; });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
      setText('quality', resolution(hls.levels[data.level]));
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal || player.hls !== hls) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
        // The playlist may be briefly missing (publisher reconnecting): keep trying,
        // 1 s, 2 s, 4 s … at most 10 s apart.
        const delay = Math.min(10000, 1000 * 2 ** networkRetries++);
        setTimeout(() => {
          if (player.hls !== hls) return;
          // Without a parsed manifest there is nothing to resume: fetch it again.
          if (hls.levels && hls.levels.length) hls.startLoad();
          else hls.loadSource(url);
        }, delay);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        // Two media errors in quick succession: try the audio-codec swap as well.
        if (Date.now() - lastMediaRecovery < 3000) hls.swapAudioCodec();
        lastMediaRecovery = Date.now();
        hls.recoverMediaError();
      } else {
        setTimeout(() => { if (player.url === url) load(playback, true); }, 3000);
      }
    });
    player.hls = hls;
    hls.attachMedia(video);
    hls.loadSource(url);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url; // Safari / iOS play HLS natively
    tryPlay();
  } else {
    message('This browser cannot play HLS video.');
  }
}

// Native HLS has no level events: show the decoded size instead.
player.video.addEventListener('resize', () => {
  if (!player.hls) setText('quality', resolution({ width: player.video.videoWidth, height: player.video.videoHeight }));
});

// ---- live events -------------------------------------------------------------

// Applies a stream status (from a snapshot or an event) to the page.
function showStatus(status) {
  setText('stream-status', status);
  const waiting = { pending: 'Waiting for the broadcaster…', interrupted: 'Reconnecting…', completed: 'Stream ended' };
  message(waiting[status] || (player.locked ? PRIVATE : ''));
  if (status === 'completed') stopMedia();
}

function onEvent(m) {
  switch (m.type) {
    case 'snapshot':
      player.connectedAt = Date.now();
      setText('stream-title', m.title);
      setText('viewer-count', m.viewer_count);
      setText('peak-viewers', m.peak_viewers);
      showStatus(m.status);
      if (m.status === 'active' || m.status === 'interrupted') load(m.playback, false);
      break;
    case 'viewer_count_changed':
      setText('viewer-count', m.viewer_count);
      setText('peak-viewers', m.peak_viewers);
      break;
    case 'stream_started':
      showStatus('active');
      load(m.playback, true); // the publisher (re)connected: fresh playlist
      break;
    case 'stream_ended':
      showStatus(m.status); // interrupted: keep the player waiting; completed: stop it
      break;
    case 'quality_changed': {
      // Before hls.js reports a level, show the best rendition being produced.
      const best = (m.renditions || []).slice().sort((a, b) => (b.height || 0) - (a.height || 0))[0];
      if (!player.hls || player.hls.currentLevel < 0) setText('quality', resolution(best));
      break;
    }
    default:
      break; // unknown types are for newer clients
  }
}

function connect(id) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${proto}//${location.host}${api(`/streams/${encodeURIComponent(id)}/ws`)}`);
  player.socket = socket;
  socket.onmessage = (event) => {
    if (player.socket !== socket) return;
    let m;
    try { m = JSON.parse(event.data); } catch (_) { return; }
    onEvent(m);
  };
  socket.onclose = (event) => {
    if (player.socket !== socket) return; // closed by us (left the page or switched)
    player.socket = null;
    if (event.code === 4404) {
      message('This stream does not exist');
      stopMedia();
      return;
    }
    if (event.code === 4410) { // the edge refuses sessions on a completed stream
      showStatus('completed');
      return;
    }
    // Anything else (1001 shutdown, 1011 control plane down, 4408 too slow, network
    // loss) is temporary: reconnect after 1 s, 2 s, 4 s … at most 15 s. The backoff
    // starts over only after a connection that stayed up for a while.
    if (player.connectedAt && Date.now() - player.connectedAt > 30000) player.retry = 0;
    player.connectedAt = 0;
    const delay = Math.min(15000, 1000 * 2 ** player.retry++);
    if (player.video.paused || !player.url) message(`Connection lost, retrying in ${Math.round(delay / 1000)} s…`);
    player.retryTimer = setTimeout(() => { if (player.streamId === id) connect(id); }, delay);
  };
}

function openPlayer(id, token) {
  closePlayer();
  player.token = token;
  player.streamId = id;
  player.retry = 0;
  for (const field of ['viewer-count', 'peak-viewers', 'stream-status', 'quality']) $(field).textContent = DASH;
  $('stream-title').textContent = '';
  message('Connecting…');
  // The REST view gives the ingest resolution (and the title, should the socket be
  // slow) and the playback policy.
  getJson(`/streams/${encodeURIComponent(id)}`).then((body) => {
    const s = body.stream;
    if (player.streamId !== id || !s) return;
    if (!$('stream-title').textContent) setText('stream-title', s.title);
    if ($('quality').textContent === DASH) setText('quality', resolution(s.ingest_health));
    if (s.playback_policy === 'signed' && !player.token) {
      player.locked = true; // the origin refuses the plain URLs: say why
      if ($('player-message').hidden) message(PRIVATE);
    }
    if (s.playback_policy === 'public') player.token = null;
    policyKnown(s.playback_policy);
  }).catch((err) => {
    if (player.streamId !== id) return;
    if (err.status === 404 || err.status === 400) message('This stream does not exist');
    policyKnown('unknown'); // play with the token, if any
  });
  connect(id);
}

// Records the stream's policy and starts a playback that waited for it.
function policyKnown(policy) {
  player.policy = policy;
  const pending = player.pending;
  player.pending = null;
  if (pending) load(pending, true);
}

function closePlayer() {
  player.streamId = null;
  player.token = null;
  player.policy = null;
  player.pending = null;
  player.locked = false;
  clearTimeout(player.retryTimer);
  const socket = player.socket;
  player.socket = null; // before close(), so onclose knows it was us
  if (socket) socket.close(1000, 'viewer left');
  stopMedia();
}

// ---- routing: #/ is the list, #/streams/<id> the player --------------------------

function route() {
  const match = location.hash.match(/^#\/streams\/([^/?#]+)/);
  clearInterval(listTimer);
  if (match) {
    let id;
    try { id = decodeURIComponent(match[1]); } catch (_) { id = match[1]; }
    $('list-view').hidden = true;
    $('player-view').hidden = false;
    // A playback token (three base64url parts) for a signed stream, if given.
    const token = location.hash.match(/[?&]token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)(?:&|$)/);
    openPlayer(id, token ? token[1] : null);
  } else {
    closePlayer();
    $('player-view').hidden = true;
    $('list-view').hidden = false;
    refreshList();
    listTimer = setInterval(refreshList, 5000);
  }
  window.scrollTo(0, 0);
}

window.addEventListener('hashchange', route);
window.addEventListener('focus', refreshList);
document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshList(); });
window.addEventListener('pagehide', closePlayer); // leave the viewer session promptly
window.addEventListener('pageshow', (event) => { if (event.persisted) route(); }); // back from bfcache
route();

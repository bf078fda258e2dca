// Nova Streaming viewer page: a list of live streams and a player with a live
// viewer count over the edge's WebSocket. Plain JS, no build step; hls.js is served
// by the edge at /vendor/hls.min.js. Every string from the API goes through
// textContent, never innerHTML.
'use strict';

const $ = (id) => document.getElementById(id);
const api = (path) => `/api/v1${path}`;

// A stable anonymous viewer id, so unique-viewer counts work across reloads.
const viewerId = (() => {
  try {
    let id = localStorage.getItem('nova.viewer');
    if (!id) {
      id = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)).replace(/[^A-Za-z0-9_-]/g, '');
      localStorage.setItem('nova.viewer', id);
    }
    return id.slice(0, 64);
  } catch (_) {
    return '';
  }
})();

// ---- list of live streams -------------------------------------------------

let listTimer = null;

async function refreshList() {
  try {
    const res = await fetch(api('/streams?status=live'));
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
    renderList(body.streams || []);
    $('list-error').hidden = true;
  } catch (err) {
    $('list-error').textContent = `Could not load streams: ${err.message}`;
    $('list-error').hidden = false;
  }
}

function renderList(streams) {
  const list = $('streams');
  list.replaceChildren(...streams.map((s) => {
    const a = document.createElement('a');
    a.href = `#/streams/${encodeURIComponent(s.id)}`;
    a.dataset.testid = 'stream-link';
    const title = document.createElement('div');
    title.className = 'title';
    title.textContent = s.title;
    const meta = document.createElement('div');
    meta.className = 'meta';
    const badge = document.createElement('span');
    badge.className = `badge ${s.status}`;
    badge.textContent = s.status === 'active' ? 'live' : s.status;
    const viewers = document.createElement('span');
    viewers.textContent = `${s.viewer_count ?? 0} watching`;
    const since = document.createElement('span');
    if (s.started_at) since.textContent = `since ${new Date(s.started_at).toLocaleTimeString()}`;
    meta.append(badge, viewers, since);
    a.append(title, meta);
    const li = document.createElement('li');
    li.append(a);
    return li;
  }));
  $('list-empty').hidden = streams.length > 0;
}

// ---- player ----------------------------------------------------------------

const player = { video: $('player'), hls: null, socket: null, streamId: null, retry: 0, retryTimer: null };
window.novaPlayer = player;

function message(text) {
  $('player-message').textContent = text || '';
  $('player-message').hidden = !text;
}

function setCounts(count, peak) {
  if (count !== undefined && count !== null) $('viewer-count').textContent = String(count);
  if (peak !== undefined && peak !== null) $('peak-viewers').textContent = String(peak);
}

function setStatus(status) {
  $('stream-status').textContent = status;
}

function stopMedia() {
  if (player.hls) {
    player.hls.destroy();
    player.hls = null;
  }
  player.video.removeAttribute('src');
  player.video.load();
}

function play(playback) {
  if (!playback) return;
  const url = playback.hls_master_url || playback.hls_url;
  if (!url) return;
  stopMedia();
  const video = player.video;
  if (window.Hls && Hls.isSupported()) {
    const hls = new Hls({ liveSyncDurationCount: 2, lowLatencyMode: false, manifestLoadingMaxRetry: 10, levelLoadingMaxRetry: 10 });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) setTimeout(() => hls.startLoad(), 1000);
      else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
      const level = hls.levels[data.level];
      if (level && level.height) $('quality').textContent = `${level.width}×${level.height}`;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    player.hls = hls;
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
  } else {
    message('This browser cannot play HLS.');
    return;
  }
  video.play().catch(() => {});
}

function connect(id) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = viewerId ? `?viewer=${encodeURIComponent(viewerId)}` : '';
  const socket = new WebSocket(`${proto}//${location.host}${api(`/streams/${encodeURIComponent(id)}/ws`)}${query}`);
  player.socket = socket;
  socket.onopen = () => { player.retry = 0; };
  socket.onmessage = (event) => {
    let m;
    try { m = JSON.parse(event.data); } catch (_) { return; }
    switch (m.type) {
      case 'snapshot':
        $('stream-title').textContent = m.title;
        setCounts(m.viewer_count, m.peak_viewers);
        setStatus(m.status);
        if (m.status === 'completed') { message('Stream ended'); break; }
        if (m.status === 'pending') message('Waiting for the broadcaster…');
        else if (m.status === 'interrupted') message('Reconnecting…');
        else message('');
        play(m.playback);
        break;
      case 'viewer_count_changed':
        setCounts(m.viewer_count, m.peak_viewers);
        break;
      case 'stream_started':
        setStatus('active');
        message('');
        play(m.playback);
        break;
      case 'stream_ended':
        setStatus(m.status);
        if (m.status === 'completed') { message('Stream ended'); stopMedia(); }
        else message('Reconnecting…');
        break;
      case 'quality_changed': {
        const top = (m.renditions || [])[0];
        if (top && top.height) $('quality').textContent = `${top.width}×${top.height}`;
        break;
      }
      default:
        break;
    }
  };
  socket.onclose = (event) => {
    if (player.socket !== socket) return; // we closed it ourselves
    player.socket = null;
    if (event.code === 4404) { message('This stream does not exist'); return; }
    if (event.code === 4410) { message('Stream ended'); return; }
    const delay = Math.min(15000, 1000 * 2 ** player.retry++);
    player.retryTimer = setTimeout(() => { if (player.streamId === id) connect(id); }, delay);
  };
}

function openPlayer(id) {
  closePlayer();
  player.streamId = id;
  for (const field of ['viewer-count', 'peak-viewers', 'stream-status', 'quality']) $(field).textContent = '–';
  $('stream-title').textContent = '';
  message('Connecting…');
  fetch(api(`/streams/${encodeURIComponent(id)}`))
    .then((res) => res.json())
    .then((body) => {
      const health = body.stream && body.stream.ingest_health;
      if (health && health.height) $('quality').textContent = `${health.width}×${health.height}`;
    })
    .catch(() => {});
  connect(id);
}

function closePlayer() {
  player.streamId = null;
  clearTimeout(player.retryTimer);
  if (player.socket) {
    const socket = player.socket;
    player.socket = null;
    socket.close(1000, 'leaving');
  }
  stopMedia();
}

// ---- routing (#/ and #/streams/<id>) --------------------------------------

function route() {
  const match = location.hash.match(/^#\/streams\/([^/?#]+)/);
  clearInterval(listTimer);
  if (match) {
    $('list-view').hidden = true;
    $('player-view').hidden = false;
    openPlayer(decodeURIComponent(match[1]));
  } else {
    closePlayer();
    $('player-view').hidden = true;
    $('list-view').hidden = false;
    refreshList();
    listTimer = setInterval(refreshList, 5000);
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('focus', () => { if ($('player-view').hidden) refreshList(); });
route();

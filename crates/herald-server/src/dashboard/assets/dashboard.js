// Herald's dashboard: polls the app's counts, follows its console (Server-Sent Events from every node) and
// sends events through the HTTP API path. Everything a client controls is written with textContent, never
// as HTML.
'use strict';

const base = document.body.dataset.base;
const $ = (id) => document.getElementById(id);
const HISTORY = 150; // points kept per chart (five minutes at one every two seconds)
const MAX_ROWS = 500;

const state = {
  app: null,
  source: null,
  nodes: new Map(), // node id -> { report, seen }
  history: { connections: [], in: [], out: [] },
  paused: false,
  open: new Set(), // presence channels whose members are shown
  overviewTimer: null,
};

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

async function getJSON(path) {
  const response = await fetch(`${base}/api${path}`, { credentials: 'same-origin', cache: 'no-store' });
  if (response.status === 401) {
    location.reload(); // the session ended: back to the login form
    throw new Error('logged out');
  }
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).error || response.statusText);
  return response.json();
}

function theme() {
  const root = document.documentElement;
  const saved = localStorage.getItem('herald-theme');
  if (saved) root.classList.add(saved);
  $('theme').addEventListener('click', () => {
    const dark = root.classList.contains('dark') ||
      (!root.classList.contains('light') && matchMedia('(prefers-color-scheme: dark)').matches);
    root.classList.remove('dark', 'light');
    const next = dark ? 'light' : 'dark';
    root.classList.add(next);
    localStorage.setItem('herald-theme', next);
  });
}

function chart(id, values) {
  const svg = $(id);
  svg.replaceChildren();
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  const step = 300 / (HISTORY - 1);
  const offset = (HISTORY - values.length) * step;
  const points = values.map((v, i) => `${(offset + i * step).toFixed(1)},${(58 - (v / max) * 54).toFixed(1)}`);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points.join(' '));
  svg.append(line);
}

function push(series, value) {
  series.push(value);
  if (series.length > HISTORY) series.shift();
}

async function refreshOverview() {
  if (!state.app) return;
  try {
    const overview = await getJSON(`/apps/${encodeURIComponent(state.app)}/overview`);
    $('connections').textContent = overview.connections;
    push(state.history.connections, overview.connections);
    chart('chart-connections', state.history.connections);
    renderChannels(overview.channels);
  } catch (e) {
    $('connections').textContent = '?';
    $('connections').title = e.message;
  }
}

function renderChannels(channels) {
  const body = $('channels').tBodies[0];
  body.replaceChildren();
  if (channels.length === 0) {
    body.append(el('tr', {}, el('td', { colspan: '3', class: 'hint', text: 'No channel has a subscriber.' })));
  }
  for (const channel of channels) {
    const row = el('tr', { 'data-channel': channel.name },
      el('td', { class: 'mono', text: channel.name }),
      el('td', { text: channel.kind }),
      el('td', { text: String(channel.subscribers) }));
    body.append(row);
    if (channel.kind !== 'presence') continue;
    row.classList.add('presence');
    row.addEventListener('click', () => {
      if (state.open.has(channel.name)) state.open.delete(channel.name);
      else state.open.add(channel.name);
      refreshOverview();
    });
    if (state.open.has(channel.name)) {
      const cell = el('td', { colspan: '3', text: 'Loading members…' });
      body.append(el('tr', { class: 'members' }, cell));
      getJSON(`/apps/${encodeURIComponent(state.app)}/members?channel=${encodeURIComponent(channel.name)}`)
        .then(({ members }) => {
          cell.replaceChildren();
          if (members.length === 0) cell.textContent = 'No members.';
          for (const m of members) {
            const info = m.info === null || m.info === undefined ? '' : ` ${JSON.stringify(m.info)}`;
            cell.append(el('div', { class: 'mono member', text: `${m.id}${info}` }));
          }
        })
        .catch((e) => { cell.textContent = e.message; });
    }
  }
}

function renderNodes() {
  const now = Date.now();
  const body = $('nodes').tBodies[0];
  body.replaceChildren();
  let messagesIn = 0;
  let messagesOut = 0;
  for (const [id, { report, seen }] of [...state.nodes.entries()].sort()) {
    const age = Math.round((now - seen) / 1000);
    if (age > 30) { state.nodes.delete(id); continue; }
    if (age <= 3) { messagesIn += report.messages_in; messagesOut += report.messages_out; }
    body.append(el('tr', { 'data-node': id },
      el('td', { class: 'mono', text: id }),
      el('td', { class: 'mono', text: report.address }),
      el('td', { class: report.ready && age <= 3 ? 'yes' : 'no', text: report.ready ? (age <= 3 ? 'ready' : 'silent') : 'not ready' }),
      el('td', { text: String(report.connections) }),
      el('td', { text: String(report.messages_in) }),
      el('td', { text: String(report.messages_out) }),
      el('td', { text: `${age} s ago` })));
  }
  if (state.nodes.size === 0) {
    body.append(el('tr', {}, el('td', { colspan: '7', class: 'hint', text: 'Waiting for the nodes to report…' })));
  }
  $('messages-in').textContent = messagesIn;
  $('messages-out').textContent = messagesOut;
  push(state.history.in, messagesIn);
  push(state.history.out, messagesOut);
  chart('chart-in', state.history.in);
  chart('chart-out', state.history.out);
}

function describe(entry) {
  switch (entry.kind) {
    case 'connected': return [`connected ${entry.socket_id}`, entry.protocol === 'socketio' ? 'socket.io' : ''];
    case 'disconnected': return [`disconnected ${entry.socket_id}`, entry.reason];
    case 'connection_refused': return [`connection refused (${entry.code})`, entry.reason];
    case 'subscribed': return [`subscribed ${entry.socket_id} to ${entry.channel}`, entry.user_id ? `as user ${entry.user_id}` : ''];
    case 'unsubscribed': return [`unsubscribed ${entry.socket_id} from ${entry.channel}`, ''];
    case 'subscription_refused': return [`refused ${entry.socket_id} on ${entry.channel}`, entry.reason];
    case 'broadcast': {
      const to = entry.delivered_to === undefined ? '' : ` → ${entry.delivered_to} here`;
      return [`${entry.source} event ${entry.event} on ${entry.channel}${to}`, `${entry.data} (${entry.size} bytes)`];
    }
    case 'webhook': return [`webhook ${entry.events.join(', ')} → ${entry.url}`, entry.result];
    default: return [entry.kind, ''];
  }
}

function matches(entry) {
  const channel = $('filter-channel').value.trim();
  const event = $('filter-event').value.trim();
  if (channel && !(entry.channel || '').includes(channel)) return false;
  if (event && !(entry.event || '').includes(event)) return false;
  return true;
}

function logEntry(entry) {
  if (state.paused || !matches(entry)) return;
  const [what, detail] = describe(entry);
  const kindClass = entry.kind.includes('refused') || (entry.kind === 'webhook' && entry.result !== 'ok')
    ? 'refused' : entry.kind;
  const skipped = entry.skipped ? ` (${entry.skipped} earlier entries skipped by the cap)` : '';
  const row = el('li', { class: kindClass, 'data-kind': entry.kind },
    el('span', { class: 'time', text: new Date(entry.at).toLocaleTimeString() }),
    el('span', { class: 'node', text: entry.node }),
    el('span', {}, el('span', { class: 'what', text: what + skipped }),
      detail ? el('div', { class: 'data', text: detail }) : ''));
  const list = $('console');
  list.prepend(row);
  while (list.children.length > MAX_ROWS) list.lastChild.remove();
}

function follow() {
  if (state.source) state.source.close();
  state.nodes.clear();
  const live = $('live');
  live.textContent = 'connecting…';
  live.className = 'pill';
  const source = new EventSource(`${base}/api/apps/${encodeURIComponent(state.app)}/console`);
  state.source = source;
  source.onopen = () => { live.textContent = 'live'; live.className = 'pill on'; };
  source.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'pill off'; };
  source.onmessage = (message) => {
    let entry;
    try { entry = JSON.parse(message.data); } catch { return; }
    if (entry.kind === 'node') {
      state.nodes.set(entry.node, { report: entry, seen: Date.now() });
      return;
    }
    logEntry(entry);
  };
}

function selectApp(id) {
  state.app = id;
  state.history = { connections: [], in: [], out: [] };
  state.open.clear();
  $('console').replaceChildren();
  history.replaceState(null, '', `#${encodeURIComponent(id)}`);
  follow();
  refreshOverview();
}

function creator() {
  $('creator').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const result = $('creator-result');
    const data = String(form.get('data'));
    try { JSON.parse(data); } catch {
      result.textContent = 'Data must be JSON (what Laravel sends is a JSON object).';
      return;
    }
    const body = JSON.stringify({ name: form.get('name'), channel: form.get('channel'), data });
    const response = await fetch(`${base}/api/apps/${encodeURIComponent(state.app)}/events`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-herald-dashboard': '1' },
      body,
    });
    const answer = await response.json().catch(() => ({}));
    result.textContent = response.ok ? 'Sent.' : `Not sent: ${answer.error || response.statusText}`;
  });
}

async function manage(method, path, body) {
  const response = await fetch(`${base}/api/admin/apps${path}`, {
    method,
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-herald-dashboard': '1' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

async function refreshStoredApps() {
  let apps;
  try { ({ apps } = await manage('GET', '')); } catch (e) { $('manage-result').textContent = e.message; return; }
  $('manage').hidden = false;
  const body = $('stored-apps').tBodies[0];
  body.replaceChildren();
  const result = $('manage-result');
  const act = (label, run) => {
    const button = el('button', { type: 'button', text: label });
    button.addEventListener('click', async () => {
      try { result.textContent = (await run()) || 'Done.'; } catch (e) { result.textContent = `Not done: ${e.message}`; }
      refreshStoredApps();
    });
    return button;
  };
  for (const app of apps) {
    const enabled = app.enabled !== false;
    body.append(el('tr', { 'data-app': app.id },
      el('td', { class: 'mono', text: app.id }),
      el('td', { class: 'mono', text: app.key }),
      el('td', { class: enabled ? 'yes' : 'no', text: enabled ? 'enabled' : 'disabled' }),
      el('td', {},
        act(enabled ? 'Disable' : 'Enable', () => manage('PATCH', `/${encodeURIComponent(app.id)}`, { enabled: !enabled }).then(() => '')),
        act('Rotate secret', async () => {
          const { secret, overlap_secs: overlap } = await manage('POST', `/${encodeURIComponent(app.id)}/rotate-secret`);
          return `New secret for ${app.id}: ${secret} (the old one works for ${overlap} s more)`;
        }),
        act('Delete', async () => {
          if (!window.confirm(`Delete app ${app.id}? Its clients are disconnected.`)) return 'Kept.';
          await manage('DELETE', `/${encodeURIComponent(app.id)}`);
          return `Deleted ${app.id}.`;
        }))));
  }
}

function manager() {
  $('create-app').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const result = $('manage-result');
    let settings;
    try { settings = JSON.parse(String(form.get('settings') || '{}')); } catch {
      result.textContent = 'Settings must be a JSON object.';
      return;
    }
    const id = String(form.get('id') || '').trim();
    if (id) settings.id = id;
    try {
      const { app } = await manage('POST', '', settings);
      result.textContent = `Created ${app.id}: key ${app.key}, secret ${app.secret}`;
    } catch (e) {
      result.textContent = `Not created: ${e.message}`;
    }
    refreshStoredApps();
  });
}

async function start() {
  theme();
  creator();
  manager();
  $('pause').addEventListener('click', () => {
    state.paused = !state.paused;
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
  });
  $('clear').addEventListener('click', () => $('console').replaceChildren());
  $('app').addEventListener('change', (e) => selectApp(e.target.value));
  const { apps, manage_apps: manageApps } = await getJSON('/apps');
  if (manageApps) refreshStoredApps();
  for (const app of apps) $('app').append(el('option', { value: app.id, text: app.id }));
  let wanted = '';
  try { wanted = decodeURIComponent(location.hash.slice(1)); } catch { /* a mangled #: the first app */ }
  const first = apps.find((a) => a.id === wanted) || apps[0];
  if (!first) return;
  $('app').value = first.id;
  selectApp(first.id);
  setInterval(refreshOverview, 2000);
  setInterval(renderNodes, 1000);
}

start();

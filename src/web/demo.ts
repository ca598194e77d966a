import { createBrowserClient } from '../client/browser.js';
import type { NotifyClientError } from '../client/errors.js';
import type { NotifyEvent, SessionInfo, StreamState, Subscription } from '../client/types.js';

/**
 * The demo page (`GET /`): sign in, watch your inbox and public topics live, publish when your
 * role allows. Everything runs through the shared client; the page holds no token.
 */

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const client = createBrowserClient();
let subscription: Subscription | undefined;
let session: SessionInfo | undefined;
let count = 0;
const MAX_SHOWN = 200; // the feed is bounded: an open tab must not grow without end

const STATE_TEXT: Record<StreamState, string> = {
  connecting: 'Connecting',
  open: 'Live',
  reconnecting: 'Reconnecting',
  stopped: 'Offline',
};

function setState(state: StreamState): void {
  $('state').dataset.state = state;
  $('state-text').textContent = STATE_TEXT[state];
}

function show(signedIn: boolean): void {
  $('signin').hidden = signedIn;
  $('app').hidden = !signedIn;
  $('status').hidden = !signedIn;
}

function covers(granted: readonly string[], wanted: string): boolean {
  return granted.includes(wanted) || granted.includes('**');
}

function topicsFor(s: SessionInfo): string[] {
  const inbox = `users/${s.subject}/**`;
  return [inbox, 'public/**'].filter((topic) => covers(s.subscribe, topic) || (topic === inbox && s.subscribe.includes('users/*/**')));
}

function render(event: NotifyEvent): void {
  const item = document.createElement('li');
  item.dataset.id = event.id;
  item.dataset.type = event.type;
  item.dataset.topic = event.topic;
  const data = event.data as Record<string, unknown> | null;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const type = document.createElement('span');
  type.className = 'type';
  type.textContent = event.type;
  const time = document.createElement('time');
  const ms = Number(event.id.split('-')[0]);
  time.textContent = Number.isFinite(ms) ? new Date(ms).toLocaleTimeString() : '';
  const topic = document.createElement('span');
  topic.className = 'topic';
  topic.textContent = event.topic;
  meta.append(type, topic, time);
  const body = document.createElement('div');
  body.className = 'body';
  const text = data !== null && typeof data === 'object' ? (data.text ?? data.headline ?? data.title) : undefined;
  if (typeof text === 'string') {
    body.textContent = text;
  } else {
    const code = document.createElement('code');
    code.textContent = JSON.stringify(event.data);
    body.append(code);
  }
  if (data !== null && typeof data === 'object' && data.inbox === true) item.classList.add('inbox');
  item.append(meta, body);
  const feed = $('feed');
  feed.prepend(item);
  while (feed.children.length > MAX_SHOWN) feed.lastElementChild?.remove();
  $('empty').hidden = true;
  $('count').textContent = String(++count);
  $('last-id').textContent = event.id;
}

function start(s: SessionInfo): void {
  session = s;
  show(true);
  $('who').textContent = s.subject;
  $('publish-card').hidden = s.publish.length === 0;
  $('grants').textContent = s.publish.length === 0 ? 'nothing (your role reads only)' : s.publish.join(', ');
  if (subscription !== undefined) return;
  const topics = topicsFor(s);
  $('topics').textContent = topics.join(', ');
  subscription = client.subscribe(
    topics,
    {
      event: render,
      state: setState,
      reset: () => {
        $('reset-notice').hidden = false;
      },
      stop: (error: NotifyClientError) => {
        setState('stopped');
        if (error.code === 'signed_out') signedOut();
      },
    },
    { types: ['notification', 'alert', 'greeting'] },
  );
}

function signedOut(): void {
  subscription?.close();
  subscription = undefined;
  session = undefined;
  show(false);
  $('feed').replaceChildren();
  count = 0;
  $('count').textContent = '0';
  $('empty').hidden = false;
}

function tick(): void {
  const s = client.session ?? session;
  if (s === undefined) return;
  const left = Math.max(0, Math.round((s.expiresAt - Date.now()) / 1000));
  $('ttl').textContent = `token ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}

$('signin-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const button = $<HTMLButtonElement>('signin-button');
  const error = $('signin-error');
  button.disabled = true;
  error.hidden = true;
  const password = $<HTMLInputElement>('password');
  client
    .login($<HTMLInputElement>('username').value, password.value)
    .then(
      (s) => {
        password.value = '';
        start(s);
      },
      (e: NotifyClientError) => {
        error.textContent =
          e.code === 'invalid_credentials'
            ? 'The username or password is incorrect.'
            : e.code === 'rate_limited'
              ? 'Too many attempts; wait a little.'
              : 'The server could not be reached.';
        error.hidden = false;
      },
    )
    .finally(() => {
      button.disabled = false;
    });
});

$('publish-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const button = $<HTMLButtonElement>('publish-button');
  const error = $('publish-error');
  const ok = $('publish-ok');
  button.disabled = true;
  error.hidden = ok.hidden = true;
  const message = $<HTMLTextAreaElement>('message');
  client
    .publish([$<HTMLInputElement>('topic').value.trim()], { text: message.value })
    .then(
      (result) => {
        message.value = '';
        ok.textContent = `Published (${result.id}).`;
        ok.hidden = false;
      },
      (e: NotifyClientError) => {
        error.textContent = e.message;
        error.hidden = false;
      },
    )
    .finally(() => {
      button.disabled = false;
    });
});

$('logout').addEventListener('click', () => {
  void client.logout().finally(signedOut);
});

client.onAuthChange((state) => {
  if (state.signedIn) start(state.session);
  else if (session !== undefined) signedOut();
});

setInterval(tick, 1000);
client.restore().then(
  (s) => (s === undefined ? show(false) : start(s)),
  () => show(false),
);

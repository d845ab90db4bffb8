// The control plane's admin routes, read from the page's own origin (the admin address, or
// `weft dashboard`'s local proxy, which adds the admin token). Reads only: the dashboard
// never changes the mesh. A token typed into the page is kept for this tab only.

const KEY = 'weft-admin-token';

export function token() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t.trim());
  else sessionStorage.removeItem(KEY);
}

function headers() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

export async function get(path) {
  const resp = await fetch(path, { headers: headers(), cache: 'no-store' });
  if (!resp.ok) {
    const body = await resp.text();
    const err = new Error(`${path}: ${resp.status} ${body.trim()}`);
    err.status = resp.status;
    throw err;
  }
  return resp.json();
}

// Streams NDJSON lines from `path` to `onLine` until `signal` aborts or the stream ends.
export async function stream(path, onLine, signal) {
  const resp = await fetch(path, { headers: headers(), signal, cache: 'no-store' });
  if (!resp.ok) throw new Error(`${path}: ${resp.status} ${(await resp.text()).trim()}`);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) {
        try { onLine(JSON.parse(line)); } catch { /* a partial or foreign line */ }
      }
    }
  }
}

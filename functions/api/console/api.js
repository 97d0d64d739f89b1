// The API, as the console calls it: same origin, the key from sessionStorage as a bearer
// token, every error turned into an ApiError with the API's code and words.

const KEY = 'skyhook.console.key';

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${session.key ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network_error', `The API could not be reached (${e.message}).`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = json && json.error;
    throw new ApiError(
      res.status,
      err ? err.code : `http_${res.status}`,
      err ? err.message : `The API answered HTTP ${res.status}.`,
    );
  }
  return json;
}

// A query string of the parameters that have a value.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

// Calls a bulk route until it says it is complete, reporting each answer.
export async function untilComplete(method, path, body, onProgress, maxCalls = 50) {
  const total = {};
  for (let i = 0; i < maxCalls; i += 1) {
    const out = await api(method, path, body);
    for (const [k, v] of Object.entries(out)) {
      if (typeof v === 'number') total[k] = (total[k] ?? 0) + v;
    }
    onProgress({ ...total, complete: out.complete, calls: i + 1 });
    if (out.complete) return total;
  }
  throw new ApiError(0, 'incomplete', `Still not complete after ${maxCalls} calls; run it again.`);
}

// The HTTP API of acta serve, with the token of this browser session.

const KEY = 'acta.token';

/** The bearer token, kept for this browser session only (gone when the tab is closed). */
export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  set(token) {
    sessionStorage.setItem(KEY, token);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** A refused or failed request: HTTP status, acta's error code and its message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

/** What to do when the server refuses the token (401): ask for one again. */
export function onUnauthorized(f) {
  unauthorized = f;
}

/**
 * GET /api/v1/<path>?<params>: the JSON answer, or an ApiError. Parameters that are undefined or
 * null are left out; an empty string is sent as it is.
 */
export async function api(path, params, opts = {}) {
  const url = new URL(`/api/v1/${path}`, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
  }
  const token = session.token;
  if (!token) {
    const e = new ApiError(401, 'unauthorized', 'Enter a token to continue.');
    unauthorized(e.message);
    throw e;
  }
  let response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      cache: 'no-store',
      signal: opts.signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `acta did not answer (${e.message}); is the server running?`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    if (e.name === 'AbortError') throw e;
  }
  if (!response.ok) {
    const err = body && body.error ? body.error : {};
    const e = new ApiError(response.status, err.code || `http_${response.status}`,
      err.message || `${response.status} ${response.statusText}`);
    if (response.status === 401) unauthorized(e.message);
    throw e;
  }
  return body;
}

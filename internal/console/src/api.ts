// The REST API (docs/api.md): session cookie plus the CSRF header on every
// state change; errors are {"error": {"code", "message"}}.

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

let csrf = "";

/** setCSRF remembers the token from the login or me answer. */
export function setCSRF(token: string): void {
  csrf = token;
}

/** onUnauthenticated is called when a session has expired. */
export let onUnauthenticated: () => void = () => {};
export function setOnUnauthenticated(f: () => void): void {
  onUnauthenticated = f;
}

/** api calls the REST API and returns the decoded JSON answer. */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch("/api/v1" + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: a proxy's error page */
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string } } | undefined)?.error;
    const err = new ApiError(res.status, e?.code ?? "http_" + res.status, e?.message ?? `${res.status} ${res.statusText}`);
    if (res.status === 401 && path !== "/login" && path !== "/me") onUnauthenticated();
    throw err;
  }
  return data as T;
}

/** notAvailable reports an endpoint this server does not have yet. */
export function notAvailable(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 404 || e.status === 405) && (e.code === "http_404" || e.code === "http_405" || e.code === "not_found");
}

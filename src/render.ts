/** How an OAuthError looks on the wire, for both adapters' error handlers. */
import { isOAuthError } from './errors.js';
import { type HttpRequest, isBrowser } from './http.js';

export interface ErrorResponse {
  status: number;
  contentType: string;
  body: string;
}

/**
 * A small page for browsers, JSON for anyone else. Only the error's code and its fixed message
 * are shown: both are free of tokens, codes and secrets by construction. Anything that is not an
 * OAuthError gives undefined (the app's own handler decides).
 */
export function renderError(err: unknown, request: HttpRequest): ErrorResponse | undefined {
  if (!isOAuthError(err)) return undefined;
  if (!isBrowser(request)) {
    return { status: err.status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(err) };
  }
  const title = err.status >= 500 ? 'Sign-in is unavailable' : 'Sign-in failed';
  const body = `<!doctype html><html lang="en"><meta charset="utf-8"><title>${title}</title>
<body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto">
<h1>${title}</h1><p>${escapeHtml(err.message)}</p><p><small>${escapeHtml(err.code)}</small></p>
<p><a href="/">Back</a></p></body></html>`;
  return { status: err.status, contentType: 'text/html; charset=utf-8', body };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

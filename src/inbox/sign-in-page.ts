/** The inbox's sign-in page (escaped templates, no inline script or style: see ./page-frame.ts). */
import { escapeHtml, hidden, page, type Frame } from './page-frame.js';

/** The sign-in page: paste a dev token, or sign in with the identity provider. */
export function signInPage(frame: Frame, model: { next: string; csrf: string; oidc: boolean; error?: string }): string {
  const { base } = frame;
  const error = model.error ? `<p id="signin-error" class="flash flash-error" role="alert">${escapeHtml(model.error)}</p>` : '';
  const oidc = model.oidc
    ? `<section id="signin-oidc-section"><h2>Single sign-on</h2>` +
      `<p><a id="signin-oidc" class="button" href="${escapeHtml(base)}/signin/oidc?next=${encodeURIComponent(model.next)}">Sign in with your identity provider</a></p></section>`
    : '';
  return page(
    frame,
    `<h1 id="signin-title">Sign in to the approver inbox</h1>${error}${oidc}` +
      `<section id="signin-token-section"><h2>Approver token</h2>` +
      '<p>For local development, issue a token and paste it here:</p>' +
      '<pre id="signin-command">npx toolgate token issue --sub alice --groups manager --tenant acme</pre>' +
      `<form id="signin-form" method="post" action="${escapeHtml(base)}/signin">` +
      hidden('csrf', model.csrf) +
      hidden('next', model.next) +
      '<label for="token">Token</label>' +
      '<textarea id="token" name="token" rows="4" required autocomplete="off" spellcheck="false"></textarea>' +
      '<button id="signin-submit" type="submit">Sign in</button></form></section>',
  );
}

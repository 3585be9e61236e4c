/** The approver inbox: server-rendered pages over the JSON approval API (mount at `/inbox`). */
export { createInboxRouter, safeNext, INBOX_CSP, INBOX_COOKIES, type InboxOptions } from './router.js';
export type { InboxOidcOptions } from './oidc.js';
export { inboxOptionsFromEnv, loadSessionKey } from './config.js';

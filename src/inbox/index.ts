/** The approver inbox: server-rendered pages over the JSON approval API (mount at `/inbox`). */
export { createInboxRouter, INBOX_CSP } from './router.js';
export { safeNext, INBOX_COOKIES, type InboxOptions } from './inbox-context.js';
export type { InboxOidcOptions } from './oidc.js';
export { inboxOptionsFromEnv, loadSessionKey } from './config.js';

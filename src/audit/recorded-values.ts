/**
 * The values a request's history holds, as the audit record shows them: each one's fields checked
 * (a history holds whatever was written into it, so nothing is taken on its shape), its texts
 * redacted, and the phrases the timeline and `toolgate audit show` say them in.
 */
import { previewView, type PreviewView } from '../approvals/view.js';
import { redactText, redactValue } from '../egress/redact.js';
import { DENIAL_CODES, LINK_KINDS, type LinkKind, type OverrideGrant, type RequestLink, type ShadowDecision } from '../shared/index.js';
import { isObject } from './history-payloads.js';
import { RESULT_SUMMARY_CHARS } from './record-types.js';

/** A value with every secret the egress rules know redacted. */
export const redact = <T>(value: T): T => redactValue(value).value;

/** A result as the record keeps it: redacted JSON, truncated at {@link RESULT_SUMMARY_CHARS}. */
export function summarise(result: unknown): string {
  const json = JSON.stringify(redact(result)) ?? 'null';
  return json.length > RESULT_SUMMARY_CHARS ? `${json.slice(0, RESULT_SUMMARY_CHARS)}… (${json.length} chars)` : json;
}

const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** The recorded link of a request, its fields checked (a history holds whatever was written into it) and its reason redacted; undefined when none. */
export function linkOf(value: unknown): RequestLink | undefined {
  if (!isObject(value) || !(LINK_KINDS as readonly unknown[]).includes(value.kind)) return undefined;
  const { requestId, tool, by, reason } = value;
  if (typeof requestId !== 'string' || typeof tool !== 'string' || typeof reason !== 'string') return undefined;
  if (!isObject(by) || typeof by.id !== 'string' || !isStrings(by.groups)) return undefined;
  return { kind: value.kind as LinkKind, requestId, tool, by: { id: by.id, groups: [...by.groups] }, reason: redactText(reason) };
}

/** A recorded break-glass grant, its fields checked and its texts redacted; undefined when there is none. */
export function overrideOf(value: unknown): OverrideGrant | undefined {
  if (!isObject(value)) return undefined;
  const { breakGlass, deniedRule, deniedCode, deniedReasons, by, reason, notify } = value;
  if (typeof breakGlass !== 'string' || typeof deniedRule !== 'string' || typeof by !== 'string' || typeof reason !== 'string') return undefined;
  if (!(DENIAL_CODES as readonly unknown[]).includes(deniedCode) || !isStrings(deniedReasons) || !isStrings(notify)) return undefined;
  return {
    breakGlass,
    deniedRule,
    deniedCode: deniedCode as OverrideGrant['deniedCode'],
    deniedReasons: deniedReasons.map((text) => redactText(text)),
    by,
    reason: redactText(reason),
    notify: [...notify],
  };
}

/** How the timeline names the dry-run preview. */
export const PREVIEW_TIMELINE = 'dry-run preview';

/** A recorded preview, checked and redacted (see `previewView`); nothing when there is none. */
export function previewOf(value: unknown): { preview?: PreviewView } {
  const view = previewView(value);
  return view ? { preview: view } : {};
}

/** Text on one line, shortened to `max` characters. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ⏎ ');
  return flat.length > max ? `${flat.slice(0, max)}… (${flat.length} chars)` : flat;
}

/** A recorded preview in a timeline line: how it went, and the start of its answer. */
export function describePreview(value: unknown): string {
  const view = previewView(value);
  if (!view) return `${PREVIEW_TIMELINE}: no answer recorded`;
  return `${PREVIEW_TIMELINE} ${view.status === 'ok' ? 'answered' : view.status === 'failed' ? 'failed' : 'timed out'}: ${oneLine(view.text, 200)}`;
}

/** The recorded manifest signers, each checked (a history holds whatever was written into it); nothing when none. */
export function signersOf(value: unknown): { toolSigners?: { role: string; key: string }[] } {
  if (!Array.isArray(value)) return {};
  const signers = (value as unknown[])
    .filter((s): s is { role: string; key: string } => {
      const signer = s as { role?: unknown; key?: unknown } | null;
      return signer !== null && typeof signer === 'object' && typeof signer.role === 'string' && typeof signer.key === 'string';
    })
    .map((s) => ({ role: s.role, key: s.key }));
  return signers.length > 0 ? { toolSigners: signers } : {};
}

/** A recorded shadow decision, its fields checked (a history holds whatever was written into it), or undefined. */
export function shadowOf(value: unknown): ShadowDecision | undefined {
  if (!isObject(value) || typeof value.kind !== 'string') return undefined;
  if (value.kind === 'unavailable') return { kind: 'unavailable', reason: redactText(typeof value.reason === 'string' ? value.reason : '') };
  const { kind, policyDigest, outcome, rule, risk, plan, code, detail } = value;
  if (typeof policyDigest !== 'string' || typeof outcome !== 'string' || typeof rule !== 'string' || typeof risk !== 'string') return undefined;
  return {
    kind,
    policyDigest,
    outcome,
    rule,
    risk,
    ...(typeof plan === 'string' ? { plan } : {}),
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof detail === 'string' ? { detail } : {}),
  } as ShadowDecision;
}

/** A shadow decision in a line: its kind against the enforced decision, and what it decided. */
export function describeShadow(s: ShadowDecision): string {
  if (s.kind === 'unavailable') return `unavailable (${s.reason})`;
  const decided = `${s.outcome}${s.code ? ` ${s.code}` : ''} by ${s.rule}, risk ${s.risk}${s.plan ? `, plan ${s.plan}` : ''}, policy ${s.policyDigest.slice(0, 12)}`;
  const kind = s.kind === 'agree' ? 'agrees' : s.kind === 'not_comparable' ? 'not comparable (no policy in force)' : `DISAGREES (${s.kind})`;
  return `${kind}: ${decided}${s.detail ? `; ${s.detail}` : ''}`;
}

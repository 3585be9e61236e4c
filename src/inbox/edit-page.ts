/**
 * Editing a request's arguments in the inbox: the edit form (schema-guided fields when the tool's
 * schema allows, a JSON editor otherwise), reading the edited arguments back from the posted form,
 * and the preview page (the diff and policy's answer) before the edit is submitted. Escaped
 * templates, no inline script or style (see ./page-frame.ts).
 */
import { flagsOnArgument, provenanceKinds, type ProvenanceView } from '../approvals/view.js';
import type { DiffRow } from './diff.js';
import { escapeHtml, hidden, json, page, riskBadge, textOf, type Frame, type InboxRequestView } from './page-frame.js';

/** The "came from untrusted content" marker of a flagged argument (the kinds in its title). */
const untrustedMarker = (flags: ProvenanceView['untrusted']): string =>
  flags.length > 0
    ? ` <span class="untrusted-marker" title="${escapeHtml(flags.map((f) => `${f.path}: ${provenanceKinds(f.kinds)}`).join('; '))}">⚠ came from untrusted content</span>`
    : '';

const EDIT_FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** One field of the schema-guided edit form. */
export interface SchemaField {
  name: string;
  type: 'string' | 'number' | 'integer' | 'boolean' | 'json';
  enum?: unknown[];
  required: boolean;
  description?: string;
}

/** The fields of a schema-guided edit form: the schema's top-level properties, when it has usable ones. */
export function schemaFields(schema: unknown): SchemaField[] | undefined {
  if (!schema || typeof schema !== 'object') return undefined;
  const s = schema as { type?: unknown; properties?: unknown; required?: unknown };
  if (s.type !== 'object' || !s.properties || typeof s.properties !== 'object') return undefined;
  const required = new Set(Array.isArray(s.required) ? s.required.filter((r): r is string => typeof r === 'string') : []);
  const fields: SchemaField[] = [];
  for (const [name, property] of Object.entries(s.properties as Record<string, unknown>)) {
    // A property name that cannot be a form field name falls back to the JSON editor.
    if (!EDIT_FIELD_NAME.test(name)) return undefined;
    const p = (property ?? {}) as { type?: unknown; enum?: unknown; description?: unknown };
    const type: SchemaField['type'] = p.type === 'string' || p.type === 'number' || p.type === 'integer' || p.type === 'boolean' ? p.type : 'json';
    fields.push({
      name,
      type,
      ...(Array.isArray(p.enum) ? { enum: p.enum as unknown[] } : {}),
      required: required.has(name),
      ...(typeof p.description === 'string' ? { description: p.description } : {}),
    });
  }
  return fields.length > 0 ? fields : undefined;
}

/** The edit form of the request page (its fields post to the edit preview). */
export function editForm(base: string, view: InboxRequestView, csrf: string): string {
  const action = `${escapeHtml(base)}/requests/${encodeURIComponent(view.requestId)}/edit/preview`;
  const args = view.args ?? {};
  const fields = schemaFields(view.argsSchema);
  let inputs: string;
  if (fields) {
    inputs =
      hidden('mode', 'fields') +
      fields
        .map((field) => {
          const id = `edit-arg-${field.name}`;
          const name = `arg.${field.name}`;
          const current = args[field.name];
          const label = `<label for="${escapeHtml(id)}">${escapeHtml(field.name)}${field.required ? ' *' : ''}${untrustedMarker(flagsOnArgument(view.provenance, field.name))}${field.description ? ` <small>${escapeHtml(field.description)}</small>` : ''}</label>`;
          if (field.enum) {
            const options = [
              '<option value="">(unset)</option>',
              ...field.enum.map((option) => {
                const value = JSON.stringify(option);
                return `<option value="${escapeHtml(value)}"${JSON.stringify(current) === value ? ' selected' : ''}>${escapeHtml(String(option))}</option>`;
              }),
            ].join('');
            return `${label}<select id="${escapeHtml(id)}" name="${escapeHtml(name)}" data-kind="enum">${options}</select>`;
          }
          if (field.type === 'boolean') {
            const option = (value: string, text: string) => `<option value="${value}"${textOf(current) === value ? ' selected' : ''}>${text}</option>`;
            return `${label}<select id="${escapeHtml(id)}" name="${escapeHtml(name)}" data-kind="boolean"><option value="">(unset)</option>${option('true', 'true')}${option('false', 'false')}</select>`;
          }
          if (field.type === 'number' || field.type === 'integer') {
            return `${label}<input id="${escapeHtml(id)}" name="${escapeHtml(name)}" type="number"${field.type === 'integer' ? ' step="1"' : ' step="any"'} value="${escapeHtml(current)}" data-kind="${field.type}"${field.required ? ' required' : ''}>`;
          }
          if (field.type === 'string') {
            return `${label}<input id="${escapeHtml(id)}" name="${escapeHtml(name)}" type="text" value="${escapeHtml(current)}" data-kind="string"${field.required ? ' required' : ''}>`;
          }
          return `${label}<textarea id="${escapeHtml(id)}" name="${escapeHtml(name)}" rows="4" data-kind="json" spellcheck="false">${current === undefined ? '' : json(current)}</textarea>`;
        })
        .join('');
  } else {
    inputs =
      hidden('mode', 'json') +
      '<label for="edit-args">New arguments (JSON; they replace all arguments)</label>' +
      `<textarea id="edit-args" name="args" rows="10" required spellcheck="false">${json(args)}</textarea>`;
  }
  return (
    `<form id="edit-form" class="decision" method="post" action="${action}"><h3>Edit arguments</h3>` +
    hidden('csrf', csrf) +
    hidden('digest', view.digest ?? '') +
    inputs +
    '<label for="edit-reason">Reason for the edit</label><input id="edit-reason" name="reason" type="text" maxlength="2000">' +
    '<p class="hint">Redacted values are shown as [REDACTED:…]: an edit replaces the arguments, so type the real value of every argument you keep.</p>' +
    '<button id="edit-preview-button" type="submit">Preview the edit</button></form>'
  );
}

/** What the API's policy preview answered, or why there is none. */
export type PolicyPreview =
  | { kind: 'decision'; outcome?: string; risk?: string; rule?: string; reasons?: string[]; eligibleGroups?: string[]; digest?: string }
  | { kind: 'unavailable'; message: string };

/** The edit preview: the diff, the policy's answer on the new arguments, and the final submit. */
export function editPreviewPage(
  frame: Frame,
  model: { view: InboxRequestView; csrf: string; args: Record<string, unknown>; reason?: string; diff: DiffRow[]; preview: PolicyPreview },
): string {
  const { base } = frame;
  const { view } = model;
  const cell = (value: unknown) => (value === undefined ? '' : `<code>${escapeHtml(JSON.stringify(value))}</code>`);
  const diff =
    model.diff.length > 0
      ? '<table id="args-diff"><thead><tr><th>Argument</th><th>Change</th><th>Before</th><th>After</th></tr></thead><tbody>' +
        model.diff
          .map(
            (row) =>
              `<tr class="diff-${row.kind}"><td>${escapeHtml(row.path)}</td><td>${row.kind}</td><td>${cell(row.before)}</td><td>${cell(row.after)}</td></tr>`,
          )
          .join('') +
        '</tbody></table>'
      : '<p id="args-diff-empty">The new arguments are the same as the current ones.</p>';
  const p = model.preview;
  const policy =
    p.kind === 'decision'
      ? '<dl id="policy-preview">' +
        `<dt>Outcome</dt><dd id="preview-outcome">${escapeHtml(p.outcome ?? '—')}</dd>` +
        `<dt>Risk</dt><dd id="preview-risk">${riskBadge(p.risk)}</dd>` +
        `<dt>Rule</dt><dd id="preview-rule">${escapeHtml(p.rule ?? '—')}</dd>` +
        `<dt>Who must approve</dt><dd id="preview-groups">${escapeHtml((p.eligibleGroups ?? []).join(', ') || '—')}</dd>` +
        `<dt>Reasons</dt><dd id="preview-reasons">${(p.reasons ?? []).map((r) => escapeHtml(r)).join('<br>') || '—'}</dd></dl>`
      : `<p id="policy-preview-unavailable" class="hint">${escapeHtml(p.message)}</p>`;
  return page(
    frame,
    `<h1 id="edit-preview-title">Edit ${escapeHtml(view.tool)} <small>${escapeHtml(view.requestId)}</small></h1>` +
      `<section id="edit-preview"><h2>Changes</h2>${diff}<h2>New arguments</h2><pre id="edit-new-args">${json(model.args)}</pre>` +
      `<h2>Policy on the new arguments</h2>${policy}` +
      '<p class="hint">Submitting sends the edit; policy judges it again and it counts as your approval where the new plan lets you approve.</p>' +
      `<form id="edit-confirm-form" class="decision" method="post" action="${escapeHtml(base)}/requests/${encodeURIComponent(view.requestId)}/decision">` +
      hidden('csrf', model.csrf) +
      hidden('digest', view.digest ?? '') +
      hidden('decision', 'edit') +
      hidden('args', JSON.stringify(model.args)) +
      hidden('reason', model.reason ?? '') +
      '<button id="edit-submit-button" type="submit">Submit the edit</button>' +
      `<a id="edit-cancel" href="${escapeHtml(base)}/requests/${encodeURIComponent(view.requestId)}">Cancel</a></form></section>`,
  );
}

/** The edited arguments from the edit form: the JSON editor, or the schema-guided fields. */
export function argsFromForm(form: Record<string, unknown>, view: InboxRequestView): { args: Record<string, unknown> } | { error: string } {
  if (form.mode === 'fields') {
    const fields = schemaFields(view.argsSchema);
    if (!fields) return { error: 'The argument form no longer matches the tool; reload the page.' };
    const args: Record<string, unknown> = {};
    for (const field of fields) {
      const raw = form[`arg.${field.name}`];
      if (typeof raw !== 'string' || raw.trim() === '') {
        if (field.required) return { error: `${field.name} is required.` };
        continue;
      }
      const text = raw.trim();
      if (field.enum) {
        try {
          args[field.name] = JSON.parse(text);
        } catch {
          return { error: `${field.name}: choose one of the listed values.` };
        }
      } else if (field.type === 'string') args[field.name] = raw;
      else if (field.type === 'boolean') args[field.name] = text === 'true';
      else if (field.type === 'number' || field.type === 'integer') {
        const value = Number(text);
        if (!Number.isFinite(value) || (field.type === 'integer' && !Number.isInteger(value)))
          return { error: `${field.name} must be ${field.type === 'integer' ? 'a whole number' : 'a number'}.` };
        args[field.name] = value;
      } else {
        try {
          args[field.name] = JSON.parse(text);
        } catch (err) {
          return { error: `${field.name} is not JSON: ${(err as Error).message}` };
        }
      }
    }
    return { args };
  }
  try {
    const parsed: unknown = JSON.parse(typeof form.args === 'string' ? form.args : '');
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: 'The new arguments must be a JSON object.' };
    return { args: parsed as Record<string, unknown> };
  } catch (err) {
    return { error: `The new arguments are not valid JSON: ${(err as Error).message}` };
  }
}

/**
 * Tool argument schemas: JSON Schema (draft 2020-12 by default, draft-07 when `$schema` says so)
 * compiled once with ajv, and validation errors rendered as `args.<field>: <what was expected>`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { canonicalJson } from '../shared/assertions.js';

/** Validates one tool's arguments; returns human-readable problems, empty when valid. */
export type ArgsValidator = (args: unknown) => string[];

/** A problem in an argument schema, with the path inside the schema where it was found. */
export interface SchemaProblem {
  path: (string | number)[];
  message: string;
}

const DRAFT_07 = /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/;
const DRAFT_2020 = /^https?:\/\/json-schema\.org\/draft\/2020-12\/schema#?$/;

/** Compiles argument schemas for one policy, sharing compiled validators between identical schemas. */
export class ArgsSchemaCompiler {
  readonly #draft07 = new Ajv(ajvOptions());
  readonly #draft2020 = new Ajv2020(ajvOptions());
  readonly #cache = new Map<string, ArgsValidator>();

  /** Compiles `schema`; returns the validator or the problems that make the schema unusable. */
  compile(schema: Record<string, unknown>): { validate: ArgsValidator } | { problems: SchemaProblem[] } {
    if (schema['type'] !== 'object') {
      return { problems: [{ path: ['type'], message: 'the argument schema must have type: object' }] };
    }
    const effective = 'additionalProperties' in schema || 'unevaluatedProperties' in schema ? schema : { ...schema, additionalProperties: false };
    const key = canonicalJson(effective);
    const cached = this.#cache.get(key);
    if (cached) return { validate: cached };

    const declared = schema['$schema'];
    let ajv: Ajv | Ajv2020;
    if (declared === undefined || (typeof declared === 'string' && DRAFT_2020.test(declared))) ajv = this.#draft2020;
    else if (typeof declared === 'string' && DRAFT_07.test(declared)) ajv = this.#draft07;
    else {
      return {
        problems: [
          { path: ['$schema'], message: 'unsupported $schema; use https://json-schema.org/draft/2020-12/schema or http://json-schema.org/draft-07/schema#' },
        ],
      };
    }
    if (!ajv.validateSchema(effective)) {
      return {
        problems: (ajv.errors ?? []).map((error) => ({
          path: pointerToPath(error.instancePath),
          message: `invalid JSON Schema: ${error.message ?? error.keyword}`,
        })),
      };
    }
    let compiled: ValidateFunction;
    try {
      compiled = ajv.compile(effective);
    } catch (error) {
      return { problems: [{ path: [], message: `invalid JSON Schema: ${error instanceof Error ? error.message : String(error)}` }] };
    }
    const validate: ArgsValidator = (args) => (compiled(args) ? [] : formatArgsErrors(compiled.errors ?? []));
    this.#cache.set(key, validate);
    return { validate };
  }
}

function ajvOptions() {
  return {
    allErrors: true,
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    logger: false as const,
  };
}

/** Renders ajv errors as `args.<path>: <message>` sentences, naming unknown and missing fields. */
export function formatArgsErrors(errors: readonly ErrorObject[]): string[] {
  const lines = new Set<string>();
  for (const error of errors) {
    const base = pathText(['args', ...pointerToPath(error.instancePath)]);
    const params = error.params as Record<string, unknown>;
    if (error.keyword === 'required') {
      lines.add(`${pathText(['args', ...pointerToPath(error.instancePath), String(params['missingProperty'])])}: is required`);
    } else if (error.keyword === 'additionalProperties' || error.keyword === 'unevaluatedProperties') {
      const field = String(params['additionalProperty'] ?? params['unevaluatedProperty']);
      lines.add(`${pathText(['args', ...pointerToPath(error.instancePath), field])}: unknown field (not in the tool's argument schema)`);
    } else if (error.keyword === 'enum' && Array.isArray(params['allowedValues'])) {
      lines.add(`${base}: ${error.message ?? 'must be one of the allowed values'} (${params['allowedValues'].map(String).join(', ')})`);
    } else if (error.keyword === 'if') {
      continue; // the failing branch reports its own error
    } else {
      lines.add(`${base}: ${error.message ?? `fails ${error.keyword}`}`);
    }
  }
  return [...lines];
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((part) => (/^(0|[1-9]\d*)$/.test(part) ? Number(part) : part));
}

function pathText(path: (string | number)[]): string {
  return path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out === '' ? part : `${out}.${part}`), '');
}

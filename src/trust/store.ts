/**
 * What a deployment's processes hold of the trust boundary, loaded from files or the environment:
 * the front door's request-signing key and the approval API's decision-signing key (API), and the
 * public keys plus the evaluation-seal secret (workers). Every setting is validated at start-up
 * with the variable named in the error. In a local state directory (`toolgate dev`), missing keys
 * are created on first use; in production they are given.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { TrustAnchors, TrustedKey } from '../shared/assertions.js';
import { ensureEd25519KeyPair } from '../auth/keys.js';
import { AuthConfigError } from '../auth/errors.js';
import { optionalList, optionalText } from '../env-fields.js';
import { DecisionSigner, RequestSigner } from './signers.js';
import { EvaluationSealer } from './seal.js';
import { defaultTrustKeyPaths, loadSealSecret, signingKeyFromPem, trustedKeyFromPem } from './keys.js';

const schema = z.object({
  TOOLGATE_REQUEST_SIGNING_KEY_FILE: optionalText,
  TOOLGATE_DECISION_SIGNING_KEY_FILE: optionalText,
  TOOLGATE_TRUSTED_REQUEST_KEYS: optionalList,
  TOOLGATE_TRUSTED_DECISION_KEYS: optionalList,
  TOOLGATE_WORKER_SEAL_KEY_FILE: optionalText,
});

function parse(env: NodeJS.ProcessEnv) {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AuthConfigError(String(issue?.path[0] ?? 'environment'), issue?.message ?? 'invalid');
  }
  return parsed.data;
}

async function readVariableFile(variable: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new AuthConfigError(variable, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

async function keyOrConfigError<T>(variable: string, make: () => Promise<T>): Promise<T> {
  try {
    return await make();
  } catch (err) {
    if (err instanceof AuthConfigError) throw err;
    throw new AuthConfigError(variable, (err as Error).message, { cause: err });
  }
}

/** What the API signs with. */
export interface FrontDoorKeys {
  requests: RequestSigner;
  decisions: DecisionSigner;
}

/**
 * The API's signers: `TOOLGATE_REQUEST_SIGNING_KEY_FILE` and `TOOLGATE_DECISION_SIGNING_KEY_FILE`
 * (PKCS#8 PEM Ed25519), else the local pairs under `<stateDir>/keys/`, created on first use. The
 * two must differ: a process that only admits agents need not be able to approve.
 */
export async function loadFrontDoorKeys(stateDir: string, env: NodeJS.ProcessEnv = process.env): Promise<FrontDoorKeys> {
  const e = parse(env);
  const paths = defaultTrustKeyPaths(stateDir);
  const load = async (variable: string, given: string | undefined, local: typeof paths.request) => {
    if (given === undefined) await ensureEd25519KeyPair(local);
    const path = given ?? local.privateKeyFile;
    const pem = await readVariableFile(variable, path);
    return keyOrConfigError(variable, () => signingKeyFromPem(pem, path));
  };
  const request = await load('TOOLGATE_REQUEST_SIGNING_KEY_FILE', e.TOOLGATE_REQUEST_SIGNING_KEY_FILE, paths.request);
  const decision = await load('TOOLGATE_DECISION_SIGNING_KEY_FILE', e.TOOLGATE_DECISION_SIGNING_KEY_FILE, paths.decision);
  if (request.kid === decision.kid) {
    throw new AuthConfigError('TOOLGATE_DECISION_SIGNING_KEY_FILE', 'the decision-signing key must differ from the request-signing key');
  }
  return { requests: new RequestSigner(request), decisions: new DecisionSigner(decision) };
}

/** What workers trust and seal with. */
export interface WorkerTrust {
  /** The public keys a request holds in its history (re-read on every call: rotation needs no restart of running requests' logic). */
  anchors(): TrustAnchors;
  sealer: EvaluationSealer;
}

/**
 * The workers' trust: `TOOLGATE_TRUSTED_REQUEST_KEYS` and `TOOLGATE_TRUSTED_DECISION_KEYS`
 * (comma-separated PEM files; list the new key beside the old one while rotating) and
 * `TOOLGATE_WORKER_SEAL_KEY_FILE`, else the local keys under `<stateDir>/keys/`, created on first use.
 */
export async function loadWorkerTrust(stateDir: string, env: NodeJS.ProcessEnv = process.env): Promise<WorkerTrust> {
  const e = parse(env);
  const paths = defaultTrustKeyPaths(stateDir);
  const load = async (variable: string, given: string[] | undefined, local: typeof paths.request): Promise<TrustedKey[]> => {
    if (given === undefined || given.length === 0) await ensureEd25519KeyPair(local);
    const list = given && given.length > 0 ? given : [local.publicKeyFile];
    return Promise.all(list.map(async (path) => keyOrConfigError(variable, async () => trustedKeyFromPem(await readVariableFile(variable, path), path))));
  };
  const requestKeys = await load('TOOLGATE_TRUSTED_REQUEST_KEYS', e.TOOLGATE_TRUSTED_REQUEST_KEYS, paths.request);
  const decisionKeys = await load('TOOLGATE_TRUSTED_DECISION_KEYS', e.TOOLGATE_TRUSTED_DECISION_KEYS, paths.decision);
  const overlap = requestKeys.find((key) => decisionKeys.some((other) => other.kid === key.kid));
  if (overlap)
    throw new AuthConfigError('TOOLGATE_TRUSTED_DECISION_KEYS', `key ${overlap.kid} is trusted for both requests and decisions; each kind needs its own key`);
  const sealPath = e.TOOLGATE_WORKER_SEAL_KEY_FILE ?? paths.sealFile;
  const secret = await keyOrConfigError('TOOLGATE_WORKER_SEAL_KEY_FILE', () =>
    loadSealSecret(sealPath, { create: e.TOOLGATE_WORKER_SEAL_KEY_FILE === undefined }),
  );
  const anchors: TrustAnchors = { requestKeys, decisionKeys };
  return { anchors: () => anchors, sealer: new EvaluationSealer(secret) };
}

/** A worker trust made of given keys (tests, embedded use). */
export function workerTrustOf(anchors: TrustAnchors, sealSecret: Buffer): WorkerTrust {
  return { anchors: () => anchors, sealer: new EvaluationSealer(sealSecret) };
}

/**
 * `toolgate manifest keygen|sign|verify`: co-signed tool manifests. `sign` adds (or replaces) one
 * role's signature to manifest entries and writes it into the policy files as a text edit of the
 * entry's `signatures:` lines only, so every other byte of the file — comments, alignment, quoting —
 * stays as the author wrote it and a signing commit's diff shows nothing but signatures. `verify`
 * loads the files exactly as a worker configured with the same signers would, and prints each
 * entry's verified signers.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config.js';
import { PolicyLoadError, formatPolicyIssue, loadPolicy, type LoadedPolicy } from '../policy/index.js';
import {
  describeSigners,
  loadManifestTrust,
  manifestKeyId,
  manifestTrustFromConfig,
  readManifestSigningKey,
  type ManifestTrust,
} from '../policy/manifest-signatures.js';
import { signManifestFiles } from './manifest-sign.js';

/** The trust `manifest verify` checks against: the flags, else the deployment's configuration. */
async function verifyTrust(options: { signers?: string; require?: string[] }): Promise<ManifestTrust> {
  const config = loadConfig();
  const trust = options.signers
    ? await loadManifestTrust(options.signers, options.require ?? config.manifestRequire)
    : await manifestTrustFromConfig({ manifestSignersFile: config.manifestSignersFile, manifestRequire: options.require ?? config.manifestRequire });
  if (!trust)
    throw new InvalidArgumentError('nothing to verify against: pass --signers <file> or set TOOLGATE_MANIFEST_SIGNERS (the file mapping roles to public keys)');
  return trust;
}

const list = (value: string): string[] =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** Adds `manifest keygen|sign|verify` to the program. */
export function registerManifestCommands(program: Command): void {
  const manifest = program.command('manifest').description('Co-signed tool manifests: signing keys, signatures, verification');

  manifest
    .command('keygen')
    .description('Create an Ed25519 key pair for signing manifest entries (private key mode 0600, never overwritten)')
    .requiredOption('--out <dir>', 'directory for <name>.key.pem and <name>.pub.pem')
    .option('--name <name>', 'file name stem, e.g. security-alice', 'manifest-signing')
    .action(async (options: { out: string; name: string }) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(options.name)) throw new InvalidArgumentError('--name must be a file name stem (letters, digits and . _ -)');
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const files = { privateKeyFile: join(options.out, `${options.name}.key.pem`), publicKeyFile: join(options.out, `${options.name}.pub.pem`) };
      await mkdir(options.out, { recursive: true, mode: 0o700 });
      // `wx`: a key that signed entries is never replaced by accident.
      await writeFile(files.privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600, flag: 'wx' });
      await writeFile(files.publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { mode: 0o644, flag: 'wx' });
      process.stdout.write(
        `key ${manifestKeyId(publicKey)}\n  private: ${files.privateKeyFile}  (keep it with its holder: it signs as a role)\n  public:  ${files.publicKeyFile}  (list it under its role in TOOLGATE_MANIFEST_SIGNERS)\n`,
      );
    });

  manifest
    .command('sign')
    .description("Sign manifest entries as a role (adds or replaces that role's signature; only the signatures: lines of the files change)")
    .requiredOption('--role <role>', 'the role this key signs as, e.g. security or owner')
    .requiredOption('--key <file>', 'the Ed25519 private key (PEM) of toolgate manifest keygen')
    .option('--tool <names>', 'only these tools (comma-separated); default: every manifest entry', list)
    .argument('[paths...]', 'policy files or directories (default: TOOLGATE_POLICY)')
    .action(async (paths: string[], options: { role: string; key: string; tool?: string[] }) => {
      const privateKey = await readManifestSigningKey(options.key);
      const config = loadConfig();
      // Signing needs no trust configuration; where one is set, say at once that a worker would refuse this key for this role.
      const trust = config.manifestSignersFile ? await loadManifestTrust(config.manifestSignersFile).catch(() => undefined) : undefined;
      const trusted = trust?.keys.get(manifestKeyId(privateKey));
      if (trust && trusted?.role !== options.role) {
        process.stderr.write(
          `warning: key ${manifestKeyId(privateKey)} is ${trusted ? `trusted for role ${trusted.role}, not ${options.role}` : 'not a trusted key'} in ${trust.source}: a worker with those signers will refuse these signatures\n`,
        );
      }
      try {
        const results = await signManifestFiles(paths.length > 0 ? paths : config.policyPaths, {
          role: options.role,
          privateKey,
          ...(options.tool ? { tools: options.tool } : {}),
        });
        for (const r of results)
          process.stdout.write(`${r.status.padEnd(9)} ${r.tool} as ${r.role} (${r.key}) over tool ${r.digest.slice(0, 12)} in ${r.file}\n`);
        if (results.length === 0) process.stdout.write('no manifest entries to sign\n');
      } catch (err) {
        if (!(err instanceof PolicyLoadError)) throw err;
        process.stderr.write(`the policy does not load, so nothing was signed:\n${err.issues.map((issue) => `  ${formatPolicyIssue(issue)}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    });

  manifest
    .command('verify')
    .description("Load policy files as a worker with the deployment's manifest signers would, and print each entry's verified signers")
    .option('--signers <file>', 'the file mapping roles to public keys (default: TOOLGATE_MANIFEST_SIGNERS)')
    .option('--require <roles>', 'roles every entry must be signed by (default: TOOLGATE_MANIFEST_REQUIRE)', list)
    .argument('[paths...]', 'policy files or directories (default: TOOLGATE_POLICY)')
    .action(async (paths: string[], options: { signers?: string; require?: string[] }) => {
      const trust = await verifyTrust(options);
      const roles = trust.roles.map((role) => `${role} (${[...trust.keys.values()].filter((k) => k.role === role).length} key(s))`);
      process.stdout.write(`signers: ${roles.join(', ')} from ${trust.source}; required: ${trust.require.join(', ') || 'none'}\n`);
      let policy: LoadedPolicy;
      try {
        policy = await loadPolicy(paths.length > 0 ? paths : loadConfig().policyPaths, { manifestTrust: trust });
      } catch (err) {
        if (!(err instanceof PolicyLoadError)) throw err;
        process.stderr.write(
          `FAILED: a worker with these signers would refuse this policy:\n${err.issues.map((issue) => `  ${formatPolicyIssue(issue)}`).join('\n')}\n`,
        );
        process.exitCode = 1;
        return;
      }
      const width = Math.max(...policy.toolNames.map((tool) => tool.length));
      for (const tool of policy.toolNames) {
        const entry = policy.manifest(tool);
        const signers = entry?.signers ?? [];
        process.stdout.write(
          `ok  ${tool.padEnd(width)}  tool ${entry?.digest.slice(0, 12) ?? '?'}  ${signers.length > 0 ? `signed by ${describeSigners(signers)}` : 'unsigned'}\n`,
        );
      }
    });
}

#!/usr/bin/env node
/**
 * Refreshes the vendored secret-detection ruleset (gitleaks' default config, MIT) that
 * src/egress/secret-rules.ts loads:
 *
 *   node scripts/update-secret-rules.mjs [version]     # default: latest
 *
 * The module is fetched with the Go toolchain (`go mod download`), so it comes through the Go
 * module proxy and checksum database like any Go dependency. The script copies
 * config/gitleaks.toml and LICENSE into src/egress/rules/ and rewrites SOURCE.json with the
 * module, the resolved version, the SHA-256 of the toml and the date. Run the unit tests
 * afterwards: test/unit/redaction.test.ts fails when a new rule cannot be translated or the
 * corpus recall drops.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MODULE = 'github.com/zricethezav/gitleaks/v8';
const rulesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'egress', 'rules');

const requested = process.argv[2] ?? 'latest';
if (!/^(?:latest|v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$/.test(requested)) {
  console.error(`usage: node scripts/update-secret-rules.mjs [vX.Y.Z|latest] (got ${JSON.stringify(requested)})`);
  process.exit(2);
}

let downloaded;
try {
  // GOFLAGS=-mod=mod: work outside any Go module; the module cache keeps the download for next time.
  const out = execFileSync('go', ['mod', 'download', '-json', `${MODULE}@${requested}`], {
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=mod' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  downloaded = JSON.parse(out);
} catch (err) {
  console.error(`go mod download ${MODULE}@${requested} failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
if (downloaded.Error || !downloaded.Dir) {
  console.error(`go mod download ${MODULE}@${requested}: ${downloaded.Error ?? 'no directory in the answer'}`);
  process.exit(1);
}

const toml = join(downloaded.Dir, 'config', 'gitleaks.toml');
const text = readFileSync(toml);
if (!/^\[\[rules\]\]$/m.test(text.toString('utf8'))) {
  console.error(`${toml} holds no [[rules]]: refusing to vendor it`);
  process.exit(1);
}
// Written, not copied: files in the module cache are read-only, and their mode would come along.
writeFileSync(join(rulesDir, 'gitleaks.toml'), text);
writeFileSync(join(rulesDir, 'LICENSE-gitleaks'), readFileSync(join(downloaded.Dir, 'LICENSE')));
const source = {
  module: MODULE,
  version: downloaded.Version,
  sha256: createHash('sha256').update(text).digest('hex'),
  updated: new Date().toISOString().slice(0, 10),
};
writeFileSync(join(rulesDir, 'SOURCE.json'), `${JSON.stringify(source, null, 2)}\n`);
const rules = (text.toString('utf8').match(/^\[\[rules\]\]$/gm) ?? []).length;
console.log(`vendored ${MODULE}@${downloaded.Version}: ${rules} rules, sha256 ${source.sha256}`);

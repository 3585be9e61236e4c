#!/usr/bin/env node
// Entry point of the `toolgate` command. It runs the TypeScript CLI through tsx (no build step),
// on the project's pinned Node when the Node that launched it is older than the project supports.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pinned = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'node.cmd' : 'node');
const major = Number(process.versions.node.split('.')[0]);

if (major < 22 && existsSync(pinned)) {
  const result = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}

/**
 * The progress display on stderr: one status line rewritten in place on a terminal, plain lines
 * otherwise (CI logs, the smoke test).
 */

const tty = process.stderr.isTTY === true;
let current = '';
let startedAt = performance.now();
let lastPlain = 0;

function elapsed(): string {
  const s = Math.round((performance.now() - startedAt) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Starts the clock shown on every line. */
export function startClock(): void {
  startedAt = performance.now();
}

/** Prints a line that stays (a scenario starting or a result). */
export function log(line: string): void {
  if (tty && current) process.stderr.write('\r\x1b[2K');
  process.stderr.write(`[${elapsed()}] ${line}\n`);
  if (tty && current) process.stderr.write(current);
}

/** Replaces the status line (on a terminal), or prints it at most every 2 s (otherwise). */
export function status(line: string): void {
  if (tty) {
    current = `[${elapsed()}] … ${line}`.slice(0, (process.stderr.columns || 120) - 1);
    process.stderr.write(`\r\x1b[2K${current}`);
    return;
  }
  const now = performance.now();
  if (now - lastPlain < 2000) return;
  lastPlain = now;
  process.stderr.write(`[${elapsed()}] … ${line}\n`);
}

/** Clears the status line. */
export function clearStatus(): void {
  if (tty && current) process.stderr.write('\r\x1b[2K');
  current = '';
}

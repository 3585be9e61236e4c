/** Types of ./setup-lib.mjs (plain JavaScript, so the setup scripts run on any Node without tsx). */
import type { SpawnOptions } from 'node:child_process';

/** Raised for any failure that should end the script with a message and a non-zero exit. */
export declare class SetupError extends Error {
  constructor(message: string);
}

/** The last `lines` lines of a program's output, for an error message. */
export declare function tail(text: unknown, lines?: number): string;

/** `path` relative to `root` when it is inside it (shorter messages), else as given. */
export declare function relativeTo(root: string, path: string): string;

/** Whether `path` is a file this process may execute (Windows has no execute bit: any file). */
export declare function isExecutableFile(path: string): boolean;

/** The first executable file named `fileName` in a directory of PATH, or undefined. */
export declare function findOnPath(fileName: string): string | undefined;

/** What a program printed for `--version`. */
export interface VersionOutput {
  /** The program asked. */
  path: string;
  stdout: string;
  stderr: string;
}

/** Runs `<path> --version` and returns what `pick` makes of its output; throws a SetupError with the reason otherwise. */
export declare function probeVersion(path: string, pick: (output: VersionOutput) => string): string;

/** `probeVersion`, with undefined instead of an error. */
export declare function tryVersion(path: string, pick: (output: VersionOutput) => string): string | undefined;

/** The program a variable names, with its version line; undefined when the variable is unset, a SetupError when it names no working program. */
export declare function programFromEnv(
  variable: string,
  pick: (output: VersionOutput) => string,
  unsetHint: string,
): { path: string; version: string } | undefined;

/** Whether a `--version` answer names exactly `version`. */
export declare function reportsVersion(versionLine: string, version: string): boolean;

/** Options of {@link runCommand}: `spawn`'s, plus whether to stream the output and how much of it a failure quotes. */
export interface RunCommandOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Stream the output to stderr as it comes. @default false */
  echo?: boolean;
  /** Lines of output the failure's message quotes; 0 for none (the output was already shown). @default 20 */
  errorTail?: number;
}

/** Runs a command; resolves with its output, rejects with a SetupError naming the command. */
export declare function runCommand(command: string, commandArgs: readonly string[], options?: RunCommandOptions): Promise<string>;

/** Ends a script that failed: its message on stderr after `prefix`, exit code 1. */
export declare function reportFailure(prefix: string, err: unknown): void;

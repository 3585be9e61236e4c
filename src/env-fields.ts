/**
 * The zod fields that environment-variable schemas share (src/auth/config.ts, src/trust/store.ts):
 * an empty variable counts as unset, so `FOO=` in a compose file does not become a value.
 */
import { z } from 'zod';

/** Undefined for a blank string (an empty or whitespace-only variable); any other value as given. */
export const unsetIfEmpty = (value: unknown) => (typeof value === 'string' && value.trim() === '' ? undefined : value);

/** An optional text value (a path, a URL, a name), trimmed; blank is unset. */
export const optionalText = z.preprocess(unsetIfEmpty, z.string().trim().min(1).optional());

/** An optional comma-separated list, each item trimmed and empty items dropped; blank is unset. */
export const optionalList = z.preprocess(
  unsetIfEmpty,
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean),
    )
    .optional(),
);

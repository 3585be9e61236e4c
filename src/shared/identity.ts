/**
 * One person is one identity: actor and approver ids are compared in one canonical form, so that
 * `Maria`, `maria` and `ｍａｒｉａ` (full width) are the same person for self-approval, distinct-people
 * quorums, `all_of` matching and double votes.
 *
 * The canonical form is Unicode NFKC (which folds width and compatibility variants such as `ﬁ`,
 * `K` (Kelvin) or mathematical letters into their plain forms), then case folding (lower, upper,
 * then lower case, so `ß` and `ẞ` fold to `ss` as full case folding does), then NFKC again; the
 * form is a fixed point (canonicalId(canonicalId(x)) === canonicalId(x)). Pure and
 * deterministic: the workflow sandbox runs it too.
 */

/** The canonical form of an actor or approver id (NFKC, case folded). */
export function canonicalId(id: string): string {
  // Lower first, so the capital sharp s (ẞ) takes the same path as ß and the result is a fixed point.
  return id.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().normalize('NFKC');
}

/** Whether two ids name the same identity once both are in canonical form. */
export function sameIdentity(a: string, b: string): boolean {
  return a === b || canonicalId(a) === canonicalId(b);
}

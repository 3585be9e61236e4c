/**
 * Reading a JSON answer of toolgate's HTTP API, on either side of it (the client SDK, the inbox
 * calling the approval API): a body that is empty or not JSON — a proxy's error page, an answer
 * cut off — reads as no body, so the caller falls back on the status code.
 */

/** The response's body parsed as JSON, or undefined when it is empty or not JSON. */
export async function jsonBodyOf(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The playground's state in the URL hash, so a link reproduces a session without any server: the JSON of the
 * state, deflate-raw compressed with the browser's CompressionStream and base64url-encoded ("#z:..."). Where
 * CompressionStream is missing, the JSON is base64url-encoded uncompressed ("#j:..."); both are read back.
 */

export interface PlaygroundState {
  readonly format: string;
  readonly model: string;
  readonly tuples: string;
  readonly queries: string;
  readonly tests: string;
}

const FIELDS = ["format", "model", "tuples", "queries", "tests"] as const;

/** The hash (without "#") that encodes `state`. */
export async function encodeState(state: PlaygroundState): Promise<string> {
  const json = new TextEncoder().encode(JSON.stringify(state));
  if (typeof CompressionStream !== "function") return `j:${toBase64Url(json)}`;
  const stream = new Blob([json]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return `z:${toBase64Url(new Uint8Array(await new Response(stream).arrayBuffer()))}`;
}

/** The state a hash encodes, or undefined when the hash holds none (or a damaged one). */
export async function decodeState(hash: string): Promise<PlaygroundState | undefined> {
  const text = hash.startsWith("#") ? hash.slice(1) : hash;
  try {
    let bytes: Uint8Array<ArrayBuffer>;
    if (text.startsWith("z:")) {
      const stream = new Blob([fromBase64Url(text.slice(2))])
        .stream()
        .pipeThrough(new DecompressionStream("deflate-raw"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    } else if (text.startsWith("j:")) {
      bytes = fromBase64Url(text.slice(2));
    } else {
      return undefined;
    }
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const state: Record<string, string> = {};
    for (const field of FIELDS) state[field] = typeof parsed[field] === "string" ? parsed[field] : "";
    return state as unknown as PlaygroundState;
  } catch {
    return undefined;
  }
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

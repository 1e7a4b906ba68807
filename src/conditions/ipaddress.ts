/**
 * The `ipaddress` condition parameter type (OpenFGA's CEL extension): an IPv4 or IPv6 address with
 * `in_cidr("10.0.0.0/8")`. Addresses of different families never match (as Go's netip.Prefix.Contains).
 */
export class IPAddress {
  /** 4 bytes (IPv4) or 16 bytes (IPv6). */
  readonly bytes: Uint8Array;
  readonly text: string;

  private constructor(bytes: Uint8Array, text: string) {
    this.bytes = bytes;
    this.text = text;
  }

  /** Parses an address; undefined when `text` is not one. */
  static parse(text: string): IPAddress | undefined {
    const bytes = parseAddress(text);
    return bytes === undefined ? undefined : new IPAddress(bytes, text);
  }

  /** Whether this address lies in `cidr` ("192.168.0.0/24", "2001:db8::/32"). Throws on a malformed CIDR. */
  inCidr(cidr: string): boolean {
    const slash = cidr.indexOf("/");
    const network = slash < 0 ? undefined : parseAddress(cidr.slice(0, slash));
    const prefixText = slash < 0 ? "" : cidr.slice(slash + 1);
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (network === undefined || !(prefix >= 0 && prefix <= network.length * 8)) {
      throw new Error(`${JSON.stringify(cidr)} is not a CIDR prefix`);
    }
    if (network.length !== this.bytes.length) return false;
    let bits = prefix;
    for (let i = 0; i < network.length && bits > 0; i++, bits -= 8) {
      const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      if ((network[i]! & mask) !== (this.bytes[i]! & mask)) return false;
    }
    return true;
  }

  /** Same family and same address (the text may differ: "::1" equals "0:0:0:0:0:0:0:1"). */
  equals(other: IPAddress): boolean {
    if (other.bytes.length !== this.bytes.length) return false;
    return this.bytes.every((byte, i) => byte === other.bytes[i]);
  }

  toString(): string {
    return this.text;
  }
}

function parseAddress(text: string): Uint8Array | undefined {
  return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    // No leading zeros (ambiguous octal in some parsers), as Go's netip.
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

function parseIPv6(text: string): Uint8Array | undefined {
  const zone = text.indexOf("%");
  if (zone >= 0) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIPv4(part);
        if (v4 === undefined) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
      out.push(Number.parseInt(part, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}

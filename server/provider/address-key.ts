/**
 * The client address as the sign-in limits count it: IPv4 as is (an IPv4-mapped IPv6 address becomes its IPv4 form),
 * IPv6 by its /64 prefix. One IPv6 subscriber usually holds a whole /64 and can pick any address in it, so counting
 * single IPv6 addresses would give every such client billions of fresh budgets.
 */
import { isIPv4, isIPv6 } from 'node:net';

export function addressKey(ip: string): string {
  const address = ip.trim().toLowerCase().replace(/%.*$/, ''); // no zone id
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(address);
  if (mapped && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(address) || !isIPv6(address)) return address.slice(0, 64);
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, without leading zeros (`2001:db8::1` → 2001, db8, 0, …, 1). */
function expandIPv6(address: string): string[] {
  let text = address;
  const dotted = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1].split('.').map(Number);
    text = `${text.slice(0, -dotted[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => Number.parseInt(group, 16).toString(16));
}

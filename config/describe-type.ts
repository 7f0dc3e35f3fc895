/**
 * What kind of value an option takes, in words (`integer > 0`, `false or integer 0–65535`, `URL`): the type column of
 * docs/configuration.md (with code marks) and the "expected ..." of a message about a value of the wrong kind.
 */
import { z } from 'zod';
import { baseOf } from './option.js';

/** A short type description from the option's JSON Schema; `code` puts literal values in Markdown code marks. */
export function typeOf(schema: z.ZodType, { code = true }: { code?: boolean } = {}): string {
  const base = baseOf(schema) as z.ZodType & { def: { type: string } };
  if (base.def.type === 'custom') return 'module path, or class / factory / instance in code';
  return describe(
    z.toJSONSchema(base, { unrepresentable: 'any' }) as Json,
    code ? (text) => `\`${text}\`` : (text) => text,
  );
}

type Json = Record<string, unknown> & { type?: string; anyOf?: Json[]; items?: Json; enum?: unknown[] };

function describe(json: Json, literal: (text: string) => string): string {
  if (json.anyOf) return json.anyOf.map((branch) => describe(branch, literal)).join(' or ');
  if (json.const !== undefined) return literal(JSON.stringify(json.const));
  if (json.enum) return json.enum.map((value) => literal(String(value))).join(', ');
  switch (json.type) {
    case 'integer':
    case 'number': {
      const max = typeof json.maximum === 'number' && json.maximum < Number.MAX_SAFE_INTEGER ? json.maximum : undefined;
      if (typeof json.minimum === 'number' && max !== undefined) return `${json.type} ${json.minimum}–${max}`;
      const bounds: string[] = [];
      if (typeof json.exclusiveMinimum === 'number') bounds.push(`> ${json.exclusiveMinimum}`);
      if (typeof json.minimum === 'number') bounds.push(`≥ ${json.minimum}`);
      if (max !== undefined) bounds.push(`≤ ${max}`);
      return [json.type, ...bounds].join(' ');
    }
    case 'string':
      return json.format === 'uri' ? 'URL' : 'string';
    case 'array':
      return `list of ${json.items ? describe(json.items, literal) : 'values'}`;
    case 'object':
      return 'object';
    default:
      return json.type ?? 'value';
  }
}

/**
 * How one configuration option is declared: its zod schema (type, bounds and default) registered with what the rest
 * of Gatehouse needs to know about it. The configuration schema (./schema.ts) is a tree of such declarations; the
 * environment mapping (./environment.ts) and docs/configuration.md (./reference.ts) are built by walking it.
 */
import { z } from 'zod';

export interface OptionInfo {
  /** What the option does, in a sentence or two (the reference's "meaning" column). */
  description: string;
  /** Older environment variables that set this option too, e.g. `PORT` for `port`. */
  aliases?: readonly string[];
  /** Holds a secret: its value is never echoed in an error. */
  secret?: boolean;
  /** The unit of a number (shown with the default in the reference). */
  unit?: 'seconds' | 'ms';
  /** Text for the reference's default column when the default is computed elsewhere (e.g. from the port). */
  defaultText?: string;
  /** Entry lists only (accounts, clients, apis): the field that names an entry, used to merge environment entries. */
  key?: string;
}

/** Every declared option and group, with its information. */
export const optionInfo = z.registry<OptionInfo>();

/** Declares one option: `schema` carries its type, bounds and default. */
export function option<T extends z.ZodType>(schema: T, info: OptionInfo): T {
  optionInfo.add(schema, info);
  return schema;
}

/** Declares a group of options (a section of the configuration), present with its defaults when not given. */
export function group<S extends z.ZodRawShape>(description: string, shape: S) {
  const declared = z.strictObject(shape).prefault({} as never);
  optionInfo.add(declared, { description });
  groups.add(declared);
  return declared;
}

const groups = new WeakSet<z.ZodType>();

/** The schema inside defaults, optionals and prefaults: what kind of value the option really takes. */
export function baseOf(schema: z.ZodType): z.ZodType {
  let current = schema as z.ZodType & { def: { type: string; innerType?: z.ZodType } };
  while (
    ['default', 'prefault', 'optional', 'nullable', 'readonly'].includes(current.def.type) &&
    current.def.innerType
  ) {
    current = current.def.innerType as typeof current;
  }
  return current;
}

/** The object schema of a group declared with group(), or undefined for a plain option. */
export function groupShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  if (!groups.has(schema)) return undefined;
  return (baseOf(schema) as z.ZodType & { def: { shape: Record<string, z.ZodType> } }).def.shape;
}

export interface DeclaredOption {
  /** The path in the configuration, e.g. ['serverSideSessions', 'idleTimeout']. */
  path: string[];
  schema: z.ZodType;
  info: OptionInfo;
}

/** Every option below `shape`, depth first, in declaration order. Groups are descended into, not listed. */
export function declaredOptions(shape: Record<string, z.ZodType>, prefix: string[] = []): DeclaredOption[] {
  return Object.entries(shape).flatMap(([key, schema]) => {
    const inner = groupShape(schema);
    if (inner) return declaredOptions(inner, [...prefix, key]);
    const info = optionInfo.get(schema);
    if (!info) throw new Error(`configuration option ${[...prefix, key].join('.')} is declared without option()`);
    return [{ path: [...prefix, key], schema, info }];
  });
}

/** The schema at `path` below `root` (object keys and list indexes, as in a zod issue's path), or undefined. */
export function schemaAt(root: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let current: z.ZodType | undefined = root;
  for (const part of path) {
    if (!current) return undefined;
    const base = baseOf(current) as z.ZodType & {
      def: { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType };
    };
    if (typeof part === 'number') current = base.def.type === 'array' ? base.def.element : undefined;
    else current = base.def.type === 'object' ? base.def.shape?.[String(part)] : undefined;
  }
  return current;
}

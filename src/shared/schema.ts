/**
 * The JSON-schema subset the API contract uses, its TypeScript types, and a
 * validator for it. The tracker hands the same schemas to fastify (ajv) for
 * requests; the client checks every answer with `validate`, so a hostile or
 * broken tracker's answer is a clear error instead of a crash deep in a command.
 */

export interface StringSchema {
  readonly type: "string";
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly enum?: readonly string[];
}
export interface NumberSchema {
  readonly type: "integer" | "number";
  readonly minimum?: number;
  readonly maximum?: number;
}
export interface BooleanSchema {
  readonly type: "boolean";
}
export interface ArraySchema {
  readonly type: "array";
  readonly items: Schema;
  readonly maxItems?: number;
}
export interface ObjectSchema {
  readonly type: "object";
  readonly properties: { readonly [key: string]: Schema };
  readonly required?: readonly string[];
  /** false: unknown fields are refused (requests); absent: ignored (answers may grow). */
  readonly additionalProperties?: false;
  readonly maxProperties?: number;
}
export type Schema = StringSchema | NumberSchema | BooleanSchema | ArraySchema | ObjectSchema;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type ObjectOf<P, R> = Simplify<
  { -readonly [K in keyof P & R]: Infer<P[K]> } & { -readonly [K in Exclude<keyof P, R>]?: Infer<P[K]> }
>;

/** The TypeScript type of the values a schema accepts. */
export type Infer<S> = S extends { type: "string"; enum: readonly (infer E)[] }
  ? E
  : S extends { type: "string" }
    ? string
    : S extends { type: "integer" | "number" }
      ? number
      : S extends { type: "boolean" }
        ? boolean
        : S extends { type: "array"; items: infer I }
          ? Infer<I>[]
          : S extends { type: "object"; properties: infer P }
            ? ObjectOf<P, S extends { required: readonly (infer R)[] } ? R : never>
            : unknown;

/** An object whose unknown fields are refused: for what a tracker accepts. */
export function strict<const P extends Record<string, Schema>, const R extends readonly (keyof P & string)[]>(
  properties: P,
  required: R,
) {
  return { type: "object", required, additionalProperties: false, properties } as const;
}

/** An object whose unknown fields are ignored: for what a client accepts, so answers can grow. */
export function open<const P extends Record<string, Schema>, const R extends readonly (keyof P & string)[]>(
  properties: P,
  required: R,
) {
  return { type: "object", required, properties } as const;
}

/** Bounds the pattern cache: schemas are constants, so this only ever holds their patterns. */
const patterns = new Map<string, RegExp>();

/**
 * The first way `value` breaks `schema`, as `<where>: <what>`, or undefined when it
 * conforms. Values are never quoted in the answer (they may be hostile), only places.
 */
export function validate(schema: Schema, value: unknown, where = "answer"): string | undefined {
  switch (schema.type) {
    case "string": {
      if (typeof value !== "string") return `${where}: expected a string, got ${kind(value)}`;
      if (schema.minLength !== undefined && value.length < schema.minLength)
        return `${where}: shorter than ${schema.minLength} characters`;
      if (schema.maxLength !== undefined && value.length > schema.maxLength)
        return `${where}: longer than ${schema.maxLength} characters`;
      if (schema.pattern !== undefined) {
        let re = patterns.get(schema.pattern);
        if (!re) {
          re = new RegExp(schema.pattern, "u");
          patterns.set(schema.pattern, re);
        }
        if (!re.test(value)) return `${where}: not of the form ${schema.pattern}`;
      }
      if (schema.enum && !schema.enum.includes(value))
        return `${where}: not one of ${schema.enum.join(", ")}`;
      return undefined;
    }
    case "integer":
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value))
        return `${where}: expected a number, got ${kind(value)}`;
      if (schema.type === "integer" && !Number.isInteger(value)) return `${where}: expected a whole number`;
      if (schema.minimum !== undefined && value < schema.minimum) return `${where}: below ${schema.minimum}`;
      if (schema.maximum !== undefined && value > schema.maximum) return `${where}: above ${schema.maximum}`;
      return undefined;
    }
    case "boolean":
      return typeof value === "boolean" ? undefined : `${where}: expected true or false, got ${kind(value)}`;
    case "array": {
      if (!Array.isArray(value)) return `${where}: expected a list, got ${kind(value)}`;
      if (schema.maxItems !== undefined && value.length > schema.maxItems)
        return `${where}: more than ${schema.maxItems} items`;
      for (let i = 0; i < value.length; i++) {
        const e = validate(schema.items, value[i], `${where}[${i}]`);
        if (e) return e;
      }
      return undefined;
    }
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value))
        return `${where}: expected an object, got ${kind(value)}`;
      const v = value as Record<string, unknown>;
      for (const key of schema.required ?? []) {
        if (!Object.hasOwn(v, key)) return `${where}: '${key}' is missing`;
      }
      const keys = Object.keys(v);
      if (schema.maxProperties !== undefined && keys.length > schema.maxProperties)
        return `${where}: more than ${schema.maxProperties} fields`;
      for (const key of keys) {
        const sub = Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
        if (!sub) {
          if (schema.additionalProperties === false) return `${where}: unexpected field`;
          continue;
        }
        const e = validate(sub, v[key], `${where}.${key}`);
        if (e) return e;
      }
      return undefined;
    }
  }
}

function kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : typeof value;
}

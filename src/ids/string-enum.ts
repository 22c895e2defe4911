// The schema of a vocabulary of names (roles, lifecycle states): a TypeBox union of string literals
// typed as the union of its members, so a document that names a role or a state is checked on read.
import { Type, type SchemaOptions, type TLiteral, type TUnion } from "@sinclair/typebox";

type Literals<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K]> };

export function StringEnum<const T extends readonly string[]>(values: T, options?: SchemaOptions): TUnion<Literals<T>> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as unknown as TUnion<Literals<T>>;
}

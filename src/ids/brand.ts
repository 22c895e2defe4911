// A nominal ("branded") type: a number or string the compiler will not confuse with another of the
// same representation. Values get their brand only through the checked constructors beside each type.
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

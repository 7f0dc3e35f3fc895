/**
 * A JSON answer body as the tests read it: field by field, every read checked by an assertion, so the assertions are
 * its type check and a declared type per answer would add nothing.
 */
// biome-ignore lint/suspicious/noExplicitAny: deliberate, the one place tests opt out of typing answers (see above)
export type JsonBody = any;

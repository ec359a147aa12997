/**
 * Database errors classified by their codes: SQLSTATE class, severity, socket errno; the few
 * code-less driver errors by their exact text only.
 */
import fc from "fast-check";
import { CODELESS_DRIVER_CONNECTION_ERRORS, classifyDatabaseError } from "../../app/src/db/errors";

const pgError = (message: string, fields: Record<string, unknown>) => Object.assign(new Error(message), fields);

test.each<[string, Error, string]>([
  ["unique violation", pgError("duplicate key value violates unique constraint", { code: "23505", severity: "ERROR" }), "statement"],
  ["read-only transaction", pgError("cannot execute INSERT in a read-only transaction", { code: "25006", severity: "ERROR" }), "statement"],
  ["statement timeout", pgError("canceling statement due to statement timeout", { code: "57014", severity: "ERROR" }), "server"],
  ["too many connections", pgError("sorry, too many clients already", { code: "53300", severity: "FATAL" }), "connection"],
  ["disk full", pgError("could not extend file", { code: "53100", severity: "ERROR" }), "server"],
  ["internal error", pgError("unexpected", { code: "XX000", severity: "ERROR" }), "server"],
  ["admin shutdown", pgError("terminating connection due to administrator command", { code: "57P01", severity: "FATAL" }), "connection"],
  ["cannot connect now", pgError("the database system is starting up", { code: "57P03" }), "connection"],
  ["connection failure class", pgError("could not receive data", { code: "08006" }), "connection"],
  ["refused socket", pgError("connect ECONNREFUSED 127.0.0.1:5432", { code: "ECONNREFUSED" }), "connection"],
  ["unknown host", pgError("getaddrinfo ENOTFOUND db", { code: "ENOTFOUND" }), "connection"],
  ["password rotated away", pgError('password authentication failed for user "v-knhk"', { code: "28P01", severity: "FATAL" }), "connection"],
  ["pool timeout", new Error("timeout exceeded when trying to connect"), "connection"],
  ["dropped connection", new Error("Connection terminated unexpectedly"), "connection"],
])("%s -> %s", (_name, error, expected) => {
  expect(classifyDatabaseError(error)).toBe(expected);
});

test("a code-less message is about the connection only when it is exactly a driver's own", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), fc.constantFrom("", " ", "connection ", "timeout: "), (text, prefix) => {
      const message = `${prefix}${text}`;
      expect(classifyDatabaseError(new Error(message))).toBe(CODELESS_DRIVER_CONNECTION_ERRORS.has(message) ? "connection" : "statement");
    }),
  );
  // What message matching used to take for a connection failure: a value quoted in an ordinary error.
  expect(classifyDatabaseError(new Error('invalid input syntax for type uuid: "connection terminated"'))).toBe("statement");
  for (const value of [undefined, null, "Connection terminated", 42, {}]) expect(classifyDatabaseError(value)).toBe("statement");
  expect(classifyDatabaseError({ code: "08006" })).toBe("connection");
});

/**
 * GitHub Actions expressions (`${{ ... }}`, `if:`), evaluated for one job instance: matrix values
 * and inputs are concrete; `secrets.*`, `vars.*`, `github.*` are symbolic values (set, content
 * unknown); `steps.*` and `needs.*` outputs are symbolic and may be empty. Enough of the language
 * for these workflows (literals, contexts, ! == != < > && || and the status/string functions);
 * anything else throws, so a workflow using it extends this evaluator instead of passing unchecked.
 */

/** A value the expression has at run time without this test knowing it. */
export interface Symbolic {
  readonly sym: string;
  /** Step outputs and the like: may be the empty string. */
  readonly maybeEmpty: boolean;
}
export type Value = string | number | boolean | null | Symbolic;
export type Contexts = {
  readonly matrix?: Record<string, Value>;
  readonly inputs?: Record<string, Value>;
  readonly env?: Record<string, Value>;
  /** Secrets a called workflow receives (undefined: all, as in a caller or with `secrets: inherit`). */
  readonly secrets?: ReadonlySet<string>;
  /** `<step id>.<output>` that earlier steps always set (other step outputs may be empty). */
  readonly stepOutputs?: ReadonlySet<string>;
};

export const isSymbolic = (v: Value): v is Symbolic => typeof v === "object" && v !== null;

type Token = { kind: "num" | "str" | "ident" | "op"; text: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === "'") {
      let j = i + 1, text = "";
      for (;;) {
        if (j >= src.length) throw new Error(`unterminated string in ${JSON.stringify(src)}`);
        if (src[j] === "'" && src[j + 1] === "'") { text += "'"; j += 2; continue; }
        if (src[j] === "'") break;
        text += src[j++];
      }
      out.push({ kind: "str", text });
      i = j + 1;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (["==", "!=", "<=", ">=", "&&", "||"].includes(two)) { out.push({ kind: "op", text: two }); i += 2; continue; }
    if ("!<>()[].,*".includes(c)) { out.push({ kind: "op", text: c }); i++; continue; }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i));
    if (num) { out.push({ kind: "num", text: num[0] }); i += num[0].length; continue; }
    const id = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i));
    if (id) { out.push({ kind: "ident", text: id[0] }); i += id[0].length; continue; }
    throw new Error(`unexpected ${JSON.stringify(c)} in expression ${JSON.stringify(src)}`);
  }
  return out;
}

const truthy = (v: Value): boolean | undefined => (isSymbolic(v) ? (v.maybeEmpty ? undefined : true) : !!v && v !== 0);
const unknownBool = (why: string): Symbolic => ({ sym: why, maybeEmpty: true });
const str = (v: Value): string => (v === null ? "" : String(v));

function compare(op: string, a: Value, b: Value): Value {
  if (isSymbolic(a) || isSymbolic(b)) return unknownBool(`${op} of a run-time value`);
  const norm = (v: Value) => (typeof v === "string" ? v.toLowerCase() : v);
  switch (op) {
    case "==": return norm(a) === norm(b);
    case "!=": return norm(a) !== norm(b);
    case "<": return Number(a) < Number(b);
    case ">": return Number(a) > Number(b);
    case "<=": return Number(a) <= Number(b);
    default: return Number(a) >= Number(b);
  }
}

function contextValue(path: string[], ctx: Contexts): Value {
  const [root, ...rest] = path;
  const name = `${root}.${rest.join(".")}`;
  switch (root) {
    case "matrix":
    case "inputs":
    case "env": {
      const table = ctx[root] ?? {};
      if (!(rest[0] in table)) {
        if (root === "env") return { sym: name, maybeEmpty: true };
        throw new Error(`${name} is not defined for this job`);
      }
      return table[rest[0]];
    }
    case "secrets":
      if (ctx.secrets && rest[0] !== "GITHUB_TOKEN" && !ctx.secrets.has(rest[0])) return null;
      return { sym: name, maybeEmpty: false };
    case "vars":
    case "github":
    case "runner":
      return { sym: name, maybeEmpty: false };
    case "steps":
      return { sym: name, maybeEmpty: !(rest[1] === "outputs" && ctx.stepOutputs?.has(`${rest[0]}.${rest[2]}`)) };
    case "needs":
    case "job":
    case "strategy":
      return { sym: name, maybeEmpty: true };
    default:
      throw new Error(`unknown context ${root} in ${name}`);
  }
}

class Parser {
  private i = 0;
  constructor(private readonly t: Token[], private readonly ctx: Contexts, private readonly src: string) {}
  private peek(text?: string) { const tok = this.t[this.i]; return text === undefined ? tok : tok?.text === text ? tok : undefined; }
  private take(text?: string): Token {
    const tok = this.t[this.i];
    if (!tok || (text !== undefined && tok.text !== text)) throw new Error(`expected ${text ?? "a value"} in ${JSON.stringify(this.src)}`);
    this.i++;
    return tok;
  }
  parse(): Value {
    const v = this.or();
    if (this.i !== this.t.length) throw new Error(`unexpected ${this.t[this.i].text} in ${JSON.stringify(this.src)}`);
    return v;
  }
  private or(): Value {
    let v = this.and();
    while (this.peek("||")) {
      this.take();
      const r = this.and();
      const t = truthy(v);
      v = t === true ? v : t === false ? r : isSymbolic(r) ? { sym: `${(v as Symbolic).sym} || ${r.sym}`, maybeEmpty: r.maybeEmpty } : r;
    }
    return v;
  }
  private and(): Value {
    let v = this.cmp();
    while (this.peek("&&")) {
      this.take();
      const r = this.cmp();
      const t = truthy(v);
      v = t === false ? v : t === true ? r : isSymbolic(r) ? { sym: `${(v as Symbolic).sym} && ${r.sym}`, maybeEmpty: true } : unknownBool("&& of a run-time value");
    }
    return v;
  }
  private cmp(): Value {
    const a = this.unary();
    const op = this.peek();
    if (op && ["==", "!=", "<", ">", "<=", ">="].includes(op.text)) {
      this.take();
      return compare(op.text, a, this.unary());
    }
    return a;
  }
  private unary(): Value {
    if (this.peek("!")) {
      this.take();
      const v = this.unary();
      const t = truthy(v);
      return t === undefined ? unknownBool("! of a run-time value") : !t;
    }
    return this.primary();
  }
  private primary(): Value {
    const tok = this.take();
    if (tok.kind === "op" && tok.text === "(") {
      const v = this.or();
      this.take(")");
      return v;
    }
    if (tok.kind === "str") return tok.text;
    if (tok.kind === "num") return Number(tok.text);
    if (tok.kind !== "ident") throw new Error(`unexpected ${tok.text} in ${JSON.stringify(this.src)}`);
    if (tok.text === "true" || tok.text === "false") return tok.text === "true";
    if (tok.text === "null") return null;
    if (this.peek("(")) return this.call(tok.text);
    const path = [tok.text];
    for (;;) {
      if (this.peek(".")) { this.take(); path.push(this.take().text); continue; }
      if (this.peek("[")) { this.take(); path.push(str(this.or())); this.take("]"); continue; }
      break;
    }
    return contextValue(path, this.ctx);
  }
  private call(name: string): Value {
    this.take("(");
    const args: Value[] = [];
    while (!this.peek(")")) {
      args.push(this.or());
      if (this.peek(",")) this.take();
    }
    this.take(")");
    switch (name.toLowerCase()) {
      case "success":
      case "always":
        return true;
      case "cancelled":
        return false;
      case "failure":
        return unknownBool("failure()");
      case "contains":
      case "startswith":
      case "endswith": {
        const [a, b] = args;
        if (isSymbolic(a) || isSymbolic(b)) return unknownBool(`${name}() of a run-time value`);
        const [x, y] = [str(a).toLowerCase(), str(b).toLowerCase()];
        return name.toLowerCase() === "contains" ? x.includes(y) : name.toLowerCase() === "startswith" ? x.startsWith(y) : x.endsWith(y);
      }
      case "format": {
        if (args.some(isSymbolic)) return { sym: `format(...)`, maybeEmpty: false };
        const [f, ...rest] = args.map(str);
        return f.replace(/\{(\d+)\}/g, (_, n) => rest[Number(n)] ?? "");
      }
      case "hashfiles":
      case "tojson":
        return { sym: `${name}(...)`, maybeEmpty: false };
      default:
        throw new Error(`function ${name}() is not known to this evaluator (${JSON.stringify(this.src)})`);
    }
  }
}

export function evaluate(expression: string, ctx: Contexts): Value {
  return new Parser(tokenize(expression), ctx, expression).parse();
}

const TEMPLATE = /\$\{\{([\s\S]*?)\}\}/g;

/** A workflow value with `${{ }}` parts: one part alone keeps its type; text around parts makes a string. */
export function interpolate(value: unknown, ctx: Contexts): Value {
  if (typeof value !== "string") return (value ?? null) as Value;
  const parts = [...value.matchAll(TEMPLATE)];
  if (parts.length === 1 && parts[0][0] === value.trim()) return evaluate(parts[0][1], ctx);
  if (parts.length === 0) return value;
  const values = parts.map((p) => evaluate(p[1], ctx));
  const sym = values.find(isSymbolic);
  if (sym) return { sym: value, maybeEmpty: values.every((v) => isSymbolic(v) && v.maybeEmpty) && value.replace(TEMPLATE, "").trim() === "" };
  let i = 0;
  return value.replace(TEMPLATE, () => str(values[i++]));
}

/** `if:` of a job or step: false only when it surely is (a run-time condition may run the step). */
export function mayRun(condition: unknown, ctx: Contexts): boolean {
  if (condition === undefined) return true;
  if (typeof condition === "boolean") return condition;
  const text = String(condition).trim();
  const v = text.startsWith("${{") ? interpolate(text, ctx) : evaluate(text, ctx);
  return truthy(v) !== false;
}

/** A value is provided when it is a non-empty string, or a context value that is set (not maybe-empty). */
export function provided(v: Value): boolean {
  return isSymbolic(v) ? !v.maybeEmpty : v !== null && v !== "" && v !== false;
}

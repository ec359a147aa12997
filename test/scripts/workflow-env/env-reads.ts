/**
 * Which environment variables a script reads, and which of them it cannot run without.
 *
 * TypeScript: the TypeScript compiler's own checker follows the entry file's code through every
 * function, method and class it reaches (calls, references, `new` of a class reaches all its
 * methods; node_modules are not followed). A read is a property or element access with a literal
 * key on a value of type `ProcessEnv`, or `requiredEnv(env, "NAME", ...)`. A read is optional when
 * it has a fallback (`??`, `||`), is a condition (`if`, `?:`, `!`, `&&`) or sits under a condition
 * testing the same variable, or is assigned to a variable the code then tests; otherwise required.
 * Classes that run a tool (the Pulumi CLI, kubectl, gh) are reported as tools.
 *
 * Bash: `$NAME` / `${NAME...}` not assigned in the script; `${NAME:-x}`-style reads are optional,
 * `${NAME:?}` required, and a plain read is required under `set -u`. Scripts it runs with bash,
 * `source`, `exec` or tsx are followed.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import * as ts from "typescript";

export interface EnvRead {
  readonly name: string;
  readonly required: boolean;
  /** Repository-relative file and line of the read. */
  readonly at: string;
}

export interface ScriptEnv {
  readonly entry: string;
  readonly reads: EnvRead[];
  /** Tools the reachable code runs: "pulumi", "kubectl", "gh". */
  readonly tools: Set<string>;
  /** Every file the analysis went through (the entry's import/call graph, scripts it runs). */
  readonly files: Set<string>;
  /** TypeScript entries a bash script runs with tsx (analysed on their own). */
  readonly tsEntries?: readonly string[];
}

/** Classes that run a command-line tool, by class name. */
export const TOOL_CLASSES: Readonly<Record<string, string>> = { PulumiCli: "pulumi", Kubectl: "kubectl", GhPullRequests: "gh" };
/** Methods of those classes that need more than the tool itself: `pulumi up` needs every provider's credentials. */
export const TOOL_METHODS: Readonly<Record<string, string>> = { "PulumiCli.up": "pulumi up" };

/** The helper whose second argument names a variable the script refuses to run without. */
const REQUIRED_ENV_HELPER = "requiredEnv";

function isInRepo(file: string, repo: string): boolean {
  const rel = relative(repo, file);
  return !rel.startsWith("..") && !rel.includes("node_modules") && !file.endsWith(".d.ts");
}

function isProcessEnv(checker: ts.TypeChecker, node: ts.Expression): boolean {
  const type = checker.getNonNullableType(checker.getTypeAtLocation(node));
  return (type.aliasSymbol ?? type.getSymbol())?.getName() === "ProcessEnv";
}

function literalKey(node: ts.PropertyAccessExpression | ts.ElementAccessExpression): string | undefined {
  if (ts.isPropertyAccessExpression(node)) return node.name.text;
  const arg = node.argumentExpression;
  return ts.isStringLiteralLike(arg) ? arg.text : undefined;
}

/** Names of env variables tested in `expr` (e.g. the condition of an `if`). */
function envNamesIn(expr: ts.Node, checker: ts.TypeChecker): Set<string> {
  const names = new Set<string>();
  const visit = (n: ts.Node) => {
    if ((ts.isPropertyAccessExpression(n) || ts.isElementAccessExpression(n)) && isProcessEnv(checker, n.expression)) {
      const key = literalKey(n);
      if (key) names.add(key);
    }
    ts.forEachChild(n, visit);
  };
  visit(expr);
  return names;
}

function isOptionalRead(read: ts.Expression, name: string, checker: ts.TypeChecker): boolean {
  let child: ts.Node = read;
  let parent = read.parent;
  while (ts.isParenthesizedExpression(parent) || ts.isNonNullExpression(parent) || ts.isAsExpression(parent)) {
    child = parent;
    parent = parent.parent;
  }
  // `a ?? b ?? c`: every operand but the last has a fallback.
  for (let c: ts.Node = child, p = parent; ts.isBinaryExpression(p); c = p, p = p.parent) {
    const op = p.operatorToken.kind;
    const fallback = op === ts.SyntaxKind.QuestionQuestionToken || op === ts.SyntaxKind.BarBarToken;
    if (p.left === c && (fallback || op === ts.SyntaxKind.AmpersandAmpersandToken)) return true;
    if (!fallback) break;
  }
  if (ts.isPrefixUnaryExpression(parent) && parent.operator === ts.SyntaxKind.ExclamationToken) return true;
  if ((ts.isIfStatement(parent) || ts.isConditionalExpression(parent)) && (parent as ts.IfStatement).expression === child) return true;
  if (ts.isConditionalExpression(parent) && parent.condition === child) return true;
  // Under a condition that tests the same variable.
  for (let n: ts.Node | undefined = parent; n; n = n.parent) {
    if (ts.isConditionalExpression(n) && envNamesIn(n.condition, checker).has(name)) return true;
    if (ts.isIfStatement(n) && envNamesIn(n.expression, checker).has(name)) return true;
    if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.AmpersandAmpersandToken && envNamesIn(n.left, checker).has(name)) return true;
    if (ts.isFunctionLike(n)) break;
  }
  // `const v = env.X; if (!v) ...`: the code decides what happens without it.
  if (ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name)) {
    const symbol = checker.getSymbolAtLocation(parent.name);
    const scope = parent.parent?.parent?.parent;
    let tested = false;
    const visit = (n: ts.Node) => {
      if (tested) return;
      if ((ts.isIfStatement(n) || ts.isConditionalExpression(n)) && containsSymbol(ts.isIfStatement(n) ? n.expression : n.condition, symbol, checker)) tested = true;
      ts.forEachChild(n, visit);
    };
    if (scope && symbol) visit(scope);
    if (tested) return true;
  }
  return false;
}

function containsSymbol(expr: ts.Node, symbol: ts.Symbol | undefined, checker: ts.TypeChecker): boolean {
  let found = false;
  const visit = (n: ts.Node) => {
    if (found) return;
    if (ts.isIdentifier(n) && checker.getSymbolAtLocation(n) === symbol) found = true;
    ts.forEachChild(n, visit);
  };
  visit(expr);
  return found;
}

function resolveSymbol(checker: ts.TypeChecker, node: ts.Node): ts.Symbol | undefined {
  let symbol = checker.getSymbolAtLocation(node);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  return symbol;
}

/** Env reads and tools of TypeScript entry files, through everything they reach. */
export function analyzeTypeScript(entries: readonly string[], repo: string): Map<string, ScriptEnv> {
  const program = ts.createProgram(entries.map((e) => join(repo, e)), {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    resolveJsonModule: true,
    skipLibCheck: true,
    noEmit: true,
    types: ["node"],
  });
  const checker = program.getTypeChecker();
  const result = new Map<string, ScriptEnv>();
  // Interface name -> the repository's classes implementing it: a call through a port reaches them.
  const implementers = new Map<string, ts.ClassDeclaration[]>();
  for (const sf of program.getSourceFiles()) {
    if (!isInRepo(sf.fileName, repo)) continue;
    const visit = (n: ts.Node) => {
      if (ts.isClassDeclaration(n)) {
        for (const clause of n.heritageClauses ?? []) {
          for (const t of clause.types) {
            const name = t.expression.getText(sf);
            implementers.set(name, [...(implementers.get(name) ?? []), n]);
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  for (const entry of entries) {
    const source = program.getSourceFile(join(repo, entry));
    if (!source) throw new Error(`${entry}: not found by the TypeScript program`);
    const reads: EnvRead[] = [];
    const tools = new Set<string>();
    const files = new Set<string>();
    const seen = new Set<ts.Node>();
    const queue: ts.Node[] = [source];
    const reach = (decl: ts.Declaration) => {
      const file = decl.getSourceFile().fileName;
      if (!isInRepo(file, repo) || seen.has(decl)) return;
      seen.add(decl);
      if (ts.isClassDeclaration(decl) || ts.isClassExpression(decl)) {
        // `new C(...)`: its constructor and field initialisers run; methods only when referenced.
        const name = decl.name?.text;
        if (name && TOOL_CLASSES[name]) tools.add(TOOL_CLASSES[name]);
        for (const m of decl.members) if (ts.isConstructorDeclaration(m) || ts.isPropertyDeclaration(m)) queue.push(m);
        for (const clause of decl.heritageClauses ?? []) for (const t of clause.types) queue.push(t);
        return;
      }
      if ((ts.isMethodSignature(decl) || ts.isPropertySignature(decl)) && ts.isInterfaceDeclaration(decl.parent)) {
        const member = decl.name.getText();
        for (const cls of implementers.get(decl.parent.name.text) ?? []) {
          for (const m of cls.members) if (m.name?.getText() === member) reach(m);
        }
        return;
      }
      if (ts.isMethodDeclaration(decl) && ts.isClassDeclaration(decl.parent) && decl.parent.name) {
        const tool = TOOL_METHODS[`${decl.parent.name.text}.${decl.name.getText()}`];
        if (tool) tools.add(tool);
      }
      if (ts.isFunctionLike(decl) || ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl) || ts.isPropertyAssignment(decl)) queue.push(decl);
    };
    while (queue.length > 0) {
      const node = queue.pop()!;
      files.add(relative(repo, node.getSourceFile().fileName));
      const visit = (n: ts.Node) => {
        if ((ts.isPropertyAccessExpression(n) || ts.isElementAccessExpression(n)) && isProcessEnv(checker, n.expression)) {
          const key = literalKey(n);
          if (key) {
            const sf = n.getSourceFile();
            reads.push({ name: key, required: !isOptionalRead(n, key, checker), at: `${relative(repo, sf.fileName)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}` });
          }
        }
        if (ts.isCallExpression(n)) {
          const callee = resolveSymbol(checker, ts.isPropertyAccessExpression(n.expression) ? n.expression.name : n.expression);
          const arg = n.arguments[1];
          if (callee?.getName() === REQUIRED_ENV_HELPER && arg && ts.isStringLiteralLike(arg)) {
            const sf = n.getSourceFile();
            reads.push({ name: arg.text, required: true, at: `${relative(repo, sf.fileName)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}` });
          }
        }
        if (ts.isIdentifier(n) && !(n.parent && ts.isImportSpecifier(n.parent))) {
          const symbol = resolveSymbol(checker, n);
          for (const decl of symbol?.declarations ?? []) reach(decl);
        }
        ts.forEachChild(n, visit);
      };
      ts.forEachChild(node, visit);
    }
    const unique = [...new Map(reads.map((r) => [`${r.name}@${r.at}`, r])).values()];
    result.set(entry, { entry, reads: unique, tools, files });
  }
  return result;
}

/** Variables bash sets itself, or the runner's shell always has. */
const BASH_OWN = new Set([
  "BASH_SOURCE", "BASH_REMATCH", "BASHPID", "FUNCNAME", "LINENO", "PIPESTATUS", "RANDOM", "SECONDS", "OSTYPE", "HOSTNAME",
  "IFS", "PWD", "OLDPWD", "UID", "EUID", "PPID", "REPLY", "OPTARG", "OPTIND", "SHLVL", "HOME", "PATH", "BASH_VERSION", "TMPDIR",
]);

/**
 * The parts of a bash text that bash expands: single-quoted strings, comments and the bodies of
 * quoted heredocs are blanked (line breaks kept, so line numbers stay right).
 */
export function stripBash(text: string): string {
  let out = "";
  let i = 0;
  let quote: "'" | '"' | undefined;
  const heredocs: string[] = [];
  while (i < text.length) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      out += c === "\n" ? "\n" : "";
      i++;
      continue;
    }
    if (quote === '"') {
      if (c === "\\") { out += text.slice(i, i + 2); i += 2; continue; }
      if (c === '"') quote = undefined;
      out += c;
      i++;
      continue;
    }
    if (c === "\\") { out += text.slice(i, i + 2); i += 2; continue; }
    if (c === "'" || c === '"') { quote = c; out += c === '"' ? c : ""; i++; continue; }
    if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    const heredoc = /^<<-?\s*(['"])(\w+)\1/.exec(text.slice(i, i + 40));
    if (heredoc) { heredocs.push(heredoc[2]); out += "<<"; i += heredoc[0].length; continue; }
    if (c === "\n" && heredocs.length > 0) {
      const end = heredocs.shift()!;
      const body = new RegExp(`\\n[ \\t]*${end}[ \\t]*(\\n|$)`).exec(text.slice(i));
      const stop = body ? i + body.index + body[0].length - (body[1] ? 1 : 0) : text.length;
      out += text.slice(i, stop).replace(/[^\n]/g, "");
      i = stop;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** Bash scripts and TypeScript entries a bash text runs (literal paths only). */
export function bashChildren(text: string, fromDir: string, repo: string): { bash: string[]; ts: string[] } {
  const bash = new Set<string>();
  const tsFiles = new Set<string>();
  for (const m of text.matchAll(/#\s*shellcheck\s+source=(\S+)/g)) {
    const file = resolve(fromDir, m[1]);
    if (existsSync(file) && isInRepo(file, repo)) bash.add(relative(repo, file));
  }
  const clean = stripBash(text).replace(/"\$\(dirname "\$0"\)"\/?|\$\(dirname "\$0"\)\/?|"\$\{BASH_SOURCE\[0\]%\/\*\}"\/?/g, "");
  const add = (set: Set<string>, raw: string) => {
    const candidates = [resolve(fromDir, raw), resolve(repo, raw)];
    const file = candidates.find((c) => existsSync(c) && isInRepo(c, repo));
    if (file) set.add(relative(repo, file));
  };
  for (const m of clean.matchAll(/(?:^|[\s;&|(])(?:exec\s+)?(?:bash|source|\.)\s+"?([\w./-]+\.(?:sh|env))"?/g)) add(bash, m[1]);
  for (const m of clean.matchAll(/(?:^|[\s;&|(])(?:npx\s+)?(?:[\w./-]*\/)?tsx\s+"?([\w./-]+\.ts)"?/g)) add(tsFiles, m[1]);
  return { bash: [...bash], ts: [...tsFiles] };
}

/** Env reads of a bash script and the bash scripts it runs (their assignments count as its own). */
export function analyzeBash(entry: string, repo: string, seen = new Set<string>()): ScriptEnv {
  const files = new Set<string>();
  const texts: { file: string; text: string }[] = [];
  const tsEntries = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    files.add(file);
    const text = readFileSync(join(repo, file), "utf8");
    texts.push({ file, text });
    const children = bashChildren(text, dirname(join(repo, file)), repo);
    children.bash.forEach(walk);
    children.ts.forEach((t) => tsEntries.add(t));
  };
  walk(entry);
  const assigned = new Set<string>();
  for (const { text } of texts) {
    const clean = stripBash(text);
    for (const m of clean.matchAll(/(?:^|[\s;&|(])(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+)*)?([A-Za-z_]\w*)(?:\[[^\]]*\])?\+?=/g)) assigned.add(m[1]);
    for (const m of clean.matchAll(/\b(?:read|mapfile|readarray)\s+(?:-\w+\s+(?:\S+\s+)?)*([A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*)/g)) m[1].split(/\s+/).forEach((n) => assigned.add(n));
    for (const m of clean.matchAll(/\bfor\s+([A-Za-z_]\w*)\s+in\b/g)) assigned.add(m[1]);
    for (const m of clean.matchAll(/\bexport\s+((?:[A-Za-z_]\w*\s*)+)(?:$|;)/gm)) m[1].split(/\s+/).forEach((n) => n && assigned.add(n));
    for (const m of clean.matchAll(/\$\{([A-Za-z_]\w*):?=/g)) assigned.add(m[1]);
  }
  const reads: EnvRead[] = [];
  for (const { file, text } of texts) {
    const strict = /^\s*set\s+-[a-z]*u/m.test(text) || /^\s*set\s+-o\s+nounset/m.test(text);
    const lines = stripBash(text).split("\n");
    lines.forEach((line, i) => {
      for (const m of line.matchAll(/\$(?:\{(#?)([A-Za-z_]\w*)(\[[^\]]*\])?(:?[-=?+]|[#%/^,][^}]*)?|([A-Za-z_]\w*))/g)) {
        const name = m[2] ?? m[5];
        if (assigned.has(name) || BASH_OWN.has(name)) continue;
        const op = m[4] ?? "";
        const required = op.endsWith("?") ? true : /^:?[-=+]$/.test(op) ? false : strict;
        reads.push({ name, required, at: `${file}:${i + 1}` });
      }
    });
  }
  return { entry, reads, tools: new Set(), files, tsEntries: [...tsEntries] };
}

/** `npm run <name>` -> the package.json script -> the file it runs (tsx or bash). */
export function npmScriptEntry(name: string, repo: string): { kind: "ts" | "bash"; file: string } | undefined {
  const scripts = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  const command = scripts[name];
  if (command === undefined) throw new Error(`npm run ${name}: package.json has no such script`);
  const tsx = /(?:^|\s)tsx\s+(\S+\.ts)/.exec(command);
  if (tsx) return { kind: "ts", file: tsx[1] };
  const bash = /(?:^|\s)bash\s+(\S+\.sh)/.exec(command);
  if (bash) return { kind: "bash", file: bash[1] };
  return undefined;
}

export const repoRelative = (repo: string, file: string) => (isAbsolute(file) ? relative(repo, file) : file);

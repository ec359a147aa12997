/**
 * The resource diff (pure) and `npm run diff` on a real git change: a temp copy of this
 * repository committed into its own git repo, then a replica count and an image tag changed in
 * the working tree. The diff must show exactly those changes.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { diffStacks, diffValues, lineDiff, MASK, toMarkdown, type DiffResource } from "../../scripts/lib/diff";
import { addTestIdentifiersToStackFile } from "../support/stack-identifiers";

const REPO = join(__dirname, "..", "..");

const res = (name: string, inputs: Record<string, unknown>, parent = "urn:p"): DiffResource => ({
  type: "kubernetes:apps/v1:Deployment",
  name,
  urn: `urn:pulumi:prod::knhk::kubernetes:apps/v1:Deployment::${name}`,
  parent,
  inputs,
});

describe("diffStacks (pure)", () => {
  test("added, removed, changed with paths; containers keyed by name", () => {
    const base = [
      res("a", { spec: { replicas: 3, template: { spec: { containers: [{ name: "knhk", image: "x:1" }, { name: "side", image: "s:1" }] } } } }),
      res("gone", {}),
      res("same", { x: 1 }),
    ];
    const head = [
      res("a", { spec: { replicas: 4, template: { spec: { containers: [{ name: "side", image: "s:1" }, { name: "knhk", image: "x:2" }] } } } }),
      res("same", { x: 1 }),
      res("new", { y: 1 }),
    ];
    const d = diffStacks(base, head);
    expect(d.added.map((r) => r.name)).toEqual(["new"]);
    expect(d.removed.map((r) => r.name)).toEqual(["gone"]);
    expect(d.unchanged).toBe(1);
    expect(d.changed).toEqual([
      {
        urn: base[0].urn, type: base[0].type, name: "a",
        changes: [
          { path: "spec.replicas", kind: "changed", old: 3, new: 4 },
          { path: "spec.template.spec.containers[name=knhk].image", kind: "changed", old: "x:1", new: "x:2" },
        ],
      },
    ]);
  });

  test("secrets stay masked: [secret] is shown as is, secret-looking values are masked", () => {
    expect(diffValues({ data: { DB_PASSWORD: "old" } }, { data: { DB_PASSWORD: "new" } })).toEqual([
      { path: "data.DB_PASSWORD", kind: "changed", old: MASK, new: MASK },
    ]);
    expect(diffValues({ env: [{ name: "API_TOKEN", value: "a" }] }, { env: [{ name: "API_TOKEN", value: "b" }] })).toEqual([
      { path: "env[name=API_TOKEN].value", kind: "changed", old: MASK, new: MASK },
    ]);
    expect(diffValues({ url: "x" }, { url: "postgres://u:pw@h/db" })).toEqual([{ path: "url", kind: "changed", old: "x", new: MASK }]);
    expect(diffValues({}, { env: [{ name: "JWT_SECRET", value: "abc" }] })).toEqual([
      { path: "env", kind: "added", new: [{ name: "JWT_SECRET", value: MASK }] },
    ]);
    expect(diffValues({ password: "[secret]" }, { password: "[secret]" })).toEqual([]);
  });

  test("parent changes and property removal are reported", () => {
    const d = diffStacks([res("a", { a: 1, b: 2 }, "urn:one")], [res("a", { a: 1 }, "urn:two")]);
    expect(d.changed[0].changes).toEqual([
      { path: "(parent)", kind: "changed", old: "urn:one", new: "urn:two" },
      { path: "b", kind: "removed", old: 2 },
    ]);
  });

  test("Markdown: a table per changed resource, multi-line text as a diff block", () => {
    const d = diffStacks([res("cm", { data: { "patroni.yml": "a: 1\nb: 2\n", n: 1 } })], [res("cm", { data: { "patroni.yml": "a: 1\nb: 3\n", n: 2 } })]);
    const md = toMarkdown(d, { stack: "prod", base: "origin/main" });
    expect(md).toContain("Base `origin/main` → working tree: **1 changed, 0 added, 0 removed**, 0 unchanged.");
    expect(md).toContain("| ~ | `data.n` | `1` | `2` |");
    expect(md).toContain('| ~ | `data["patroni.yml"]` | (text) | 2 line(s) changed, below |');
    expect(md).toContain("```diff\n- b: 2\n+ b: 3\n```");
    expect(toMarkdown(diffStacks([], []), { stack: "dev", base: "HEAD" })).toContain("No resource changes.");
    expect(lineDiff("x\ny\nz", "x\nz\nw")).toEqual(["- y", "+ w"]);
  });
});

describe("npm run diff on a real git change", () => {
  let dir: string;
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8" });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "knhk-diff-repo-"));
    const skip = new Set(["node_modules", ".git", ".tools", ".out", ".pulumi", "coverage"]);
    cpSync(REPO, dir, { recursive: true, filter: (src) => !relative(REPO, src).split("/").some((part) => skip.has(part)) });
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"), "dir");
    addTestIdentifiersToStackFile(dir, "prod");
    git("init", "-q");
    git("add", "-A");
    git("-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "base");
    // The change under review: one more replica per colour and a new image tag for blue.
    const file = join(dir, "Pulumi.prod.yaml");
    const text = readFileSync(file, "utf8");
    const changed = text.replace(/(\n    replicas: )3\n/, "$14\n").replace(/(\n      blue: )([^\n]+)\n/, "$11.5.0\n");
    expect(changed).not.toBe(text);
    writeFileSync(file, changed);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("JSON lists exactly the replica and image changes; Markdown shows them", () => {
    // One run: Markdown on stdout (the PR comment), JSON to a file.
    const jsonFile = join(dir, "diff.json");
    const r = spawnSync("npx", ["tsx", "scripts/diff.ts", "--stack", "prod", "--base", "HEAD", "--format", "markdown", "--json-out", jsonFile], { cwd: dir, encoding: "utf8" });
    expect(r.stderr).not.toMatch(/diff: /);
    expect(r.status).toBe(0);
    const md = r.stdout;
    const json = JSON.parse(readFileSync(jsonFile, "utf8"));
    expect(json.added).toEqual([]);
    expect(json.removed).toEqual([]);
    const changes = Object.fromEntries(json.changed.map((c: { name: string; changes: unknown[] }) => [c.name, c.changes])) as Record<string, { path: string; kind: string; old: unknown; new: unknown }[]>;
    const baseVersion = /\n      blue: ([^\n]+)\n/.exec(git("show", "HEAD:Pulumi.prod.yaml"))![1];
    // The two edits, as they show up in the resources: the replica count, and the blue version
    // (image reference, version labels, the component's own args). Nothing else may change.
    const isReplicaChange = (c: { old: unknown; new: unknown }) => c.old === 3 && c.new === 4;
    const isVersionChange = (c: { old: unknown; new: unknown }) =>
      typeof c.old === "string" && typeof c.new === "string" && c.old.endsWith(baseVersion) && c.new === c.old.slice(0, c.old.length - baseVersion.length) + "1.5.0";
    for (const [name, list] of Object.entries(changes)) {
      for (const c of list) expect({ name, ...c, explained: isReplicaChange(c) || isVersionChange(c) }).toEqual({ name, ...c, explained: true });
    }
    expect(changes["knhk-green"]).toEqual([{ path: "spec.replicas", kind: "changed", old: 3, new: 4 }]);
    expect(changes["knhk-blue"]).toEqual(expect.arrayContaining([
      { path: "spec.replicas", kind: "changed", old: 3, new: 4 },
      { path: "spec.template.spec.containers[name=knhk].image", kind: "changed", old: `ghcr.io/knhk/knhk:${baseVersion}`, new: "ghcr.io/knhk/knhk:1.5.0" },
    ]));
    // Green keeps its version: no green resource shows a version change.
    expect(Object.keys(changes).filter((n) => n.includes("green"))).toEqual(["knhk-green"]);

    expect(md).toContain("### Offline preview diff: stack `prod`");
    expect(md).toContain(`**${json.changed.length} changed, 0 added, 0 removed**`);
    expect(md).toContain("| ~ | `spec.replicas` | `3` | `4` |");
    expect(md).toContain(`| ~ | \`spec.template.spec.containers[name=knhk].image\` | \`ghcr.io/knhk/knhk:${baseVersion}\` | \`ghcr.io/knhk/knhk:1.5.0\` |`);
  }, 240_000);
});

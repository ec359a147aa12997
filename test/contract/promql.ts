/** PromQL read with Prometheus' own grammar (@prometheus-io/lezer-promql): the series selectors an expression uses. */
import { parser } from "@prometheus-io/lezer-promql";

export interface LabelMatcherUse {
  readonly label: string;
  readonly op: string;
  readonly value: string;
}
export interface SelectorUse {
  readonly metric: string;
  readonly matchers: LabelMatcherUse[];
}
export interface ParsedPromql {
  readonly selectors: SelectorUse[];
  /** Positions the grammar could not parse. */
  readonly errors: string[];
}

export function parsePromql(expr: string): ParsedPromql {
  const tree = parser.parse(expr);
  const selectors: SelectorUse[] = [];
  const errors: string[] = [];
  const text = (from: number, to: number) => expr.slice(from, to);
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(`parse error at ${node.from}: "${text(Math.max(0, node.from - 10), node.to + 10)}"`);
      if (node.name !== "VectorSelector") return;
      const identifier = node.node.getChild("Identifier");
      const matchers: LabelMatcherUse[] = [];
      const list = node.node.getChild("LabelMatchers");
      for (const m of list?.getChildren("UnquotedLabelMatcher") ?? []) {
        const label = m.getChild("LabelName");
        const op = m.getChild("MatchOp");
        const value = m.getChild("StringLiteral");
        if (label && op && value) matchers.push({ label: text(label.from, label.to), op: text(op.from, op.to), value: JSON.parse(text(value.from, value.to)) });
      }
      selectors.push({ metric: identifier ? text(identifier.from, identifier.to) : "", matchers });
    },
  });
  return { selectors, errors };
}

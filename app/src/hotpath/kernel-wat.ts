/**
 * WebAssembly text of the hot path kernel (SIMD128). This file is the source of the module: it is
 * assembled once per process by `wasm.ts` with wabt. Semantics are documented in `ops.ts`.
 *
 * A run's 8 rows of one column are two v128 loads; i32x4.eq/gt_s/... + i32x4.bitmask give an
 * 8-bit row mask, ANDed with the valid-row mask (1 << len) - 1. Every operation is then a test or
 * popcount on at most two masks: constant work per run, `len` ticks by definition.
 *
 * Memory layout (byte offsets passed in as immutable globals, see layout.ts):
 *   park   int32[8]          park counters by reason code
 *   len    int32[runs]       rows in run p (> 8 means the run overflowed)
 *   S,P,O,D int32[runs * 8]  columns; run p occupies rows [8p, 8p + 8)
 *   ops    int32[batch * 4]  batch records: [op | k << 8, s, p, o]
 *   out    int32[batch]      batch result codes
 */
import { MAX_OP, MAX_RUN_LENGTH, Op, OpName, ParkReason, REASON_SHIFT, TICKS_SHIFT } from "./ops";

type Column = "$S" | "$O" | "$D";

/** 8-bit mask of rows whose column value satisfies `cmp` against the splat of `arg`. */
function rowMask(column: Column, cmp: string, arg: "$s" | "$o"): string {
  const addr = `(i32.add (global.get ${column}) (local.get $base))`;
  return `(i32.or
        (i32x4.bitmask (${cmp} (v128.load ${addr}) (local.tee $v (i32x4.splat (local.get ${arg})))))
        (i32.shl (i32x4.bitmask (${cmp} (v128.load offset=16 ${addr}) (local.get $v))) (i32.const 4)))`;
}

/** 8-bit mask of rows with S = s and O = o: the two compares are ANDed before one bitmask per half. */
function subjectObjectMask(): string {
  const half = (offset: number, splat: (name: "$s" | "$o", local: "$v" | "$v2") => string) =>
    `(i32x4.bitmask (v128.and
          (i32x4.eq (v128.load offset=${offset} (i32.add (global.get $S) (local.get $base))) ${splat("$s", "$v")})
          (i32x4.eq (v128.load offset=${offset} (i32.add (global.get $O) (local.get $base))) ${splat("$o", "$v2")})))`;
  const first = half(0, (name, local) => `(local.tee ${local} (i32x4.splat (local.get ${name})))`);
  const second = half(16, (_name, local) => `(local.get ${local})`);
  return `(i32.or ${first}\n        (i32.shl ${second} (i32.const 4)))`;
}

const maskS = () => `(i32.and ${rowMask("$S", "i32x4.eq", "$s")} (local.get $lm))`;
const maskO = (cmp: string) => `(i32.and ${rowMask("$O", cmp, "$o")} (local.get $lm))`;
const nonZero = (mask: string) => `(i32.ne ${mask} (i32.const 0))`;
const count = (mask: string) => `(i32.popcnt ${mask})`;

/** WAT expression (i32 0/1) computing each operation from the locals $s $o $k $lm $base. */
const OPERATION_BODIES: Record<OpName, string> = {
  ASK_SP: nonZero(maskS()),
  ASK_SPO: nonZero(`(i32.and ${subjectObjectMask()} (local.get $lm))`),
  ASK_OP: nonZero(maskO("i32x4.eq")),
  COUNT_SP_GE: `(i32.ge_s ${count(maskS())} (local.get $k))`,
  COUNT_SP_LE: `(i32.le_s ${count(maskS())} (local.get $k))`,
  COUNT_SP_EQ: `(i32.eq ${count(maskS())} (local.get $k))`,
  COUNT_OP_GE: `(i32.ge_s ${count(maskO("i32x4.eq"))} (local.get $k))`,
  COUNT_OP_LE: `(i32.le_s ${count(maskO("i32x4.eq"))} (local.get $k))`,
  COUNT_OP_EQ: `(i32.eq ${count(maskO("i32x4.eq"))} (local.get $k))`,
  UNIQUE_SP: `(i32.eq ${count(maskS())} (i32.const 1))`,
  COMPARE_O_EQ: nonZero(maskO("i32x4.eq")),
  COMPARE_O_GT: nonZero(maskO("i32x4.gt_s")),
  COMPARE_O_LT: nonZero(maskO("i32x4.lt_s")),
  COMPARE_O_GE: nonZero(maskO("i32x4.ge_s")),
  COMPARE_O_LE: nonZero(maskO("i32x4.le_s")),
  // $m = subject rows; valid when non-empty and no subject row has another datatype (d is in $o).
  VALIDATE_DATATYPE_SP: `(i32.and
        (i32.ne (local.tee $m ${maskS()}) (i32.const 0))
        (i32.eqz (i32.and (local.get $m) (i32.xor ${rowMask("$D", "i32x4.eq", "$o")} (i32.const 255)))))`,
};

function park(reason: number): string {
  const counter = `(i32.add (global.get $park) (i32.const ${reason * 4}))`;
  return `(i32.store ${counter} (i32.add (i32.load ${counter}) (i32.const 1)))
      (local.set $parked (i32.add (local.get $parked) (i32.const 1)))
      (local.set $code (i32.const ${reason << REASON_SHIFT}))`;
}

/** Admission then dispatch; leaves the result code in $code. Reads locals $op $s $p $o $k. */
function evaluateInto(): string {
  const ops = (Object.keys(OPERATION_BODIES) as OpName[]).sort((a, b) => Op[a] - Op[b]);
  const labels = ["$invalid", ...ops.map((name) => `$${name}`)];
  // br_table jumps to the end of block $X, where the code for X follows; blocks nest innermost-first.
  let dispatch = `(br_table ${labels.join(" ")} (local.get $op))`;
  labels.forEach((label, index) => {
    const body =
      index === 0 ? "unreachable" : `(local.set $r ${OPERATION_BODIES[ops[index - 1]]})\n      (br $done)`;
    dispatch = `(block ${label}\n      ${dispatch})\n      ${body}`;
  });
  return `
    (block $admitted
      (if (i32.ge_u (i32.sub (local.get $op) (i32.const 1)) (i32.const ${MAX_OP}))
        (then ${park(ParkReason.unsupported_op)} (br $admitted)))
      (if (i32.ge_u (local.get $p) (global.get $runs))
        (then ${park(ParkReason.capacity)} (br $admitted)))
      (local.set $len (i32.load (i32.add (global.get $len) (i32.shl (local.get $p) (i32.const 2)))))
      (if (i32.gt_u (local.get $len) (i32.const ${MAX_RUN_LENGTH}))
        (then ${park(ParkReason.run_too_long)} (br $admitted)))
      (local.set $base (i32.shl (local.get $p) (i32.const 5)))
      (local.set $lm (i32.sub (i32.shl (i32.const 1) (local.get $len)) (i32.const 1)))
      (block $done
      ${dispatch})
      (local.set $code (i32.or (local.get $r) (i32.shl (local.get $len) (i32.const ${TICKS_SHIFT})))))`;
}

const LOCALS = `(local $len i32) (local $base i32) (local $lm i32) (local $r i32) (local $m i32)
    (local $code i32) (local $parked i32) (local $v v128) (local $v2 v128)`;

export function kernelWat(): string {
  return `(module
  (import "env" "memory" (memory 1))
  (import "env" "runs" (global $runs i32))
  (import "env" "park" (global $park i32))
  (import "env" "len" (global $len i32))
  (import "env" "S" (global $S i32))
  (import "env" "O" (global $O i32))
  (import "env" "D" (global $D i32))
  (import "env" "ops" (global $ops i32))
  (import "env" "out" (global $out i32))

  ;; One operation; returns its result code.
  (func (export "evaluate") (param $op i32) (param $s i32) (param $p i32) (param $o i32) (param $k i32) (result i32)
    ${LOCALS}
    ${evaluateInto()}
    (local.get $code))

  ;; Records ops[0..n) -> out[0..n); returns how many were parked.
  (func (export "evaluateBatch") (param $n i32) (result i32)
    (local $op i32) (local $s i32) (local $p i32) (local $o i32) (local $k i32)
    (local $rec i32) (local $end i32) (local $dst i32) (local $w i32)
    ${LOCALS}
    (local.set $rec (global.get $ops))
    (local.set $dst (global.get $out))
    (local.set $end (i32.add (local.get $rec) (i32.shl (local.get $n) (i32.const 4))))
    (block $exit
      (loop $next
        (br_if $exit (i32.ge_u (local.get $rec) (local.get $end)))
        (local.set $w (i32.load (local.get $rec)))
        (local.set $op (i32.and (local.get $w) (i32.const 255)))
        (local.set $k (i32.shr_s (local.get $w) (i32.const 8)))
        (local.set $s (i32.load offset=4 (local.get $rec)))
        (local.set $p (i32.load offset=8 (local.get $rec)))
        (local.set $o (i32.load offset=12 (local.get $rec)))
        ${evaluateInto()}
        (i32.store (local.get $dst) (local.get $code))
        (local.set $rec (i32.add (local.get $rec) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (br $next)))
    (local.get $parked))
)
`;
}

/*
 * C reference for the hot path kernel (app/src/hotpath): same structure-of-arrays layout (int32
 * columns S, O, D, run p at rows [8p, 8p + 8), run lengths, 16-byte op records [op | k << 8, s, p, o]),
 * same admission (unsupported op, capacity, run too long -> parked with a counter), same result
 * codes. Built by bench/hotpath.ts with `gcc -O3 -march=native`.
 *
 * Usage: hotpath <runs> <batch> <seed>
 * Builds the store and one batch of records per measured operation (same generator as
 * bench/hotpath.ts), prints a JSON line with the result checksum per operation (the TypeScript
 * side checks both implementations computed the same answers), then serves measurement requests
 * from stdin so the benchmark can alternate C and kernel repetitions:
 *   "<op-index> b <batches>"  time <batches> batch evaluations of that operation's records
 *   "<op-index> s <batches>"  the same records through one non-inlined call per operation
 * each answered with one line: ns per operation. EOF or "q" ends the process.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUN 8
#define PARK_RUN_TOO_LONG 1
#define PARK_CAPACITY 3
#define PARK_UNSUPPORTED_OP 4
#define REASON_SHIFT 16
#define TICKS_SHIFT 8

enum {
  ASK_SP = 1, ASK_SPO, ASK_OP, COUNT_SP_GE, COUNT_SP_LE, COUNT_SP_EQ, COUNT_OP_GE, COUNT_OP_LE,
  COUNT_OP_EQ, UNIQUE_SP, COMPARE_O_EQ, COMPARE_O_GT, COMPARE_O_LT, COMPARE_O_GE, COMPARE_O_LE,
  VALIDATE_DATATYPE_SP, MAX_OP = VALIDATE_DATATYPE_SP
};

typedef struct {
  uint32_t runs;
  int32_t *len;
  int32_t *S, *P, *O, *D;
  int32_t park[8];
} store_t;

/* Row masks over one run: 8 lanes, bit i set when row i matches. With AVX2 (-march=native on
 * x86-64) one 256-bit compare + movemask per column; gcc -O3 does not vectorize the scalar form. */
#ifdef __AVX2__
#include <immintrin.h>
static inline __m256i load_run(const int32_t *col) { return _mm256_load_si256((const __m256i *)col); }
static inline unsigned movemask(__m256i m) { return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(m)); }
static inline unsigned mask_eq(const int32_t *c, int32_t v) { return movemask(_mm256_cmpeq_epi32(load_run(c), _mm256_set1_epi32(v))); }
static inline unsigned mask_gt(const int32_t *c, int32_t v) { return movemask(_mm256_cmpgt_epi32(load_run(c), _mm256_set1_epi32(v))); }
static inline unsigned mask_lt(const int32_t *c, int32_t v) { return movemask(_mm256_cmpgt_epi32(_mm256_set1_epi32(v), load_run(c))); }
#else
#define SCALAR_MASK(name, expr)                                                         \
  static inline unsigned name(const int32_t *c, int32_t v) {                             \
    unsigned m = 0;                                                                      \
    for (int i = 0; i < RUN; i++) m |= (unsigned)(expr) << i;                            \
    return m;                                                                            \
  }
SCALAR_MASK(mask_eq, c[i] == v)
SCALAR_MASK(mask_gt, c[i] > v)
SCALAR_MASK(mask_lt, c[i] < v)
#endif
static inline unsigned mask_ge(const int32_t *c, int32_t v) { return mask_lt(c, v) ^ 0xffu; }
static inline unsigned mask_le(const int32_t *c, int32_t v) { return mask_gt(c, v) ^ 0xffu; }

static inline int32_t evaluate_inline(store_t *st, uint32_t op, int32_t s, uint32_t p, int32_t o, int32_t k) {
  if (op - 1u >= (uint32_t)MAX_OP) { st->park[PARK_UNSUPPORTED_OP]++; return PARK_UNSUPPORTED_OP << REASON_SHIFT; }
  if (p >= st->runs) { st->park[PARK_CAPACITY]++; return PARK_CAPACITY << REASON_SHIFT; }
  uint32_t len = (uint32_t)st->len[p];
  if (len > RUN) { st->park[PARK_RUN_TOO_LONG]++; return PARK_RUN_TOO_LONG << REASON_SHIFT; }
  const int32_t *S = st->S + p * RUN, *O = st->O + p * RUN, *D = st->D + p * RUN;
  unsigned lm = (1u << len) - 1u, ms;
  int32_t r;
  switch (op) {
    case ASK_SP: r = (mask_eq(S, s) & lm) != 0; break;
    case ASK_SPO: r = (mask_eq(S, s) & mask_eq(O, o) & lm) != 0; break;
    case ASK_OP: r = (mask_eq(O, o) & lm) != 0; break;
    case COUNT_SP_GE: r = __builtin_popcount(mask_eq(S, s) & lm) >= k; break;
    case COUNT_SP_LE: r = __builtin_popcount(mask_eq(S, s) & lm) <= k; break;
    case COUNT_SP_EQ: r = __builtin_popcount(mask_eq(S, s) & lm) == k; break;
    case COUNT_OP_GE: r = __builtin_popcount(mask_eq(O, o) & lm) >= k; break;
    case COUNT_OP_LE: r = __builtin_popcount(mask_eq(O, o) & lm) <= k; break;
    case COUNT_OP_EQ: r = __builtin_popcount(mask_eq(O, o) & lm) == k; break;
    case UNIQUE_SP: r = __builtin_popcount(mask_eq(S, s) & lm) == 1; break;
    case COMPARE_O_EQ: r = (mask_eq(O, o) & lm) != 0; break;
    case COMPARE_O_GT: r = (mask_gt(O, o) & lm) != 0; break;
    case COMPARE_O_LT: r = (mask_lt(O, o) & lm) != 0; break;
    case COMPARE_O_GE: r = (mask_ge(O, o) & lm) != 0; break;
    case COMPARE_O_LE: r = (mask_le(O, o) & lm) != 0; break;
    default: /* VALIDATE_DATATYPE_SP, datatype in o */
      ms = mask_eq(S, s) & lm;
      r = ms != 0 && (ms & ~mask_eq(D, o)) == 0;
      break;
  }
  return r | (int32_t)(len << TICKS_SHIFT);
}

/* Batch: records ops[0..n) -> out[0..n); returns the number parked. */
__attribute__((noinline)) static int evaluate_batch(store_t *st, const int32_t *ops, int32_t *out, int n) {
  int parked = 0;
  for (int i = 0; i < n; i++, ops += 4) {
    int32_t code = evaluate_inline(st, (uint32_t)ops[0] & 0xff, ops[1], (uint32_t)ops[2], ops[3], ops[0] >> 8);
    parked += (code >> REASON_SHIFT) != 0;
    out[i] = code;
  }
  return parked;
}

/* Single operation: one real call per operation, like the kernel's public evaluate(). */
__attribute__((noinline)) int32_t evaluate_one(store_t *st, uint32_t op, int32_t s, uint32_t p, int32_t o, int32_t k) {
  return evaluate_inline(st, op, s, p, o, k);
}

static uint32_t rng;
static uint32_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Same generator as bench/hotpath.ts: full runs of 8 rows, few distinct values so answers vary. */
static void fill_store(store_t *st) {
  for (uint32_t p = 0; p < st->runs; p++) {
    st->len[p] = RUN;
    for (int i = 0; i < RUN; i++) {
      uint32_t row = p * RUN + i;
      st->S[row] = 1 + (int32_t)(next() % 8);
      st->P[row] = (int32_t)p;
      st->O[row] = (int32_t)(next() % 32) - 8;
      st->D[row] = 1 + (int32_t)(next() % 2);
    }
  }
}

static void fill_ops(int32_t *ops, int n, uint32_t op, uint32_t runs) {
  for (int i = 0; i < n; i++) {
    int32_t s = 1 + (int32_t)(next() % 8);
    int32_t p = (int32_t)(next() % runs);
    int32_t o = (int32_t)(next() % 32) - 8;
    int32_t k = (int32_t)(next() % 4);
    ops[i * 4] = (int32_t)op | (k << 8);
    ops[i * 4 + 1] = s;
    ops[i * 4 + 2] = p;
    ops[i * 4 + 3] = o;
  }
}

static double run_batch(store_t *st, const int32_t *ops, int32_t *out, int batch, int batches, volatile int32_t *sink) {
  double t0 = now_ns();
  int parked = 0;
  for (int b = 0; b < batches; b++) parked += evaluate_batch(st, ops, out, batch);
  double t1 = now_ns();
  *sink += parked + out[batch - 1];
  return (t1 - t0) / ((double)batch * batches);
}

static double run_single(store_t *st, const int32_t *ops, int batch, int batches, volatile int32_t *sink) {
  double t0 = now_ns();
  int32_t acc = 0;
  for (int b = 0; b < batches; b++) {
    const int32_t *rec = ops;
    for (int i = 0; i < batch; i++, rec += 4) {
      acc += evaluate_one(st, (uint32_t)rec[0] & 0xff, rec[1], (uint32_t)rec[2], rec[3], rec[0] >> 8);
    }
  }
  double t1 = now_ns();
  *sink += acc;
  return (t1 - t0) / ((double)batch * batches);
}

#define MEASURED 4

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <runs> <batch> <seed>\n", argv[0]);
    return 2;
  }
  store_t st = {0};
  st.runs = (uint32_t)atoi(argv[1]);
  int batch = atoi(argv[2]);
  rng = (uint32_t)strtoul(argv[3], NULL, 10);
  if (st.runs == 0 || batch <= 0 || rng == 0) {
    fprintf(stderr, "runs, batch and seed must be positive\n");
    return 2;
  }
  size_t rows = (size_t)st.runs * RUN;
  st.len = aligned_alloc(64, ((st.runs * 4 + 63) / 64) * 64);
  st.S = aligned_alloc(64, rows * 4); st.P = aligned_alloc(64, rows * 4);
  st.O = aligned_alloc(64, rows * 4); st.D = aligned_alloc(64, rows * 4);
  int32_t *out = aligned_alloc(64, (size_t)batch * 4);
  fill_store(&st);

  static const uint32_t measured[MEASURED] = {ASK_SP, ASK_SPO, COUNT_SP_GE, COMPARE_O_EQ};
  static const char *names[MEASURED] = {"ASK_SP", "ASK_SPO", "COUNT_SP_GE", "COMPARE_O_EQ"};
  int32_t *ops[MEASURED];
  printf("{\"checksums\":{");
  for (int m = 0; m < MEASURED; m++) {
    ops[m] = aligned_alloc(64, (size_t)batch * 16);
    fill_ops(ops[m], batch, measured[m], st.runs);
    evaluate_batch(&st, ops[m], out, batch);
    uint32_t checksum = 0;
    for (int i = 0; i < batch; i++) checksum = checksum * 31u + (uint32_t)out[i];
    printf("%s\"%s\":%u", m ? "," : "", names[m], checksum);
  }
  printf("}}\n");
  fflush(stdout);

  volatile int32_t sink = 0;
  char line[128];
  while (fgets(line, sizeof line, stdin) != NULL && line[0] != 'q') {
    int m, batches;
    char mode;
    if (sscanf(line, "%d %c %d", &m, &mode, &batches) != 3 || m < 0 || m >= MEASURED || batches <= 0 ||
        (mode != 'b' && mode != 's')) {
      fprintf(stderr, "bad request: %s", line);
      return 2;
    }
    double ns = mode == 'b' ? run_batch(&st, ops[m], out, batch, batches, &sink)
                            : run_single(&st, ops[m], batch, batches, &sink);
    printf("%.4f\n", ns);
    fflush(stdout);
  }
  return sink == 42 ? 0 : 0; /* sink keeps the results observable */
}

/**
 * Assembles kernel-wat.ts with wabt and compiles it, once per process (the promise is shared).
 * Takes ~50 ms the first time; every kernel instance reuses the compiled module.
 */
import initWabt from "wabt";
import { kernelWat } from "./kernel-wat";
import { wasmApi, WasmModuleHandle } from "./wasm-api";

let compiled: Promise<WasmModuleHandle> | undefined;

async function assemble(): Promise<WasmModuleHandle> {
  const wabt = await initWabt();
  const parsed = wabt.parseWat("hotpath-kernel.wat", kernelWat(), { simd: true });
  try {
    parsed.resolveNames();
    parsed.validate();
    const { buffer } = parsed.toBinary({});
    return await wasmApi.compile(buffer);
  } finally {
    parsed.destroy();
  }
}

export function kernelModule(): Promise<WasmModuleHandle> {
  if (!compiled) {
    const attempt = assemble();
    compiled = attempt;
    attempt.catch(() => {
      if (compiled === attempt) compiled = undefined; // a failed assembly may be retried
    });
  }
  return compiled;
}

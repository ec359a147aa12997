/**
 * The slice of the WebAssembly JS API the kernel uses. The project compiles without the DOM lib
 * (which is where TypeScript declares `WebAssembly`), so it is typed here instead of globally.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

export type WasmModuleHandle = { readonly __wasmModule: unique symbol };

interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModuleHandle>;
  instantiate(module: WasmModuleHandle, imports: Record<string, Record<string, unknown>>): Promise<WasmInstance>;
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
  Global: new (descriptor: { value: "i32"; mutable?: boolean }, value: number) => unknown;
}

export const wasmApi: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Jest runs every suite under test/; ts-jest transpiles only (types are checked by `npm run typecheck`). */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  transform: {
    "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.jest.json", diagnostics: false }],
    // jose ships ESM only; jest's CommonJS runtime needs it transpiled (Node itself loads it natively).
    "node_modules/jose/.+\\.js$": ["ts-jest", { tsconfig: "tsconfig.jest.json", diagnostics: false }],
  },
  transformIgnorePatterns: ["/node_modules/(?!jose/)"],
  // Every process a suite starts goes through test/support/processes.ts; the run fails if one outlives it.
  globalSetup: "<rootDir>/test/support/global-setup.ts",
  globalTeardown: "<rootDir>/test/support/global-teardown.ts",
  testTimeout: 60000,
  maxWorkers: 2,
};

/**
 * Pulumi entry point (`main` in Pulumi.yaml). The program itself lives in `program.ts` so that
 * the offline renderer (`npm run render`) evaluates exactly the same code under mocks.
 */
import { knhkProgram } from "./program";

export = async () => knhkProgram();

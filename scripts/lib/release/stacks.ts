/**
 * The stacks the workflows apply (.github/workflows/deploy.yml, one pulumi-up.yml job each, in
 * this order). Their stack file on main is what runs: a release changes it through a commit, never
 * with `pulumi config set`. Other stacks (the local cluster) may be deployed from a work tree.
 */
export const APPLIED_BY_WORKFLOW = ["dev", "staging", "prod"] as const;

export const appliedByWorkflow = (stack: string): boolean => (APPLIED_BY_WORKFLOW as readonly string[]).includes(stack);

/** The branch the apply workflow deploys from. */
export const RELEASE_BASE_BRANCH = "main";

// Types of scripts/node22.mjs for TypeScript callers (test/helpers/conformance.ts and tests).
export function node22Tools(): { node: string; conformance: string; inspector: string };
export function installNode22Tools(): void;

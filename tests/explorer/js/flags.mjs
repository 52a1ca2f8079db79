// Run the page's arithmetic checks over a file of forms: node flags.mjs CASES.json
// CASES.json: [{ballot, body}]; prints {checks: the page's list of checks,
// answers: [{flags} | {error}] in the same order}.
// tests/explorer/test_js_arithmetic.py writes the cases and compares the
// answers with the Python verifier's tally_flags.

import { readFileSync } from "node:fs";

import { TALLY_CHECKS, tallyFlags } from "../../../explorer/static/js/verify/arithmetic.js";

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const answers = cases.map(({ ballot, body }) => {
  try {
    return { flags: tallyFlags(body, ballot) };
  } catch (e) {
    return { error: e.name };
  }
});
process.stdout.write(JSON.stringify({ checks: TALLY_CHECKS, answers }));

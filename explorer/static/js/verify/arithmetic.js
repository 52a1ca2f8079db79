// The arithmetic of a count form, recomputed in the browser: the twin of
// verifier/rules/arithmetic.py's tally_flags (same checks, same slugs, same
// places and details), so the page shows the flags of a form it has proven
// without taking the server's word for them. A form is evidence as written:
// a broken rule is a flag, never a refusal.
//
// Checks (each only when the form carries the numbers it needs):
//   votes-sum, valid-invalid-total, total-voters, voter-lists, male-female,
//   registered-over-limit, dpt-voters-over-registered, voters-over-registered,
//   ballot-papers.

import { MalformedInput } from "./errors.js";

export const PARTY_BALLOTS = new Set(["pdpr", "pdprdp", "pdprdk"]);
export const TALLY_CHECKS = [
  "votes-sum",
  "valid-invalid-total",
  "total-voters",
  "voter-lists",
  "male-female",
  "registered-over-limit",
  "dpt-voters-over-registered",
  "voters-over-registered",
  "ballot-papers",
];
export const DEFAULT_RULES = Object.freeze({ maxRegistered: 300, marginRatio: 0.02 });

function count(value, where) {
  if (!Number.isSafeInteger(value) || value < 0) throw new MalformedInput(`${where}: expected a count`);
  return value;
}

function map(value, where) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new MalformedInput(`${where}: expected an object`);
  }
  return value;
}

function sumOf(values, where) {
  return Object.entries(map(values, where)).reduce((a, [k, v]) => a + count(v, `${where}.${k}`), 0);
}

function votesSum(body, ballot) {
  if (PARTY_BALLOTS.has(ballot)) {
    if (!("parties" in body)) return null;
    return Object.entries(map(body.parties, "parties")).reduce((a, [id, p]) => {
      const party = map(p, `parties.${id}`);
      return a + count(party.party, `parties.${id}.party`) + sumOf(party.candidates, `parties.${id}.candidates`);
    }, 0);
  }
  return "votes" in body ? sumOf(body.votes, "votes") : null;
}

function group(value, where) {
  const g = map(value, where);
  return { male: count(g.male, `${where}.male`), female: count(g.female, `${where}.female`), total: count(g.total, `${where}.total`) };
}

/**
 * Every arithmetic rule ``body`` (a results.tally/v1 body of ``ballot``)
 * breaks, as [{check, where, detail}] in the Python verifier's order.
 * Throws MalformedInput when a number it needs is missing or not a count.
 */
export function tallyFlags(body, ballot, rules = DEFAULT_RULES) {
  map(body, "body");
  const flags = [];
  const flag = (check, where, detail) => flags.push({ check, where, detail });
  const valid = count(body.valid, "valid");
  const invalid = count(body.invalid, "invalid");
  const total = count(body.total, "total");
  const summed = votesSum(body, ballot);
  if (summed !== null && summed !== valid) flag("votes-sum", "votes", `candidate votes add up to ${summed}, valid ${valid}`);
  if (valid + invalid !== total) {
    flag("valid-invalid-total", "total", `valid ${valid} + invalid ${invalid} = ${valid + invalid}, total ${total}`);
  }
  const hasVoters = "voters" in body && body.voters !== null;
  const hasRegistered = "registered" in body && body.registered !== null;
  const groups = [];
  let registered = null;
  let voters = null;
  if (hasRegistered) {
    registered = { dpt: group(map(body.registered, "registered").dpt, "registered.dpt") };
    groups.push(["registered.dpt", registered.dpt]);
  }
  if (hasVoters) {
    const raw = map(body.voters, "voters");
    voters = {};
    for (const name of ["dpt", "dptb", "dpk", "total"]) {
      voters[name] = group(raw[name], `voters.${name}`);
      groups.push([`voters.${name}`, voters[name]]);
    }
    const voted = voters.total.total;
    if (total !== voted) flag("total-voters", "total", `total votes ${total}, voters ${voted}`);
    const lists = voters.dpt.total + voters.dptb.total + voters.dpk.total;
    if (lists !== voted) flag("voter-lists", "voters", `DPT + DPTb + DPK voters = ${lists}, all voters ${voted}`);
  }
  for (const [where, g] of groups) {
    if (g.male + g.female !== g.total) {
      flag("male-female", where, `male ${g.male} + female ${g.female} = ${g.male + g.female}, total ${g.total}`);
    }
  }
  if (registered !== null) {
    const dpt = registered.dpt.total;
    if (dpt > rules.maxRegistered) {
      flag("registered-over-limit", "registered.dpt", `${dpt} registered, a station has at most ${rules.maxRegistered}`);
    }
    if (voters !== null) {
      if (voters.dpt.total > dpt) flag("dpt-voters-over-registered", "voters.dpt", `${voters.dpt.total} DPT voters, ${dpt} registered`);
      const allowed = dpt + Math.ceil(dpt * rules.marginRatio);
      if (voters.total.total > allowed) {
        flag("voters-over-registered", "voters.total", `${voters.total.total} voters, ${dpt} registered (+${allowed - dpt} for additional lists)`);
      }
    }
  }
  if ("ballots" in body && body.ballots !== null) {
    const b = map(body.ballots, "ballots");
    const used = count(b.used, "ballots.used");
    const unused = count(b.unused, "ballots.unused");
    const damaged = "damaged" in b ? count(b.damaged, "ballots.damaged") : 0;
    const received = count(b.received, "ballots.received");
    if (used !== total || received !== used + unused + damaged) {
      flag("ballot-papers", "ballots", `received ${received}, used ${used}, unused ${unused}, damaged ${damaged}; total votes ${total}`);
    }
  }
  return flags;
}

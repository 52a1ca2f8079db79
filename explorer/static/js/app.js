// The results explorer: routes, views and the verified state. Everything the
// log says is put on the page as text (never as markup) and isolated for
// bidirectional text; every record shown is proven in this browser (trust.js).

import { language, number, percent, setLanguage, t } from "./i18n.js";
import { Trust, TrustFailure } from "./trust.js";
import { fromBase64, toHex } from "./verify/bytes.js";
import { TALLY_CHECKS, tallyFlags } from "./verify/arithmetic.js";
import { verifyEnvelopeSignature } from "./verify/dsse.js";
import { sha256 } from "./verify/merkle.js";

const BALLOTS = ["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"];
const LEVEL_OF = { 0: "national", 2: "province", 4: "regency", 6: "district", 10: "village", 13: "station" };
const PARALLEL = 6;

// ---- the page's building blocks -------------------------------------------

/** A User Timing mark of this view (``saksi:<what>:<view number>``), for the benchmarks. */
function mark(what) {
  performance.mark(`saksi:${what}:${state.render}`);
}

/** An element; strings among ``children`` become text nodes, never markup. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Text from the log: isolated, so that a right-to-left trick cannot reorder the page. */
function data(value) {
  return h("bdi", {}, String(value));
}

async function get(path) {
  const url = path.startsWith("/") ? path : new URL(path, document.baseURI).pathname;
  let response;
  try {
    response = await fetch(url, { cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw new ReadError(e.message);
  }
  if (!response.ok) {
    let detail = `${response.status}`;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      /* not problem+json */
    }
    throw new ReadError(detail, response.status);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function getJson(path) {
  const text = new TextDecoder().decode(await get(path));
  try {
    return JSON.parse(text);
  } catch {
    throw new ReadError(`the answer to ${path} is not JSON`);
  }
}

class ReadError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

/** Run ``work`` over ``items``, at most ``PARALLEL`` at once. */
async function each(items, work) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL, queue.length) }, async () => {
      while (queue.length) await work(queue.shift());
    }),
  );
}

// ---- what a record contributes (verifier/rules/arithmetic.py totals_of) ----

function totalsOf(body) {
  const source = body.totals ?? body;
  const out = { valid: source.valid, invalid: source.invalid, total: source.total };
  if (source.votes) out.votes = { ...source.votes };
  if (source.parties) {
    out.parties = Object.fromEntries(
      Object.entries(source.parties).map(([pid, p]) => [pid, { party: p.party, candidates: { ...p.candidates } }]),
    );
  }
  return out;
}

function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Rows (id, votes) of totals: candidates, or parties with their whole vote. */
function contestants(totals) {
  if (totals.votes) return Object.entries(totals.votes).map(([id, n]) => ({ id, votes: n }));
  return Object.entries(totals.parties ?? {}).map(([id, p]) => ({
    id,
    party: true,
    votes: p.party + Object.values(p.candidates ?? {}).reduce((a, b) => a + b, 0),
  }));
}

// ---- state -----------------------------------------------------------------

const state = {
  trust: null,
  failure: null,
  pending: 0,
  names: new Map(), // candidate id -> name (from proven records)
  partyNames: new Map(), // party id -> name (from the proven parties record)
  grants: new Map(), // key id -> its proven grant (a promise, each read once)
  regionNames: new Map(), // region code -> name (from proven registry records)
  read: new Set(), // the name lists already read in this visit (firstRead)
  render: 0,
};

/** The regions above ``code`` whose names the breadcrumb shows. */
function ancestors(code) {
  return [2, 4, 6, 10].filter((n) => code.length > n).map((n) => code.slice(0, n));
}

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const ballot = BALLOTS.includes(parts[0]) ? parts[0] : "ppwp";
  if (parts[1] === "corrections") return { view: "corrections", ballot, region: parts[2] ?? "national" };
  const region = parts[1] && /^(national|\d{2}|\d{4}|\d{6}|\d{10}|\d{13})$/.test(parts[1]) ? parts[1] : "national";
  return { view: region.length === 13 ? "station" : "region", ballot, region };
}

function link(ballot, region, label, extra = {}) {
  return h("a", { href: `#/${ballot}/${region}`, ...extra }, label);
}

function levelName(code) {
  return t(`levels.${LEVEL_OF[code === "national" ? 0 : code.length]}`);
}

function regionLabel(code) {
  if (code === "national") return "Indonesia";
  const name = state.regionNames.get(code);
  return name ? `${name} (${code})` : code;
}

// ---- the verified state ----------------------------------------------------

function fail(error) {
  if (error instanceof ReadError) return showError(t("readError", { detail: error.message }));
  if (!(error instanceof TrustFailure)) {
    // Anything else the server's bytes caused fails closed: never "verified".
    error = new TrustFailure("malformed", String(error?.message ?? error), { trust: state.trust?.trust });
  }
  if (state.failure) return;
  state.failure = error;
  showStatus();
}

function showStatus() {
  const box = document.getElementById("trust");
  box.replaceChildren();
  box.className = "trust";
  if (state.failure) {
    const f = state.failure;
    box.classList.add("trust-failed");
    const blob = new Blob([JSON.stringify(f.evidence, null, 2)], { type: "application/json" });
    box.append(
      h("p", { class: "trust-head" }, h("span", { "aria-hidden": "true" }, "✗ "), t("failed")),
      h("p", {}, f.kind === "unsupported" ? t("unsupported") : t(`failure.${f.kind}`)),
      h("p", {}, t("failedDetail")),
      h("p", { class: "mono" }, data(f.message)),
      h("a", { class: "button", href: URL.createObjectURL(blob), download: `saksi-evidence-${Date.now()}.json`, id: "evidence" }, t("evidence")),
    );
    return;
  }
  const current = state.trust?.current;
  if (!current || state.pending > 0) {
    box.classList.add("trust-checking");
    box.append(h("p", { class: "trust-head" }, t("checking")));
    return;
  }
  box.classList.add("trust-verified");
  box.append(
    h("p", { class: "trust-head" }, h("span", { "aria-hidden": "true" }, "✓ "), t("verified")),
    h(
      "p",
      {},
      state.trust.policy.witnesses.length
        ? t("verifiedDetail", { cosigned: current.cosigned.size, witnesses: state.trust.policy.witnesses.length })
        : t("verifiedDetailNoWitness"),
    ),
    h("p", { class: "mono small" }, t("checkpoint", { size: number(current.checkpoint.size), signer: state.trust.origin })),
  );
}

const TALLY = "results.tally/v1";
const provenBy = new WeakMap(); // a proven entry -> the evidence of its proof

/** The arithmetic flags of a proven tally record (its ballot from its subject); null when unreadable. */
function flagsOf(record) {
  try {
    return tallyFlags(record.body, record.subject.split("/")[1]);
  } catch {
    return null;
  }
}

/** Prove entry ``index`` and check that ``expect`` is what it says; marks ``cell``. */
async function proven(index, expect, cell) {
  state.pending += 1;
  showStatus();
  try {
    const { entry, evidence } = await state.trust.prove(index);
    const record = entry.record;
    const wrong = [];
    if (expect.subject && record.subject !== expect.subject) wrong.push("subject");
    if (expect.revision !== undefined && record.revision !== expect.revision) wrong.push("revision");
    if (expect.payload_hash && entry.payloadHash !== expect.payload_hash) wrong.push("payload hash");
    if (expect.totals && canonical(totalsOf(record.body)) !== canonical(expect.totals)) wrong.push("totals");
    if ("reason" in expect && (record.reason ?? null) !== (expect.reason ?? null)) wrong.push("reason");
    if ("correction" in expect && canonical(record.body.correction ?? null) !== canonical(expect.correction ?? null)) {
      wrong.push("correction");
    }
    // A form's flags are its own arithmetic: recomputed here, not taken from the server.
    if ("flags" in expect && record.schema === TALLY && canonical(flagsOf(record)) !== canonical(expect.flags)) {
      wrong.push("arithmetic flags");
    }
    if (wrong.length) {
      throw new TrustFailure("mismatch", `entry ${index}: the server's ${wrong.join(", ")} differ from the signed record`, {
        ...evidence,
        shown: expect,
        signed: { subject: record.subject, revision: record.revision, payload_hash: entry.payloadHash, body: record.body },
      });
    }
    if (cell) cell.replaceChildren(h("span", { class: "ok" }, "✓ ", t("proofOk")));
    provenBy.set(entry, evidence);
    return entry;
  } catch (e) {
    if (cell) cell.replaceChildren(h("span", { class: "bad" }, "✗ ", t("proofFailed")));
    // A proof the server cannot send is a number this page cannot vouch for.
    fail(e instanceof ReadError ? new TrustFailure("unavailable", e.message, { trust: state.trust.trust, index }) : e);
    return null;
  } finally {
    state.pending -= 1;
    showStatus();
  }
}

function proofCell(code) {
  return h("td", { class: "proof", "data-proof": code }, h("span", { class: "pending" }, t("proofPending")));
}

// ---- names, proven like everything else --------------------------------------

/** The revisions the log lists under ``subject`` (none when it has none). */
async function revisionsOf(subject) {
  try {
    return (await getJson(`/v1/subjects/${subject}`)).revisions ?? [];
  } catch (e) {
    if (e instanceof ReadError && e.status === 404) return [];
    throw e;
  }
}

/** The latest revision of ``subject``, proven; null when it has none. */
async function latestOf(subject) {
  const revisions = await revisionsOf(subject);
  const last = revisions[revisions.length - 1];
  return last ? proven(last.index, { subject }) : null;
}

/** True the first time ``what`` is asked for in this visit: each name list is read once. */
function firstRead(what) {
  if (state.read.has(what)) return false;
  state.read.add(what);
  return true;
}

async function loadCandidateNames(ballot) {
  if (["pdpr", "pdprdp", "pdprdk"].includes(ballot)) {
    if (!firstRead("parties")) return;
    const entry = await latestOf("parties/national");
    for (const [id, spec] of Object.entries(entry?.record.body.parties ?? {})) {
      if (spec && typeof spec.name === "string") state.partyNames.set(id, spec.name);
    }
    return;
  }
  if (!firstRead(`candidates:${ballot}`)) return;
  const entry = await latestOf(`candidates/${ballot}/national`);
  for (const [id, spec] of Object.entries(entry?.record.body.candidates ?? {})) {
    if (spec && typeof spec.name === "string") state.names.set(id, spec.name);
  }
}

/** The names in a proven region registry record (its province, regency, district, villages). */
function takeNames(entry) {
  const body = entry?.record.body;
  const district = entry?.record.subject.split("/")[1];
  if (!body || !district) return;
  const put = (code, name) => typeof code === "string" && typeof name === "string" && state.regionNames.set(code, name);
  put(body.province?.code, body.province?.name);
  put(body.regency?.code, body.regency?.name);
  put(district, body.district?.name);
  for (const [code, village] of Object.entries(body.villages ?? {})) put(code, village?.name);
}

/** The names of ``region`` and its children, from the registry records the log points to. */
async function loadNames(region) {
  if (!firstRead(`names:${region}`)) return;
  const answer = await getJson(`/v1/regions/${region}/names`);
  const records = new Map(answer.names.map((n) => [n.index, n.subject]));
  await each([...records], async ([index, subject]) => takeNames(await proven(index, { subject })));
}

// ---- views -------------------------------------------------------------------

function crumbs(ballot, region) {
  const nav = document.getElementById("crumbs");
  const codes = ["national"];
  for (const n of [2, 4, 6, 10, 13]) if (region !== "national" && region.length >= n) codes.push(region.slice(0, n));
  nav.replaceChildren(
    h(
      "ol",
      {},
      codes.map((code, i) =>
        h(
          "li",
          {},
          i === codes.length - 1
            ? h("span", { "aria-current": "page" }, `${levelName(code)}: `, data(regionLabel(code)))
            : link(ballot, code, [`${levelName(code)}: `, data(regionLabel(code))]),
        ),
      ),
    ),
  );
}

function ballotPicker(ballot, region) {
  return h(
    "label",
    { class: "ballot" },
    `${t("ballot")}: `,
    h(
      "select",
      {
        id: "ballot",
        onchange: (e) => {
          location.hash = `#/${e.target.value}/${region}`;
        },
      },
      BALLOTS.map((b) => h("option", { value: b, selected: b === ballot }, t(`ballots.${b}`))),
    ),
  );
}

function totalsTable(totals, caption) {
  const rows = contestants(totals).sort((a, b) => b.votes - a.votes);
  // Shares of the votes the participants got, as the commission shows them: a
  // misread "valid" total (flagged by the arithmetic checks) never makes a
  // share over 100%.
  const counted = rows.reduce((a, row) => a + row.votes, 0);
  return h(
    "table",
    { class: "totals" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("candidate")), h("th", { scope: "col" }, t("votes")), h("th", { scope: "col" }, t("share")))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, data((row.party ? state.partyNames : state.names).get(row.id) ?? row.id)),
          h("td", { class: "num" }, number(row.votes)),
          h(
            "td",
            { class: "share" },
            h("span", { class: "bar", "aria-hidden": "true" }, h("span", { class: "fill", "data-share": (counted ? row.votes / counted : 0).toFixed(4) })),
            percent(row.votes, counted),
          ),
        ),
      ),
    ),
    h(
      "tfoot",
      {},
      h("tr", {}, h("th", { scope: "row" }, t("valid")), h("td", { class: "num" }, number(totals.valid)), h("td")),
      h("tr", {}, h("th", { scope: "row" }, t("invalid")), h("td", { class: "num" }, number(totals.invalid)), h("td")),
      h("tr", {}, h("th", { scope: "row" }, t("total")), h("td", { class: "num" }, number(totals.total)), h("td")),
    ),
  );
}

// CSP allows no inline style: bar widths are set through the CSSOM.
function sizeBars(root) {
  for (const fill of root.querySelectorAll(".fill[data-share]")) {
    fill.style.width = `${Math.max(0, Math.min(1, Number(fill.dataset.share))) * 100}%`;
  }
}

async function regionView(main, ballot, region, render) {
  const view = await getJson(`/v1/results/${ballot}/${region}`);
  if (render !== state.render) return;
  const code = region === "national" ? "" : region;
  await Promise.all([loadCandidateNames(ballot), loadNames(region), ...ancestors(code).map(loadNames)]);
  if (render !== state.render) return;
  crumbs(ballot, region);
  const recap = view.recap;
  const recapCell = h("span", {}, h("span", { class: "pending" }, t("proofPending")));
  const recapProof = h("p", { class: "proof-line" }, `${t("proof")}: `, recapCell);
  const recapSigners = h("p", { class: "small" });
  const c = view.completeness;
  main.replaceChildren(
    h("h2", { tabindex: "-1", id: "heading" }, `${levelName(region)}: `, data(regionLabel(region))),
    ballotPicker(ballot, region),
    recap
      ? h(
          "section",
          { class: "card", "aria-labelledby": "totals-caption" },
          totalsTable(recap.totals, h("span", { id: "totals-caption" }, `${t("totals")} · ${t(`ballots.${ballot}`)}`)),
          recap.stale ? h("p", { class: "warn", role: "note" }, t("stale")) : null,
          h("p", { class: "small" }, `${t("record")}: `, data(recap.subject), ` · ${t("revision")} ${recap.revision} · ${t("loggedAt")} `, data(recap.logged_at)),
          recapProof,
          recapSigners,
        )
      : h("p", { class: "card" }, t("noRecap")),
    h(
      "section",
      { class: "card" },
      h("h3", {}, t("completeness")),
      h(
        "dl",
        { class: "facts" },
        [["listed", c.listed], ["present", c.present], ["missing", c.missing], ["flagged", c.flagged]].map(([k, v]) =>
          h("div", {}, h("dt", {}, t(k)), h("dd", {}, number(v))),
        ),
      ),
      h("p", { class: "small" }, t("completenessNote")),
      h("p", {}, link(ballot, `corrections/${region}`, t("showCorrections"))),
    ),
    childrenTable(ballot, view),
    h("p", { class: "small" }, t("flagsNote")),
  );
  sizeBars(main);
  focusHeading();
  mark("rendered");
  const work = [];
  if (recap) {
    work.push(async () => fillSigners(recapSigners, await proven(recap.index, recap, recapCell)));
  }
  // Cells by the child they prove (a code is the server's text: never a selector).
  const cells = new Map([...main.querySelectorAll("td[data-proof]")].map((td) => [td.dataset.proof, td]));
  for (const child of view.children) {
    if (child.status !== "present") continue;
    const shown = { ...child, flags: Array.isArray(child.flags) ? child.flags : [] };
    work.push(() => proven(child.index, shown, cells.get(String(child.code)) ?? null));
  }
  await each(work, (task) => task());
}

function childrenTable(ballot, view) {
  return h(
    "section",
    { class: "card" },
    h(
      "table",
      { class: "children" },
      h("caption", {}, t("children")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("name")),
          h("th", { scope: "col" }, t("status")),
          h("th", { scope: "col", class: "num" }, t("valid")),
          h("th", { scope: "col" }, t("flags")),
          h("th", { scope: "col" }, t("proof")),
        ),
      ),
      h(
        "tbody",
        {},
        view.children.map((child) => {
          const present = child.status === "present";
          return h(
            "tr",
            {},
            h("th", { scope: "row" }, link(ballot, child.code, data(regionLabel(child.code)))),
            h("td", {}, present ? t("statusPresent") : h("span", { class: "warn" }, t("statusMissing"))),
            h("td", { class: "num" }, present ? number(child.totals.valid) : "–"),
            h("td", {}, (Array.isArray(child.flags) ? child.flags : []).map((f) => h("span", { class: "flag" }, checkName(f?.check)))),
            present ? proofCell(child.code) : h("td", {}, "–"),
          );
        }),
      ),
    ),
  );
}

async function stationView(main, ballot, station, render) {
  let answer;
  try {
    answer = await getJson(`/v1/subjects/results/${ballot}/${station}`);
  } catch (e) {
    if (e instanceof ReadError && e.status === 404) {
      main.replaceChildren(h("h2", { tabindex: "-1", id: "heading" }, `${levelName(station)}: `, data(station)), h("p", {}, t("notFound")));
      crumbs(ballot, station);
      focusHeading();
      return;
    }
    throw e;
  }
  await Promise.all([loadCandidateNames(ballot), ...ancestors(station).map(loadNames)]);
  if (render !== state.render) return;
  crumbs(ballot, station);
  const revisions = answer.revisions;
  const entries = new Array(revisions.length);
  await each(
    revisions.map((r, i) => i),
    async (i) => {
      const r = revisions[i];
      entries[i] = await proven(r.index, { subject: r.record.subject, revision: r.record.revision, payload_hash: r.record.payload_hash }, null);
    },
  );
  if (render !== state.render || entries.some((e) => !e)) return;
  const latest = entries[entries.length - 1];
  const body = latest.record.body;
  const signers = await Promise.all(entries.map((entry) => signersOf(entry)));
  main.replaceChildren(
    h("h2", { tabindex: "-1", id: "heading" }, `${levelName(station)}: `, data(regionLabel(station))),
    ballotPicker(ballot, station),
    h(
      "section",
      { class: "card" },
      totalsTable(totalsOf(body), `${t("totals")} · ${t(`ballots.${ballot}`)}`),
      h("p", {}, `${t("stage")}: `, data(t(`stages.${body.stage}`))),
    ),
    arithmeticCard(latest.record),
    h(
      "section",
      { class: "card", "aria-labelledby": "prov" },
      h("h3", { id: "prov" }, t("provenance")),
      h("ol", { class: "revisions", reversed: true }, entries.map((entry, i) => revisionItem(entry, revisions[i], signers[i])).reverse()),
    ),
    formPages(body),
  );
  sizeBars(main);
  focusHeading();
  mark("rendered");
}

/**
 * Who signed ``entry``: for each signature, the key's grant as the log says it
 * (proven), and the signature itself checked under the granted public key.
 */
async function signersOf(entry) {
  return Promise.all(
    entry.signatures.map(async (s) => {
      const grant = await grantOf(s.keyid);
      if (grant) {
        try {
          await verifyEnvelopeSignature(entry.payloadType, entry.payload, s.keyid, s.sig, grant.publicKey);
        } catch (e) {
          fail(
            new TrustFailure("recordSignature", e.message, {
              ...provenBy.get(entry),
              keyid: s.keyid,
              record: entry.record.subject,
            }),
          );
        }
      }
      return { keyid: s.keyid, grant: grant?.body ?? null, revoked: grant?.revoked ?? false };
    }),
  );
}

/** "Signed by" and each signer: holder, role, scope, key ID (a grant proven, its signature checked). */
function signerNodes(signers) {
  return [
    `${t("signedBy")}: `,
    signers.map((s) =>
      h(
        "span",
        { class: "signer" },
        s.grant
          ? [data(s.grant.holder ?? ""), ` (${t("role")} `, data(s.grant.role ?? ""), `, ${t("scope")} `, data(s.grant.scope || "national"), ") "]
          : h("span", { class: "warn" }, t("unknownKey"), " "),
        s.revoked ? h("span", { class: "warn" }, t("revoked"), " ") : null,
        h("span", { class: "mono" }, `${t("keyId")} `, data(s.keyid.slice(0, 16)), "…"),
      ),
    ),
  ];
}

/** Put ``entry``'s checked signers into ``element``. */
async function fillSigners(element, entry) {
  if (!entry) return;
  element.replaceChildren(...signerNodes(await signersOf(entry)).flat(Infinity));
}

function grantOf(keyid) {
  if (!state.grants.has(keyid)) state.grants.set(keyid, readGrant(keyid));
  return state.grants.get(keyid);
}

async function readGrant(keyid) {
  const subject = `keys/${keyid}`;
  const entries = await Promise.all((await revisionsOf(subject)).map((r) => proven(r.index, { subject })));
  if (!entries.length || entries.some((e) => !e)) return null;
  const at = entries.map((e) => e.record.schema).lastIndexOf("keys.grant/v1");
  if (at < 0) return null;
  const body = entries[at].record.body;
  let publicKey;
  try {
    publicKey = fromBase64(String(body.public_key), "grant public_key");
  } catch {
    return null;
  }
  const revoked = entries.slice(at + 1).some((e) => e.record.schema === "keys.revoke/v1");
  return { body, publicKey, revoked };
}

function revisionItem(entry, meta, signers) {
  const r = entry.record;
  const correction = r.body.correction;
  return h(
    "li",
    { class: "revision" },
    h("p", {}, h("strong", {}, `${t("revision")} ${r.revision}`), " · ", data(t(`stages.${r.body.stage}`)), ` · ${t("loggedAt")} `, data(entry.loggedAt), " · ", h("span", { class: "ok" }, "✓ ", t("proofOk"))),
    r.reason ? h("p", {}, `${t("reason")}: `, data(r.reason)) : null,
    correction ? h("p", {}, `${t("reference")}: `, data(correction.reason_code), " · ", data(correction.reference ?? "")) : null,
    h("p", { class: "small" }, signerNodes(signers)),
    h("p", { class: "small mono" }, `${t("record")} #${meta.index} · SHA-256 `, data(entry.payloadHash)),
  );
}

/** A check's name in the page's language; a check the page does not know, as text. */
function checkName(check) {
  return CHECK_NAMES.includes(check) ? t(`checks.${check}`) : data(String(check ?? "?"));
}

const CHECK_NAMES = [...TALLY_CHECKS, "recap-sum"];

/** The latest form's arithmetic, checked here from the signed numbers. */
function arithmeticCard(record) {
  const flags = flagsOf(record);
  return h(
    "section",
    { class: "card", "aria-labelledby": "arith" },
    h("h3", { id: "arith" }, t("arithmetic")),
    h("p", { class: "small" }, t("arithmeticNote")),
    flags === null
      ? h("p", { class: "warn" }, t("arithmeticUnreadable"))
      : flags.length === 0
        ? h("p", { class: "ok" }, "✓ ", t("arithmeticPass"))
        : h(
            "ul",
            { class: "flags" },
            flags.map((f) => h("li", {}, h("span", { class: "flag" }, checkName(f.check)), " ", data(f.detail))),
          ),
  );
}

function formPages(body) {
  const pages = Array.isArray(body.form) ? body.form : [];
  if (!pages.length) return null;
  const result = h("p", { role: "status", "aria-live": "polite", id: "photo-result" });
  const input = h("input", {
    type: "file",
    id: "photo",
    accept: "image/*,application/pdf",
    onchange: async (e) => {
      const file = e.target.files?.[0];
      if (!file) return;
      const hash = toHex(await sha256(new Uint8Array(await file.arrayBuffer())));
      const page = pages.find((p) => p.sha256 === hash);
      result.textContent = page ? t("photoMatches", { page: page.page }) : t("photoDiffers", { hash });
      result.className = page ? "ok" : "bad";
    },
  });
  return h(
    "section",
    { class: "card" },
    h("h3", {}, t("formPages")),
    h(
      "ul",
      { class: "small" },
      pages.map((p) =>
        h(
          "li",
          {},
          `${p.page}: `,
          typeof p.sha256 === "string" ? h("span", { class: "mono" }, data(p.sha256)) : t("noHash"),
          typeof p.url === "string" ? h("span", { class: "mono source" }, " · ", data(p.url)) : null,
        ),
      ),
    ),
    pages.some((p) => typeof p.sha256 === "string")
      ? [h("label", { for: "photo" }, t("checkPhoto")), " ", input, result]
      : null,
  );
}

const FEED_PAGE = 50;

async function correctionsView(main, ballot, region, render) {
  const answer = await getJson(`/v1/results/${ballot}/${region}/corrections?latest=${FEED_PAGE}`);
  const code = region === "national" ? "" : region;
  await Promise.all([loadNames(region), ...ancestors(code).map(loadNames)]);
  if (render !== state.render) return;
  crumbs(ballot, region);
  const list = h("ol", { class: "corrections" });
  const more = h("p");
  main.replaceChildren(
    h("h2", { tabindex: "-1", id: "heading" }, t("correctionsOf", { region: regionLabel(region) })),
    ballotPicker(ballot, `corrections/${region}`),
    answer.corrections.length ? list : h("p", {}, t("noCorrections")),
    more,
  );
  focusHeading();
  mark("rendered");
  await feedPage(answer, list, more, ballot, region);
}

/** Show a page of the corrections feed and prove it; a button asks for the next one. */
async function feedPage(answer, list, more, ballot, region) {
  const cells = answer.corrections.map(() => h("span", { class: "pending" }, t("proofPending")));
  const signed = answer.corrections.map((c) =>
    h("p", { class: "small mono" }, `${t("signedBy")}: `, (c.signers ?? []).map((k) => data(`${k.slice(0, 16)}… `))),
  );
  list.append(...answer.corrections.map((c, i) => correctionItem(c, cells[i], signed[i])));
  more.replaceChildren();
  if (answer.next !== null && answer.next !== undefined) {
    more.append(
      h(
        "button",
        {
          type: "button",
          id: "older",
          onclick: async () => {
            more.replaceChildren(t("loading"));
            const page = await getJson(
              `/v1/results/${ballot}/${region}/corrections?latest=${FEED_PAGE}&before=${answer.next}`,
            );
            await feedPage(page, list, more, ballot, region);
          },
        },
        t("older"),
      ),
    );
  }
  await each(
    answer.corrections.map((c, i) => [c, i]),
    async ([c, i]) => {
      const entry = await proven(
        c.index,
        { subject: c.subject, revision: c.revision, payload_hash: c.payload_hash, totals: c.totals, reason: c.reason, correction: c.correction },
        cells[i],
      );
      await fillSigners(signed[i], entry);
    },
  );
}

function correctionItem(c, cell, signed) {
  return h(
    "li",
    { class: "card" },
    h("p", {}, h("strong", {}, data(c.subject)), ` · ${t("revision")} ${c.revision} · `, data(c.logged_at), " · ", cell),
    c.reason ? h("p", {}, `${t("reason")}: `, data(c.reason)) : null,
    c.correction ? h("p", {}, `${t("reference")}: `, data(c.correction.reason_code), " · ", data(c.correction.reference ?? "")) : null,
    !(c.changed ?? []).length ? h("p", {}, t("noChange")) : h(
      "table",
      { class: "changes" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("where")), h("th", { scope: "col" }, t("before")), h("th", { scope: "col" }, t("after")))),
      h("tbody", {}, (c.changed ?? []).map((d) => h("tr", {}, h("td", {}, data(d.where)), h("td", { class: "num" }, data(d.before)), h("td", { class: "num" }, data(d.after))))),
    ),
    signed,
  );
}

function focusHeading() {
  if (state.render > 1) document.getElementById("heading")?.focus();
}

function showError(message) {
  const main = document.getElementById("main");
  main.replaceChildren(h("h2", { tabindex: "-1", id: "heading" }, t("notFound")), h("p", { class: "bad", role: "alert" }, message));
}

async function show() {
  const render = ++state.render;
  mark("start");
  const main = document.getElementById("main");
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(h("p", {}, t("loading")));
  const where = route();
  try {
    if (!state.trust.current) await state.trust.refresh();
    if (where.view === "station") await stationView(main, where.ballot, where.region, render);
    else if (where.view === "corrections") await correctionsView(main, where.ballot, where.region, render);
    else await regionView(main, where.ballot, where.region, render);
  } catch (e) {
    if (e instanceof ReadError) showError(t("readError", { detail: e.message }));
    else {
      fail(e);
      if (main.getAttribute("aria-busy") === "true" && !main.querySelector("#heading")) {
        main.replaceChildren(h("p", { class: "bad" }, t("notShown")));
      }
    }
  } finally {
    main.setAttribute("aria-busy", "false");
    showStatus();
    if (render === state.render) mark(state.failure ? "failed" : "verified");
  }
}

function chrome() {
  document.title = t("title");
  document.getElementById("title").textContent = t("title");
  document.getElementById("skip").textContent = t("skip");
  const button = document.getElementById("language");
  button.textContent = t("language");
  button.setAttribute("aria-label", t("languageLabel"));
  document.getElementById("crumbs").setAttribute("aria-label", t("breadcrumb"));
  const limits = document.getElementById("limits");
  limits.replaceChildren(
    h("p", {}, t("limits")),
    state.trust?.trust ? h("p", { class: "mono small" }, t("pinned", { key: state.trust.trust.log_key })) : null,
  );
}

async function main() {
  // Indonesian first: the page is for the voters; English on request, remembered.
  setLanguage(localStorage.getItem("saksi:language") ?? "id");
  document.getElementById("language").addEventListener("click", () => {
    setLanguage(language() === "id" ? "en" : "id");
    localStorage.setItem("saksi:language", language());
    chrome();
    show();
  });
  state.trust = new Trust(get, localStorage);
  chrome();
  showStatus();
  try {
    await state.trust.load();
  } catch (e) {
    fail(e);
    return;
  }
  chrome();
  window.addEventListener("hashchange", show);
  await show();
}

main();

// A Saksi log entry, decoded: {"envelope": DSSE, "logged_at"} whose payload is
// the signed record (verifier/record.py). The page decodes only entries whose
// bytes it has just proven in the signed tree, and checks the shape it reads.

import { fromBase64, fromUtf8, toHex } from "./bytes.js";
import { MalformedInput } from "./errors.js";
import { sha256 } from "./merkle.js";

export const PAYLOAD_TYPE = "application/vnd.saksi.record+json";

function object(value, what) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new MalformedInput(`${what}: expected an object`);
  }
  return value;
}

function text(value, what) {
  if (typeof value !== "string") throw new MalformedInput(`${what}: expected text`);
  return value;
}

/**
 * Decode entry bytes: { loggedAt, payloadType, signatures: [{keyid, sig}],
 * payload (bytes), payloadHash (hex), record: { schema, subject, revision,
 * prev, issued_at, body, reason } }.
 */
export async function decodeEntry(bytes) {
  let raw;
  try {
    raw = JSON.parse(fromUtf8(bytes, "log entry"));
  } catch (e) {
    if (e instanceof MalformedInput) throw e;
    throw new MalformedInput("log entry: not JSON");
  }
  object(raw, "log entry");
  const envelope = object(raw.envelope, "log entry envelope");
  const payloadType = text(envelope.payloadType, "envelope payloadType");
  if (payloadType !== PAYLOAD_TYPE) throw new MalformedInput(`envelope: payload type ${payloadType}`);
  const payload = fromBase64(text(envelope.payload, "envelope payload"), "envelope payload");
  if (!Array.isArray(envelope.signatures) || !envelope.signatures.length) {
    throw new MalformedInput("envelope: no signatures");
  }
  const signatures = envelope.signatures.map((s, i) => ({
    keyid: text(object(s, `signature ${i}`).keyid, `signature ${i} keyid`),
    sig: text(s.sig, `signature ${i} sig`),
  }));
  let fields;
  try {
    fields = object(JSON.parse(fromUtf8(payload, "record")), "record");
  } catch (e) {
    if (e instanceof MalformedInput) throw e;
    throw new MalformedInput("record: not JSON");
  }
  const record = {
    schema: text(fields.schema, "record schema"),
    subject: text(fields.subject, "record subject"),
    revision: fields.revision,
    prev: fields.prev ?? null,
    issued_at: text(fields.issued_at, "record issued_at"),
    body: object(fields.body, "record body"),
    reason: fields.reason ?? null,
  };
  if (!Number.isSafeInteger(record.revision) || record.revision < 0) {
    throw new MalformedInput("record revision: expected a whole number");
  }
  return {
    loggedAt: text(raw.logged_at, "log entry logged_at"),
    payloadType,
    signatures,
    payload,
    payloadHash: toHex(await sha256(payload)),
    record,
  };
}

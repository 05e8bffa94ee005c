// AgentOps Replay verifier for the browser: an export document (ELS v0.6 rev 2, section 9) checked the way the
// Python verifier `agentops-verify` checks it (section 7), so that both give the same status, first violation and
// evidence class for the same bytes and the same pinned key id. Hashes and the seal signature use WebCrypto
// (SHA-256, ECDSA P-256); everything else is here. No I/O: bytes and a pinned key id in, a report out.
//
// Three steps, so a page can show the session before the hashing is done and re-check a new pin instantly:
//   load(bytes)        - UTF-8 and the browser's JSON.parse (fast), or parseJSON's strict reading when that fails
//   prepare(loaded, onProgress, onReread) - proves the fast reading exact (the text is the canonical form of what
//                        was read) or reads strictly again (section 2), then every payload hash, event hash, key id
//                        and seal signature (WebCrypto, async)
//   evaluate(prepared, pin) - every rule of sections 1 to 9 in the order of section 7, synchronous
// Where the spec leaves an order open (which member of an export is checked first), the order is agentops-verify's.
"use strict";

(function (root) {
  // ---- ELS section 7: codes ----------------------------------------------------------------------------------
  const PASS = "PASS";
  const FAIL = "FAIL";
  const AUTHORITATIVE = "AUTHORITATIVE_EVIDENCE";
  const PARTIAL = "PARTIAL_AUTHORITATIVE_EVIDENCE";
  const NON_AUTHORITATIVE = "NON_AUTHORITATIVE_EVIDENCE";

  // ---- ELS sections 1, 3 and 5: the event format as data ------------------------------------------------------
  const ENVELOPE_FIELDS = [
    "event_id", "session_id", "sequence_number", "timestamp_wall", "timestamp_monotonic", "event_type",
    "source_sdk_ver", "schema_ver", "payload", "payload_hash", "prev_event_hash", "event_hash", "chain_authority",
  ];
  const OPTIONAL_FIELD = "authority_id";
  const WITHHELD_MARK = "payload_withheld"; // section 9: export documents only
  const KNOWN_FIELDS = new Set([...ENVELOPE_FIELDS, OPTIONAL_FIELD, WITHHELD_MARK]);
  const SCHEMA_VERSION = "v0.6";
  const LEGACY_SCHEMA_VERSION = "v0.5";
  const SPEC_VERSION = "v0.6";
  const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER; // section 2: integers within +-(2^53 - 1)
  const MAX_DEPTH = 64; // section 2: nesting deeper than 64 is refused
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const TIMESTAMP =
    /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?Z$/;
  const KEY_ID = /^sha256:[0-9a-f]{64}$/;
  const REQUIRED_PAYLOAD_KEYS = new Map([
    ["SESSION_START", ["agent_id"]],
    ["SESSION_END", ["status"]],
    ["MODEL_REQUEST", ["model"]],
    ["MODEL_RESPONSE", ["model"]],
    ["TOOL_CALL", ["tool_name"]],
    ["TOOL_RESULT", ["tool_name"]],
    ["AGENT_STATE_SNAPSHOT", []],
    ["DECISION_TRACE", ["decision_id", "inputs", "outputs", "justification"]],
    ["ERROR", ["error_type", "message"]],
    ["ANNOTATION", ["annotator_id", "annotation_type", "content"]],
    ["LOG_DROP", ["dropped_count", "cumulative_drops", "drop_reason"]],
    ["CHAIN_SEAL", []], // section 5
  ]);
  const ORDER_SENSITIVE = new Set(["SESSION_START", "SESSION_END", "CHAIN_SEAL"]);
  const SIGNATURE_ALGORITHM = "ECDSA_P256_SHA256";
  const SIGNED_SEAL_KEYS = [
    "ingestion_service_id", "seal_timestamp", "event_count", "final_event_hash", "session_digest",
    "signature_algorithm", "signer_key_id", "signature",
  ];
  const LEGACY_SEAL_KEYS = ["ingestion_service_id", "seal_timestamp", "session_digest"];
  const DIGEST_PREFIX = "sha256:";
  const REDACTED = "[REDACTED]"; // section 3
  const REDACTION_HASH_SUFFIX = "_hash";
  const EXCESSIVE_DROPS = 10000;
  const MAX_WARNINGS_PER_TYPE = 100;

  // ---- ELS section 9 (rev 2): the members of an export document and of its verification report --------------
  const REQUIRED_MEMBERS = [
    "export_version", "session_id", "evidence_class", "chain_authority", "verification", "seal", "events",
    "public_keys",
  ];
  const DOCUMENT_MEMBERS = new Set([...REQUIRED_MEMBERS, "generated_at", "generator", "pii_findings", "log_proof"]);
  const COMPARED_REPORT_KEYS = [
    "session_id", "status", "authority", "sealed", "seal_signed", "seal_key_id", "complete", "event_count",
    "total_drops", "first_event_hash", "final_event_hash", "replay_fingerprint",
  ];
  const VERIFICATION_MEMBERS = new Set([...COMPARED_REPORT_KEYS, "evidence_class", "partial_reasons"]);
  const KEY_ENTRY_MEMBERS = ["signer_key_id", "algorithm", "public_key_pem"];

  const hasOwn = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

  // ---- ELS section 2: strict I-JSON parsing -------------------------------------------------------------------

  class MalformedJSON extends Error {}

  // A number written with a fraction or an exponent whose value is integral (3.0, 1e2): a double, not an integer.
  // The Python verifier reads such a literal as a float, so sequence_number 3.0 is INVALID_FIELD there and here;
  // its canonical form is still the ES6 number text ("3").
  class IntegralFloat {
    constructor(value) {
      this.value = value;
    }
  }

  const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
  const FIRST_EXPONENT_FORM = 1e21;
  const ESCAPES = { 34: '"', 92: "\\", 47: "/", 98: "\b", 102: "\f", 110: "\n", 114: "\r", 116: "\t" };
  const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

  // RFC 8259 grammar; refuses what two parsers could read differently (ELS section 2): duplicate keys, NaN and
  // Infinity, integers outside +-(2^53 - 1), integral doubles between 2^53 and 1e21 (their canonical form would be
  // such an integer), lone surrogates, nesting deeper than 64, and anything after the value (section 7, rev 2).
  function parseJSON(text) {
    let pos = 0;
    const length = text.length;

    function fail(message) {
      throw new MalformedJSON(`${message} at character ${pos}`);
    }
    function skipWhitespace() {
      for (;;) {
        const c = text.charCodeAt(pos);
        if (c === 32 || c === 10 || c === 13 || c === 9) pos++;
        else return;
      }
    }
    function parseString() {
      const start = ++pos; // after the opening quote
      for (;;) {
        const c = text.charCodeAt(pos);
        if (c === 34) {
          pos++;
          return text.slice(start, pos - 1);
        }
        if (c === 92 || c < 32 || pos >= length) break;
        pos++;
      }
      let out = text.slice(start, pos);
      let escapedSurrogate = false;
      for (;;) {
        if (pos >= length) fail("unterminated string");
        const c = text.charCodeAt(pos);
        if (c === 34) {
          pos++;
          break;
        }
        if (c < 32) fail("control character in a string");
        if (c !== 92) {
          let end = pos + 1;
          while (end < length) {
            const d = text.charCodeAt(end);
            if (d === 92 || d === 34 || d < 32) break;
            end++;
          }
          out += text.slice(pos, end);
          pos = end;
          continue;
        }
        const e = text.charCodeAt(pos + 1);
        if (e === 117) {
          const hex = text.slice(pos + 2, pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
          const unit = parseInt(hex, 16);
          if (unit >= 0xd800 && unit <= 0xdfff) escapedSurrogate = true;
          out += String.fromCharCode(unit);
          pos += 6;
        } else if (hasOwn(ESCAPES, e)) {
          out += ESCAPES[e];
          pos += 2;
        } else {
          fail("bad escape");
        }
      }
      // UTF-8 cannot carry a surrogate, so only an escape can make a lone one.
      if (escapedSurrogate && LONE_SURROGATE.test(out)) fail("string contains a lone surrogate");
      return out;
    }
    function parseNumber() {
      NUMBER.lastIndex = pos;
      const match = NUMBER.exec(text);
      if (match === null) fail("expecting a JSON value");
      const literal = match[0];
      pos += literal.length;
      const value = Number(literal);
      if (match[1] === undefined && match[2] === undefined) {
        if (!Number.isSafeInteger(value)) fail(`integer ${literal} is outside +-(2**53 - 1)`);
        return value;
      }
      if (!Number.isFinite(value)) fail(`number ${literal} is outside the range of a double`);
      if (Number.isInteger(value)) {
        const magnitude = Math.abs(value);
        if (magnitude > MAX_SAFE_INTEGER && magnitude < FIRST_EXPONENT_FORM) {
          fail(`number ${literal} is an integer outside +-(2**53 - 1)`);
        }
        return new IntegralFloat(value);
      }
      return value;
    }
    function parseValue(depth) {
      skipWhitespace();
      const c = text.charCodeAt(pos);
      if (c === 34) return parseString();
      if (c === 123 || c === 91) {
        if (depth >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
        return c === 123 ? parseObject(depth) : parseArray(depth);
      }
      if (c === 116 && text.startsWith("true", pos)) {
        pos += 4;
        return true;
      }
      if (c === 102 && text.startsWith("false", pos)) {
        pos += 5;
        return false;
      }
      if (c === 110 && text.startsWith("null", pos)) {
        pos += 4;
        return null;
      }
      return parseNumber();
    }
    function parseObject(depth) {
      pos++;
      const object = {};
      skipWhitespace();
      if (text.charCodeAt(pos) === 125) {
        pos++;
        return object;
      }
      for (;;) {
        skipWhitespace();
        if (text.charCodeAt(pos) !== 34) fail("expecting a property name in double quotes");
        const key = parseString();
        skipWhitespace();
        if (text.charCodeAt(pos) !== 58) fail("expecting ':'");
        pos++;
        const value = parseValue(depth + 1);
        if (hasOwn(object, key)) fail(`duplicate key ${JSON.stringify(key)}`);
        // defineProperty, so that a key named __proto__ is an ordinary member, as in every other JSON reader.
        if (key === "__proto__") {
          Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
        } else {
          object[key] = value;
        }
        skipWhitespace();
        const c = text.charCodeAt(pos);
        pos++;
        if (c === 44) continue;
        if (c === 125) return object;
        pos--;
        fail("expecting ',' or '}'");
      }
    }
    function parseArray(depth) {
      pos++;
      const array = [];
      skipWhitespace();
      if (text.charCodeAt(pos) === 93) {
        pos++;
        return array;
      }
      for (;;) {
        array.push(parseValue(depth + 1));
        skipWhitespace();
        const c = text.charCodeAt(pos);
        pos++;
        if (c === 44) continue;
        if (c === 93) return array;
        pos--;
        fail("expecting ',' or ']'");
      }
    }

    const value = parseValue(0);
    skipWhitespace();
    if (pos !== length) fail("extra data after the JSON value");
    return value;
  }

  function isObject(value) {
    return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof IntegralFloat);
  }
  // Python's `type(value) is int`: a number written without fraction or exponent (never a boolean).
  function isInt(value) {
    return typeof value === "number" && Number.isInteger(value);
  }
  function describe(value) {
    if (typeof value === "string") return JSON.stringify(value.length <= 80 ? value : value.slice(0, 77) + "...");
    if (value === null) return "null";
    if (typeof value === "boolean") return `a boolean ${value}`;
    if (isInt(value)) return `an integer ${value}`;
    if (typeof value === "number" || value instanceof IntegralFloat) return "a number with a fraction or exponent";
    return Array.isArray(value) ? "an array" : "an object";
  }

  // ---- ELS section 2: RFC 8785 canonical form -----------------------------------------------------------------

  class CanonicalizationError extends Error {}

  // JSON.stringify is RFC 8785 for strings (only '"', '\' and C0 controls escaped; lone surrogates are refused by
  // the parser) and for numbers (ES6 Number.prototype.toString, -0 as 0); the default sort compares UTF-16 code
  // units, as RFC 8785 section 3.2.3 orders member names. depth is the value's depth in the document: a container
  // at depth 64 or deeper is refused, and so is a number that is not finite or, when integral, not within
  // +-(2^53 - 1) (the strict parser reads an integral double written 1e21 or beyond as an IntegralFloat).
  function canonicalize(value, depth = 0) {
    switch (typeof value) {
      case "string":
        return JSON.stringify(value);
      case "number":
        if (!Number.isFinite(value) || (Number.isInteger(value) && Math.abs(value) > MAX_SAFE_INTEGER)) {
          throw new CanonicalizationError(`${value} has no I-JSON form here`);
        }
        return JSON.stringify(value);
      case "boolean":
        return value ? "true" : "false";
      default:
        break;
    }
    if (value === null) return "null";
    if (value instanceof IntegralFloat) {
      if (!Number.isFinite(value.value)) throw new CanonicalizationError(`${value.value} is not a JSON number`);
      return JSON.stringify(value.value);
    }
    if (depth >= MAX_DEPTH) throw new CanonicalizationError(`nesting deeper than ${MAX_DEPTH}`);
    if (Array.isArray(value)) {
      let out = "[";
      for (let i = 0; i < value.length; i++) out += (i ? "," : "") + canonicalize(value[i], depth + 1);
      return out + "]";
    }
    const keys = Object.keys(value).sort();
    let out = "{";
    for (let i = 0; i < keys.length; i++) {
      out += (i ? "," : "") + JSON.stringify(keys[i]) + ":" + canonicalize(value[keys[i]], depth + 1);
    }
    return out + "}";
  }

  // ---- hashes (WebCrypto) -------------------------------------------------------------------------------------

  // Lowercase hex as one flat string (not a chain of concatenations, which every comparison would flatten again).
  const HEX_DIGITS = new Uint8Array([..."0123456789abcdef"].map((digit) => digit.charCodeAt(0)));
  const hexCodes = new Uint16Array(64);
  function hex(buffer) {
    const bytes = new Uint8Array(buffer);
    const codes = bytes.length === 32 ? hexCodes : new Uint16Array(2 * bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      codes[2 * i] = HEX_DIGITS[bytes[i] >> 4];
      codes[2 * i + 1] = HEX_DIGITS[bytes[i] & 15];
    }
    return String.fromCharCode.apply(null, codes);
  }
  const encoder = new TextEncoder();
  async function sha256Hex(data) {
    return hex(await crypto.subtle.digest("SHA-256", typeof data === "string" ? encoder.encode(data) : data));
  }

  // Many small digests: each text is encoded into one reused buffer, which digest() copies before it returns
  // (WebCrypto: "get a copy of the bytes held by the data parameter"), so no buffer is allocated per hash.
  class Digests {
    constructor() {
      this.buffer = new Uint8Array(1 << 16);
    }
    of(text) {
      if (this.buffer.length < text.length * 3) this.buffer = new Uint8Array(text.length * 3);
      const { written } = encoder.encodeInto(text, this.buffer);
      return crypto.subtle.digest("SHA-256", this.buffer.subarray(0, written));
    }
  }

  // ---- ELS section 5: keys and signatures (strict DER, ITU-T X.690) -------------------------------------------

  const CURVE_P = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n;
  const CURVE_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
  const CURVE_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  const HALF_N = CURVE_N / 2n;
  const OID_EC_PUBLIC_KEY = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
  const OID_PRIME256V1 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

  class DERError extends Error {}

  // One tag-length-value: definite lengths in the fewest octets (X.690 section 10.1).
  function readTLV(data, expectedTag) {
    if (data.length < 2) throw new DERError("truncated");
    if (data[0] !== expectedTag) throw new DERError(`expected tag ${expectedTag}, found ${data[0]}`);
    const first = data[1];
    let offset = 2;
    let length;
    if (first < 0x80) {
      length = first;
    } else {
      const count = first & 0x7f;
      if (count === 0 || count > 4) throw new DERError("indefinite or oversized length");
      if (data.length < offset + count) throw new DERError("truncated length");
      if (data[offset] === 0) throw new DERError("length has a leading zero octet");
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + data[offset + i];
      if (length < 0x80) throw new DERError("long-form length for a short value");
      offset += count;
    }
    const end = offset + length;
    if (data.length < end) throw new DERError("truncated contents");
    return [data.subarray(offset, end), data.subarray(end)];
  }

  // A non-negative INTEGER in minimal two's complement (X.690 section 8.3).
  function readInteger(data) {
    const [contents, rest] = readTLV(data, 0x02);
    if (contents.length === 0) throw new DERError("empty INTEGER");
    if (contents[0] & 0x80) throw new DERError("negative INTEGER");
    if (contents.length > 1 && contents[0] === 0 && !(contents[1] & 0x80)) {
      throw new DERError("INTEGER is not minimally encoded");
    }
    return [bytesToBigInt(contents), rest];
  }

  function bytesToBigInt(bytes) {
    let value = 0n;
    for (const byte of bytes) value = (value << 8n) | BigInt(byte);
    return value;
  }
  function bigIntTo32Bytes(value) {
    const out = new Uint8Array(32);
    for (let i = 31; i >= 0; i--) {
      out[i] = Number(value & 0xffn);
      value >>= 8n;
    }
    return out;
  }
  function startsWith(bytes, prefix) {
    return bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);
  }
  function sameBytes(a, b) {
    return a.length === b.length && a.every((byte, i) => byte === b[i]);
  }

  // RFC 5480: SEQUENCE { SEQUENCE { id-ecPublicKey, secp256r1 }, BIT STRING { 04 || X || Y } }, nothing else.
  // Rev 2: only the uncompressed point is accepted; the point must be on the curve (SEC 1 v2 section 3.2.2.1).
  function checkSpki(der) {
    const [spki, after] = readTLV(der, 0x30);
    if (after.length) throw new DERError("trailing bytes after the SubjectPublicKeyInfo");
    const [algorithm, rest] = readTLV(spki, 0x30);
    const [bitString, tail] = readTLV(rest, 0x03);
    if (tail.length) throw new DERError("trailing bytes inside the SubjectPublicKeyInfo");
    if (!startsWith(algorithm, OID_EC_PUBLIC_KEY)) throw new DERError("the algorithm is not id-ecPublicKey");
    if (!sameBytes(algorithm.subarray(OID_EC_PUBLIC_KEY.length), OID_PRIME256V1)) {
      throw new DERError("the curve is not P-256");
    }
    if (bitString.length !== 66 || bitString[0] !== 0 || bitString[1] !== 0x04) {
      throw new DERError("the key is not an uncompressed P-256 point");
    }
    const x = bytesToBigInt(bitString.subarray(2, 34));
    const y = bytesToBigInt(bitString.subarray(34, 66));
    const modP = (v) => ((v % CURVE_P) + CURVE_P) % CURVE_P;
    if (x >= CURVE_P || y >= CURVE_P || modP(y * y) !== modP(x * x * x - 3n * x + CURVE_B)) {
      throw new DERError("the point is not on the P-256 curve");
    }
  }

  const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

  function base64Bytes(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  // The seal's signature: only the one padded standard base64 encoding of non-empty bytes (section 5).
  function decodeSignature(value) {
    if (typeof value !== "string" || !BASE64.test(value) || value === "") return null;
    const bytes = base64Bytes(value);
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return btoa(binary) === value ? bytes : null;
  }

  // ECDSA-Sig-Value in strict DER to the r || s form WebCrypto verifies; null unless 1 <= r < n and
  // 1 <= s <= n/2 (rev 2: only the low-s form of a signature is valid).
  function p1363Signature(der) {
    try {
      const [body, rest] = readTLV(der, 0x30);
      if (rest.length) return null;
      const [r, afterR] = readInteger(body);
      const [s, afterS] = readInteger(afterR);
      if (afterS.length) return null;
      if (!(r >= 1n && r < CURVE_N && s >= 1n && s <= HALF_N)) return null;
      const out = new Uint8Array(64);
      out.set(bigIntTo32Bytes(r), 0);
      out.set(bigIntTo32Bytes(s), 32);
      return out;
    } catch (error) {
      if (error instanceof DERError) return null;
      throw error;
    }
  }

  // RFC 7468: exactly one "PUBLIC KEY" block; text outside the block is ignored.
  const PEM_BLOCK = /-----BEGIN ([^\r\n-]*)-----([\s\S]*?)-----END ([^\r\n-]*)-----/g;
  function pemToDer(pem) {
    const blocks = [...pem.matchAll(PEM_BLOCK)];
    if (blocks.length !== pem.split("-----BEGIN ").length - 1) throw new DERError("a BEGIN line has no END line");
    if (blocks.length !== 1) throw new DERError(`expected one PEM PUBLIC KEY block, found ${blocks.length}`);
    const [, label, body, endLabel] = blocks[0];
    if (label !== endLabel || label !== "PUBLIC KEY") throw new DERError("not a PEM PUBLIC KEY block");
    const compact = body.replace(/[ \t\r\n]+/g, "");
    if (!BASE64.test(compact)) throw new DERError("the PEM body is not base64");
    return base64Bytes(compact);
  }

  // One entry of public_keys (section 9): {signer_key_id, algorithm, public_key_pem}; its id must be the SHA-256
  // of its own DER (rev 2: INVALID_FIELD otherwise). Resolves to {keyId, key} or {problem}.
  async function readKeyEntry(entry) {
    if (!isObject(entry)) return { problem: "a public_keys entry is not a JSON object" };
    const keyId = entry.signer_key_id;
    const pem = entry.public_key_pem;
    if (typeof keyId !== "string" || typeof pem !== "string") {
      return { problem: 'a public_keys entry needs string "signer_key_id" and "public_key_pem"' };
    }
    if (entry.algorithm !== SIGNATURE_ALGORITHM) return { problem: `key ${keyId}: algorithm is not ECDSA_P256_SHA256` };
    let der;
    try {
      der = pemToDer(pem);
      checkSpki(der);
    } catch (error) {
      if (error instanceof DERError || error instanceof DOMException) {
        return { problem: `key ${keyId}: ${error.message}` };
      }
      throw error;
    }
    const computed = DIGEST_PREFIX + (await sha256Hex(der));
    if (computed !== keyId) return { problem: `key entry says ${keyId} but its key has id ${computed}` };
    try {
      const key = await crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
      return { keyId, key };
    } catch (error) {
      return { problem: `key ${keyId}: the browser refuses it (${error.message})` };
    }
  }

  // Section 5: JCS of the seal's own values, the seal event's event_id included (rev 2).
  function sealSignedText(sessionId, sealEventId, payload) {
    return canonicalize({
      spec_version: SPEC_VERSION,
      session_id: sessionId,
      seal_event_id: sealEventId,
      event_count: payload.event_count,
      final_event_hash: payload.final_event_hash,
      session_digest: payload.session_digest,
      seal_timestamp: payload.seal_timestamp,
      ingestion_service_id: payload.ingestion_service_id,
    });
  }

  // ---- step 1: load --------------------------------------------------------------------------------------------

  // {bytes, text, value, exact, document, events, problem}: problem is a violation of the whole document
  // (MALFORMED_JSON, LOAD_ERROR). The browser's own JSON.parse reads the document first, so that the page can show
  // it at once; prepare then proves that reading exact (the document is in canonical form) or reads it again with
  // parseJSON. exact says the reading is the strict one.
  function load(bytes) {
    const loaded = { bytes, text: null, value: null, exact: false, document: null, events: [], problem: null };
    try {
      loaded.text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (error) {
      loaded.problem = violation("MALFORMED_JSON", "the document is not valid UTF-8");
      return loaded;
    }
    try {
      loaded.value = JSON.parse(loaded.text);
    } catch (error) {
      readStrictly(loaded); // what JSON.parse refuses, parseJSON refuses too, and it says why
      return loaded;
    }
    adopt(loaded, loaded.value);
    return loaded;
  }

  function readStrictly(loaded) {
    let value;
    loaded.exact = true;
    try {
      value = parseJSON(loaded.text);
    } catch (error) {
      if (!(error instanceof MalformedJSON) && !(error instanceof RangeError)) throw error;
      loaded.document = null;
      loaded.events = [];
      loaded.problem = violation("MALFORMED_JSON", error.message);
      return;
    }
    adopt(loaded, value);
  }

  function adopt(loaded, value) {
    loaded.document = null;
    loaded.events = [];
    loaded.problem = null;
    if (!isObject(value) || !hasOwn(value, "export_version")) {
      loaded.problem = violation("LOAD_ERROR", "the embedded JSON is not an export document (ELS section 9)");
      return;
    }
    loaded.document = value;
    if (!Array.isArray(value.events)) {
      loaded.problem = violation("LOAD_ERROR", 'the export document has no "events" array');
      return;
    }
    // A withheld CHAIN_SEAL payload is the document's "seal"; the payload hash then proves it (section 9).
    const seal = value.seal;
    loaded.events = value.events.map((event) => {
      if (isObject(event) && event[WITHHELD_MARK] === true && event.event_type === "CHAIN_SEAL" && isObject(seal)) {
        const restored = { ...event, payload: seal };
        delete restored[WITHHELD_MARK];
        return restored;
      }
      return event;
    });
  }

  // ---- step 2: prepare (all the cryptography) -------------------------------------------------------------------

  const BATCH = 2048;
  // Only an escape can make a lone surrogate (UTF-8 cannot carry one), and JSON.parse accepts it.
  const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

  // onReread(loaded) is called when the strict reading replaced what JSON.parse had read.
  async function prepare(loaded, onProgress = () => {}, onReread = () => {}) {
    const prepared = {
      loaded,
      documentSha256: await sha256Hex(loaded.bytes),
      payloadHashes: [],
      eventHashes: [],
      redactions: new Uint8Array(0), // 1 where a payload's canonical text holds "[REDACTED]"
      documentSealHash: null, // the payload hash of the document's "seal" member
      keys: [],
      sealSignatures: new Map(), // event index -> {keyId -> signature verifies}
    };
    if (loaded.text !== null) {
      let hashed = false;
      if (loaded.exact) {
        await hashEvents(prepared, parsedPayloads(loaded), onProgress);
        hashed = true;
      } else if (!SURROGATE_ESCAPE.test(loaded.text)) {
        try {
          await hashEvents(prepared, canonicalPayloads(loaded), onProgress);
          hashed = true;
        } catch (error) {
          if (!(error instanceof CanonicalizationError)) throw error;
        }
      }
      if (!hashed) {
        readStrictly(loaded);
        onReread(loaded);
        await hashEvents(prepared, parsedPayloads(loaded), onProgress);
      }
      loaded.text = null;
      loaded.value = null;
    }
    if (loaded.document !== null) {
      const seal = loaded.document.seal;
      if (isObject(seal)) prepared.documentSealHash = await sha256Hex(canonicalize(seal, 1));
      const entries = loaded.document.public_keys;
      if (Array.isArray(entries)) prepared.keys = await Promise.all(entries.map(readKeyEntry));
      await checkSealSignatures(prepared);
    }
    return prepared;
  }

  // Each event's payload hash and event hash, with two batches in flight while the next batch's texts are made.
  // payloadTexts yields the canonical payload text (or null) of each event in turn, then finishes.
  async function hashEvents(prepared, payloadTexts, onProgress) {
    const events = prepared.loaded.events;
    const count = events.length;
    const payloadHashes = new Array(count).fill(null);
    const eventHashes = new Array(count).fill(null);
    const redactions = new Uint8Array(count);
    const digests = new Digests();
    const inFlight = [];
    // one batch's digests, in order: [payload digest]? then [event digest]? for each of its events
    const store = (start, end, has, results) => {
      let r = 0;
      for (let i = start; i < end; i++) {
        if (has[2 * (i - start)]) payloadHashes[i] = hex(results[r++]);
        if (has[2 * (i - start) + 1]) eventHashes[i] = hex(results[r++]);
      }
    };
    for (let start = 0; start < count; start += BATCH) {
      const end = Math.min(count, start + BATCH);
      const batch = [];
      const has = new Uint8Array(2 * (end - start));
      for (let i = start; i < end; i++) {
        const payloadText = payloadTexts.next().value;
        if (payloadText !== null) {
          redactions[i] = payloadText.includes('"[REDACTED]"') ? 1 : 0;
          has[2 * (i - start)] = 1;
          batch.push(digests.of(payloadText));
        }
        const eventText = eventHashText(events[i]);
        if (eventText !== null) {
          has[2 * (i - start) + 1] = 1;
          batch.push(digests.of(eventText));
        }
      }
      inFlight.push(Promise.all(batch).then((results) => store(start, end, has, results)));
      if (inFlight.length > 2) await inFlight.shift();
      onProgress(end, count);
    }
    const rest = payloadTexts.next(); // the members after "events", and the end of the text
    if (!rest.done) throw new Error("more payload texts than events");
    await Promise.all(inFlight);
    Object.assign(prepared, { payloadHashes, eventHashes, redactions });
  }

  function* parsedPayloads(loaded) {
    for (const event of loaded.events) {
      yield isObject(event) && isObject(event.payload) ? canonicalize(event.payload, 3) : null;
    }
  }

  // The exporter writes the document in canonical form (section 9). When every piece of the text is the canonical
  // form of what JSON.parse read, that reading is exact (no duplicate key, no number written as 3.0 or beyond
  // 2^53, no escaped character, no whitespace, nothing after it) and each payload's canonical text is made on the
  // way; otherwise CanonicalizationError, and the document is read again strictly.
  function* canonicalPayloads(loaded) {
    const text = loaded.text;
    let position = 0;
    const expect = (piece) => {
      if (!text.startsWith(piece, position)) throw new CanonicalizationError("the document is not in canonical form");
      position += piece.length;
    };
    const value = loaded.document;
    if (value === null || !Array.isArray(value.events)) {
      expect(canonicalize(loaded.value)); // nothing to hash, but the reading must still be exact
    } else {
      const names = Object.keys(value).sort();
      expect("{");
      for (let n = 0; n < names.length; n++) {
        expect((n ? "," : "") + JSON.stringify(names[n]) + ":");
        if (names[n] !== "events") {
          expect(canonicalize(value[names[n]], 1));
          continue;
        }
        expect("[");
        for (let i = 0; i < value.events.length; i++) {
          const event = value.events[i];
          if (i) expect(",");
          let payloadText = null;
          if (!isObject(event)) {
            expect(canonicalize(event, 2));
          } else {
            // the members before the payload, the payload, the members after it: no event's whole text is built
            const members = Object.keys(event).sort();
            let piece = "{";
            for (let m = 0; m < members.length; m++) {
              piece += (m ? "," : "") + JSON.stringify(members[m]) + ":";
              const member = canonicalize(event[members[m]], 3);
              if (members[m] === "payload" && isObject(event.payload)) {
                expect(piece);
                expect(member);
                payloadText = member;
                piece = "";
              } else {
                piece += member;
              }
            }
            expect(piece + "}");
          }
          // a withheld seal payload restored from the document's "seal" is hashed from that member
          const shown = loaded.events[i];
          yield shown === event ? payloadText : canonicalize(shown.payload, 3);
        }
        expect("]");
      }
      expect("}");
    }
    if (position !== text.length) throw new CanonicalizationError("text after the document");
  }

  // Section 2: JCS of exactly these seven members (written in sorted order), prev_event_hash present even when null.
  const ENVELOPE_HASHED = [
    "event_id", "session_id", "sequence_number", "timestamp_wall", "event_type", "payload_hash", "prev_event_hash",
  ];
  function eventHashText(event) {
    if (!isObject(event)) return null;
    for (const name of ENVELOPE_HASHED) if (!hasOwn(event, name)) return null;
    const c = (name) => canonicalize(event[name], 3);
    return (
      `{"event_id":${c("event_id")},"event_type":${c("event_type")},"payload_hash":${c("payload_hash")},` +
      `"prev_event_hash":${c("prev_event_hash")},"sequence_number":${c("sequence_number")},` +
      `"session_id":${c("session_id")},"timestamp_wall":${c("timestamp_wall")}}`
    );
  }

  // Each seal's signature against every listed key of the id it names (whether a key is trusted is decided later).
  async function checkSealSignatures(prepared) {
    const { events } = prepared.loaded;
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      if (!isObject(event) || event.event_type !== "CHAIN_SEAL" || !isObject(event.payload)) continue;
      const payload = event.payload;
      const der = decodeSignature(payload.signature);
      if (der === null || !SIGNED_SEAL_KEYS.every((key) => hasOwn(payload, key))) continue;
      const results = new Map();
      const signature = p1363Signature(der);
      const message = encoder.encode(sealSignedText(event.session_id, event.event_id, payload));
      for (const entry of prepared.keys) {
        if (entry.key === undefined || entry.keyId !== payload.signer_key_id || results.has(entry.keyId)) continue;
        const valid =
          signature !== null &&
          (await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, entry.key, signature, message));
        results.set(entry.keyId, valid);
      }
      prepared.sealSignatures.set(i, results);
    }
  }

  // ---- step 3: evaluate (section 7, in its order) -----------------------------------------------------------------

  function violation(type, message, eventSequence = null, eventId = null, context = {}) {
    const id = typeof eventId === "string" ? eventId : null;
    return { type, message, event_sequence: eventSequence, event_id: id, context };
  }

  class Stop extends Error {}

  function evaluate(prepared, pinnedKeyId = null) {
    const loaded = prepared.loaded;
    const pin = typeof pinnedKeyId === "string" && KEY_ID.test(pinnedKeyId) ? pinnedKeyId : null;
    const state = newState(pin, prepared);
    let documentProblem = loaded.problem;
    if (documentProblem === null) documentProblem = checkMembers(loaded.document, prepared);
    if (documentProblem !== null) {
      state.violation = documentProblem;
      state.count = 0;
    } else {
      for (let i = 0; i < loaded.events.length; i++) {
        state.count++;
        if (state.violation !== null) continue;
        try {
          checkEvent(state, loaded.events[i], i);
          state.verified = i + 1;
        } catch (error) {
          if (!(error instanceof Stop)) throw error;
        }
      }
    }
    const outcome = finishOutcome(state);
    const claim =
      outcome.violation === null && documentProblem === null
        ? claimViolation(loaded.document, outcome, prepared.documentSealHash)
        : null;
    const report = buildReport(outcome, claim);
    report.verified_events = state.verified;
    report.document_sha256 = prepared.documentSha256;
    report.pinned_key_id = pin;
    report.claimed_evidence_class = loaded.document !== null ? loaded.document.evidence_class ?? null : null;
    return report;
  }

  // Rev 2: every member of the document is checked before its events (names, presence, types, each public key).
  function checkMembers(document, prepared) {
    const problem = (type, message, field) => violation(type, message, null, null, { field });
    const invalid = (field, expected, value) => problem("INVALID_FIELD",
        `${field} must be ${expected}, found ${describe(value)}`, field);
    for (const name of Object.keys(document)) {
      if (!DOCUMENT_MEMBERS.has(name)) return problem("UNKNOWN_FIELD",
          `${JSON.stringify(name)} is not a member of an export document`, name);
    }
    for (const name of REQUIRED_MEMBERS) {
      if (!hasOwn(document, name)) return problem("MISSING_FIELD",
          `the export document has no ${JSON.stringify(name)}`, name);
    }
    for (const name of ["export_version", "generated_at", "generator"]) {
      if (hasOwn(document, name) && typeof document[name] !== "string") {
        return invalid(name, "a string", document[name]);
      }
    }
    if (isObject(document.verification)) {
      for (const name of Object.keys(document.verification)) {
        if (!VERIFICATION_MEMBERS.has(name)) {
          return problem("UNKNOWN_FIELD", `verification holds ${JSON.stringify(name)}, which an export does not state`,
              `verification.${name}`);
        }
      }
    }
    if (hasOwn(document, "pii_findings")) {
      const findings = document.pii_findings;
      if (!Array.isArray(findings)) return invalid("pii_findings", "an array", findings);
      for (let i = 0; i < findings.length; i++) {
        if (!isObject(findings[i])) return invalid(`pii_findings.${i}`, "an object", findings[i]);
      }
    }
    const logProof = document.log_proof;
    if (logProof !== undefined && logProof !== null && !isObject(logProof)) {
      return invalid("log_proof", "an object or null", logProof);
    }
    const entries = document.public_keys;
    if (!Array.isArray(entries)) return invalid("public_keys", "an array", entries);
    for (let i = 0; i < entries.length; i++) {
      if (!isObject(entries[i])) return invalid(`public_keys.${i}`, "an object", entries[i]);
      for (const name of KEY_ENTRY_MEMBERS) {
        if (!hasOwn(entries[i], name)) return problem("MISSING_FIELD",
            `public_keys.${i} has no ${JSON.stringify(name)}`, `public_keys.${i}.${name}`);
      }
      if (prepared.keys[i].problem !== undefined) return problem("INVALID_FIELD",
          `public_keys.${i}: ${prepared.keys[i].problem}`, `public_keys.${i}`);
    }
    return null;
  }

  function newState(pin, prepared) {
    const listed = new Map();
    for (const entry of prepared.keys) if (entry.keyId !== undefined) listed.set(entry.keyId, entry);
    return {
      pin,
      prepared,
      listed,
      count: 0,
      verified: 0,
      violation: null,
      warnings: [],
      warningCounts: new Map(),
      sessionId: null,
      authority: null,
      firstHash: null,
      lastHash: null,
      seenIds: new Set(),
      lastTime: null,
      hasEnd: false,
      sealIndex: null,
      sealSigned: false,
      sealKeyId: null,
      sealKeyTrusted: false,
      sealValidIfTrusted: true,
      sealPayloadHash: null,
      hasLogDrop: false,
      totalDrops: 0,
      excessiveReported: false,
      legacySchemaReported: false,
      withheld: [],
    };
  }

  function fail(state, type, message, index, eventId, context = {}) {
    state.violation = violation(type, message, index, eventId, context);
    return new Stop();
  }
  function invalidField(state, name, expected, value, index, eventId) {
    return fail(state, "INVALID_FIELD", `${name} must be ${expected}, found ${describe(value)}`, index, eventId, {
      field: name,
    });
  }
  function warn(state, type, message, index, eventId, context = {}) {
    const count = (state.warningCounts.get(type) || 0) + 1;
    state.warningCounts.set(type, count);
    if (count <= MAX_WARNINGS_PER_TYPE) state.warnings.push(violation(type, message, index, eventId, context));
  }

  function checkEvent(state, event, index) {
    if (!isObject(event)) {
      throw fail(state, "MALFORMED_JSON", `an event must be a JSON object, not ${describe(event)}`, index, null);
    }
    // fields present, known, and (export documents only) the withheld mark (sections 1 and 9)
    let withheld = false;
    if (hasOwn(event, WITHHELD_MARK)) {
      withheld = true;
      if (event[WITHHELD_MARK] !== true) {
        throw invalidField(state, WITHHELD_MARK, "true", event[WITHHELD_MARK], index, event.event_id);
      }
      if (hasOwn(event, "payload")) {
        throw fail(state, "INVALID_FIELD", "an event marked payload_withheld must not carry a payload", index,
            event.event_id, {
          field: "payload",
        });
      }
    }
    for (const name of ENVELOPE_FIELDS) {
      if (!hasOwn(event, name) && !(withheld && name === "payload")) {
        throw fail(state, "MISSING_FIELD", `missing field ${JSON.stringify(name)}`, index, event.event_id,
            { field: name });
      }
    }
    for (const name of Object.keys(event)) {
      if (!KNOWN_FIELDS.has(name)) {
        throw fail(state, "UNKNOWN_FIELD", `unknown field ${JSON.stringify(name)}`, index, event.event_id,
            { field: name });
      }
    }

    // 1. fields well-typed, in the table order of section 1
    const eventId = event.event_id;
    if (typeof eventId !== "string" || !UUID.test(eventId)) {
      throw invalidField(state, "event_id", "a canonical lowercase UUID", eventId, index, eventId);
    }
    const sessionId = event.session_id;
    if (sessionId !== state.sessionId && (typeof sessionId !== "string" || !UUID.test(sessionId))) {
      throw invalidField(state, "session_id", "a canonical lowercase UUID", sessionId, index, eventId);
    }
    const sequence = event.sequence_number;
    if (!isInt(sequence) || sequence < 0) {
      throw invalidField(state, "sequence_number", "a non-negative integer", sequence, index, eventId);
    }
    const wall = event.timestamp_wall;
    if (typeof wall !== "string" || !TIMESTAMP.test(wall)) {
      throw invalidField(state, "timestamp_wall", "an RFC 3339 UTC time ending in Z", wall, index, eventId);
    }
    const monotonic = event.timestamp_monotonic;
    if (!isInt(monotonic) || monotonic < 0) {
      throw invalidField(state, "timestamp_monotonic", "a non-negative integer", monotonic, index, eventId);
    }
    const eventType = event.event_type;
    if (typeof eventType !== "string") throw invalidField(state, "event_type", "a string", eventType, index, eventId);
    if (typeof event.source_sdk_ver !== "string") {
      throw invalidField(state, "source_sdk_ver", "a string", event.source_sdk_ver, index, eventId);
    }
    const schema = event.schema_ver;
    if (schema !== SCHEMA_VERSION) {
      if (schema === LEGACY_SCHEMA_VERSION) {
        if (!state.legacySchemaReported) {
          state.legacySchemaReported = true;
          warn(state, "LEGACY_SCHEMA_VERSION", "schema_ver v0.5 read as legacy v0.6", index, eventId);
        }
      } else {
        throw fail(state, "SCHEMA_VERSION_MISMATCH", `schema_ver is ${describe(schema)}, expected "v0.6"`, index,
            eventId);
      }
    }
    const payload = withheld ? null : event.payload;
    if (!withheld && !isObject(payload)) throw invalidField(state, "payload", "a JSON object", payload, index, eventId);
    const claimedPayloadHash = event.payload_hash;
    if (typeof claimedPayloadHash !== "string") {
      throw invalidField(state, "payload_hash", "a string", claimedPayloadHash, index, eventId);
    }
    const prev = event.prev_event_hash;
    if (prev !== null && typeof prev !== "string") {
      throw invalidField(state, "prev_event_hash", "a string or null", prev, index, eventId);
    }
    const claimedEventHash = event.event_hash;
    if (typeof claimedEventHash !== "string") {
      throw invalidField(state, "event_hash", "a string", claimedEventHash, index, eventId);
    }
    const authority = event.chain_authority;
    if (authority !== "server" && authority !== "sdk") {
      throw invalidField(state, "chain_authority", '"server" or "sdk"', authority, index, eventId);
    }
    if (hasOwn(event, OPTIONAL_FIELD) && typeof event.authority_id !== "string") {
      throw invalidField(state, "authority_id", "a string", event.authority_id, index, eventId);
    }

    // 2. session id
    if (index === 0) {
      state.sessionId = sessionId;
    } else if (sessionId !== state.sessionId) {
      throw fail(state, "SESSION_MISMATCH", `session_id ${sessionId} differs from the session's ${state.sessionId}`,
          index, eventId);
    }

    // 3. payload hash, compared as a string (letter case included)
    if (withheld) {
      state.withheld.push(index);
    } else {
      const computed = state.prepared.payloadHashes[index];
      if (computed !== claimedPayloadHash) {
        throw fail(state, "PAYLOAD_HASH_MISMATCH", "payload_hash does not match the hash of the payload", index,
            eventId, {
          expected: computed,
          found: claimedPayloadHash,
        });
      }
    }

    // 4. sequence number
    if (sequence !== index) {
      throw fail(state, "SEQUENCE_GAP", `sequence_number is ${sequence}, expected ${index}`, index, eventId);
    }

    // 5. link to the previous event
    if (index === 0) {
      if (prev !== null) throw fail(state, "INVALID_GENESIS", "the first event's prev_event_hash must be null", index,
          eventId);
    } else if (prev !== state.lastHash) {
      throw fail(state, "CHAIN_BROKEN", "prev_event_hash is not the previous event's event_hash", index, eventId, {
        expected: state.lastHash,
        found: prev,
      });
    }

    // 6. event hash
    const computedEventHash = state.prepared.eventHashes[index];
    if (computedEventHash !== claimedEventHash) {
      throw fail(state, "EVENT_HASH_MISMATCH", "event_hash does not match the hash of the event", index, eventId, {
        expected: computedEventHash,
        found: claimedEventHash,
      });
    }

    // event ids are unique within the session (section 1)
    if (state.seenIds.has(eventId)) throw fail(state, "DUPLICATE_EVENT_ID", `event_id ${eventId} appears twice`, index,
        eventId);
    state.seenIds.add(eventId);

    // 7. type, order, authority and seal rules
    const required = REQUIRED_PAYLOAD_KEYS.get(eventType);
    if (required === undefined) {
      throw fail(state, "UNKNOWN_EVENT_TYPE", `event_type ${JSON.stringify(eventType)} is not an ELS event type`,
          index, eventId);
    }
    if (payload !== null) {
      for (const key of required) {
        if (!hasOwn(payload, key)) {
          throw fail(state, "MISSING_FIELD", `${eventType} payload lacks ${JSON.stringify(key)}`, index, eventId, {
            field: `payload.${key}`,
          });
        }
      }
    }
    if (index === 0 || state.hasEnd || state.sealIndex !== null || ORDER_SENSITIVE.has(eventType)) {
      checkOrder(state, eventType, index, eventId);
    }
    if (index === 0) {
      state.authority = authority;
    } else if (authority !== state.authority) {
      throw fail(state, "MIXED_AUTHORITY",
          `chain_authority is "${authority}" but the session's is "${state.authority}"`, index, eventId);
    }
    if (eventType === "CHAIN_SEAL") checkSeal(state, payload, index, eventId, wall, claimedPayloadHash);

    // redaction (section 3); the canonical text shows every "[REDACTED]" string literally
    if (payload !== null && state.prepared.redactions[index]) {
      const unbacked = findUnbackedRedaction(payload);
      if (unbacked !== null) {
        throw fail(state, "REDACTION_INTEGRITY", `${unbacked} is [REDACTED] but has no sibling hash`, index, eventId, {
          path: unbacked,
        });
      }
    }

    // warnings
    if (eventType === "LOG_DROP") {
      state.hasLogDrop = true;
      if (payload !== null) checkDropCounts(state, payload.dropped_count, payload.cumulative_drops, index, eventId);
    }
    if (state.lastTime !== null && timeIsEarlier(wall, state.lastTime)) {
      warn(state, "TIMESTAMP_ANOMALY", "timestamp_wall is earlier than the previous event's", index, eventId);
    }
    state.lastTime = wall;
    if (index === 0) state.firstHash = claimedEventHash;
    state.lastHash = claimedEventHash;
  }

  // Section 3 order rules.
  function checkOrder(state, eventType, index, eventId) {
    let problem = null;
    if (state.sealIndex !== null) problem = `${eventType} follows the CHAIN_SEAL at sequence ${state.sealIndex}`;
    else if (index === 0 && eventType !== "SESSION_START") {
      problem = `the first event is ${eventType}, not SESSION_START`;
    }
    else if (index > 0 && eventType === "SESSION_START") problem = "a second SESSION_START";
    else if (state.hasEnd && eventType !== "CHAIN_SEAL") problem = `${eventType} follows SESSION_END`;
    if (problem !== null) throw fail(state, "ORDER_VIOLATION", problem, index, eventId);
    if (eventType === "SESSION_END") state.hasEnd = true;
  }

  // Section 5.
  function checkSeal(state, payload, index, eventId, wall, claimedPayloadHash) {
    if (payload === null) {
      throw fail(state, "INVALID_SEAL", "the CHAIN_SEAL payload is withheld, so it cannot be checked", index, eventId);
    }
    const finalHash = state.lastHash;
    if (!hasOwn(payload, "signature")) {
      const missing = LEGACY_SEAL_KEYS.filter((key) => !hasOwn(payload, key));
      if (missing.length) throw fail(state, "INVALID_SEAL", `unsigned seal lacks ${missing.join(", ")}`, index,
          eventId);
      const mismatched = [];
      if (payload.session_digest !== DIGEST_PREFIX + String(finalHash)) mismatched.push("session_digest");
      if (hasOwn(payload, "final_event_hash") && payload.final_event_hash !== finalHash) {
        mismatched.push("final_event_hash");
      }
      const count = hasOwn(payload, "event_count") ? payload.event_count : index;
      if (!isInt(count) || count !== index) mismatched.push("event_count");
      if (mismatched.length) {
        warn(state, "LEGACY_SEAL_MISMATCH", `unsigned legacy seal: ${mismatched.join(", ")} not matching the chain`,
            index, eventId);
      }
      state.sealIndex = index;
      state.sealPayloadHash = claimedPayloadHash;
      return;
    }
    const missing = SIGNED_SEAL_KEYS.filter((key) => !hasOwn(payload, key));
    if (missing.length) throw fail(state, "INVALID_SEAL", `signed seal lacks ${missing.join(", ")}`, index, eventId);
    const problems = [];
    const extra = Object.keys(payload).filter((key) => !SIGNED_SEAL_KEYS.includes(key));
    if (extra.length) problems.push(`signed seal has keys beyond the eight of section 5: ${extra.join(", ")}`); // rev 2
    if (typeof payload.ingestion_service_id !== "string" || payload.ingestion_service_id === "") {
      problems.push("ingestion_service_id is not a non-empty string");
    }
    if (typeof payload.seal_timestamp !== "string" || !TIMESTAMP.test(payload.seal_timestamp)) {
      problems.push("seal_timestamp is not an RFC 3339 UTC time");
    } else if (payload.seal_timestamp !== wall) {
      problems.push("the seal event's timestamp_wall is not its seal_timestamp"); // rev 2
    }
    if (!isInt(payload.event_count) || payload.event_count !== index) {
      problems.push(`event_count is ${describe(payload.event_count)}, the chain has ${index}`);
    }
    if (payload.final_event_hash !== finalHash) {
      problems.push("final_event_hash is not the previous event's event_hash");
    }
    if (payload.session_digest !== DIGEST_PREFIX + String(finalHash)) {
      problems.push("session_digest is not 'sha256:' + final_event_hash");
    }
    if (payload.signature_algorithm !== SIGNATURE_ALGORITHM) {
      problems.push("signature_algorithm is not ECDSA_P256_SHA256");
    }
    const keyId = payload.signer_key_id;
    if (typeof keyId !== "string" || !KEY_ID.test(keyId)) {
      problems.push("signer_key_id is not 'sha256:' + 64 lowercase hex digits");
    }
    if (decodeSignature(payload.signature) === null) problems.push("signature is not padded standard base64");
    if (problems.length) throw fail(state, "INVALID_SEAL", problems.join("; "), index, eventId, { problems });

    state.sealIndex = index;
    state.sealSigned = true;
    state.sealKeyId = keyId;
    state.sealPayloadHash = claimedPayloadHash;
    // Rev 2: a signature not in its one form (strict DER, 1 <= r < n, 1 <= s <= n/2) verifies under no key.
    if (p1363Signature(decodeSignature(payload.signature)) === null) {
      throw fail(state, "INVALID_SIGNATURE",
          "the seal's signature is not strict DER low-s ECDSA, so it verifies under no key", index, eventId, {
        signer_key_id: keyId,
      });
    }
    const results = state.prepared.sealSignatures.get(index) || new Map();
    // Section 5: a key is trusted only when the auditor pinned its id and the document lists that key.
    if (state.pin === keyId && state.listed.has(keyId)) {
      if (!results.get(keyId)) {
        throw fail(state, "INVALID_SIGNATURE", `the seal's signature does not verify under trusted key ${keyId}`,
            index, eventId, {
          signer_key_id: keyId,
        });
      }
      state.sealKeyTrusted = true;
    } else if (results.has(keyId)) {
      state.sealValidIfTrusted = results.get(keyId);
    }
  }

  function checkDropCounts(state, dropped, cumulative, index, eventId) {
    if (!isInt(dropped) || dropped < 1) {
      warn(state, "INVALID_DROP_COUNT", "dropped_count is not an integer >= 1", index, eventId);
      dropped = 0;
    }
    state.totalDrops += dropped;
    if (!isInt(cumulative) || cumulative < state.totalDrops) {
      warn(state, "INVALID_DROP_COUNT", "cumulative_drops is not an integer at least the drops recorded so far", index,
          eventId);
    } else if (cumulative > EXCESSIVE_DROPS) {
      reportExcessiveDrops(state, cumulative, index, eventId);
    }
    if (state.totalDrops > EXCESSIVE_DROPS) reportExcessiveDrops(state, state.totalDrops, index, eventId);
  }
  function reportExcessiveDrops(state, dropped, index, eventId) {
    if (state.excessiveReported) return;
    state.excessiveReported = true;
    warn(state, "EXCESSIVE_CUMULATIVE_DROPS", `${dropped} events dropped (more than ${EXCESSIVE_DROPS})`, index,
        eventId);
  }

  // Validated timestamps: the fixed-width seconds, then the fraction digits without trailing zeros.
  function timeIsEarlier(time, previous) {
    if (time.length === previous.length) return time < previous;
    const key = (t) => [t.slice(0, 19), t[19] === "." ? t.slice(20, -1).replace(/0+$/, "") : ""];
    const [a, b] = [key(time), key(previous)];
    return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
  }

  // The JSON Pointer of the first "[REDACTED]" value without a string <key>_hash sibling (section 3); an array
  // element has no key and so no sibling.
  function findUnbackedRedaction(payload) {
    const stack = [[payload, ""]];
    while (stack.length) {
      const [node, path] = stack.pop();
      if (Array.isArray(node)) {
        for (let i = 0; i < node.length; i++) {
          const value = node[i];
          if (value === REDACTED) return `${path}/${i}`;
          if (typeof value === "object" && value !== null && !(value instanceof IntegralFloat)) {
            stack.push([value, `${path}/${i}`]);
          }
        }
      } else {
        for (const key of Object.keys(node)) {
          const value = node[key];
          const pointer = `${path}/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
          if (value === REDACTED) {
            if (typeof node[key + REDACTION_HASH_SUFFIX] !== "string" || !hasOwn(node, key + REDACTION_HASH_SUFFIX)) {
              return pointer;
            }
          } else if (typeof value === "object" && value !== null && !(value instanceof IntegralFloat)) {
            stack.push([value, pointer]);
          }
        }
      }
    }
    return null;
  }

  function finishOutcome(state) {
    let found = state.violation;
    if (found === null && state.count === 0) found = violation("EMPTY_LOG", "the input holds no events");
    const warnings = [...state.warnings];
    if (state.withheld.length) {
      warnings.push(
        violation("PAYLOAD_WITHHELD",
            `${state.withheld.length} payload(s) withheld from this export; their hashes still chain`, null, null, {
          sequences: state.withheld,
        }),
      );
    }
    for (const [type, count] of state.warningCounts) {
      if (count > MAX_WARNINGS_PER_TYPE) warnings.push(violation(type,
          `${count - MAX_WARNINGS_PER_TYPE} more ${type} warnings not listed`));
    }
    return {
      violation: found,
      warnings,
      session_id: state.sessionId,
      authority: state.authority,
      event_count: state.count,
      first_event_hash: state.firstHash,
      final_event_hash: state.lastHash,
      sealed: state.sealIndex !== null,
      seal_signed: state.sealSigned,
      seal_key_id: state.sealKeyId,
      seal_key_trusted: state.sealKeyTrusted,
      seal_valid_if_trusted: state.sealValidIfTrusted,
      seal_payload_hash: state.sealPayloadHash,
      complete: state.hasEnd,
      has_log_drop: state.hasLogDrop,
      total_drops: state.totalDrops,
    };
  }

  // Section 6. assumeKeyTrusted recomputes the class an export document may claim (section 9).
  function classify(outcome, assumeKeyTrusted) {
    if (outcome.authority !== "server") return [NON_AUTHORITATIVE, []];
    const reasons = [];
    if (!outcome.sealed) reasons.push("UNSEALED_SESSION");
    else if (!outcome.seal_signed) reasons.push("UNSIGNED_SEAL");
    else if (assumeKeyTrusted) {
      if (!outcome.seal_valid_if_trusted) return [NON_AUTHORITATIVE, []];
    } else if (!outcome.seal_key_trusted) reasons.push("UNTRUSTED_SEAL_KEY");
    if (!outcome.complete) reasons.push("MISSING_SESSION_END");
    if (outcome.has_log_drop) reasons.push("LOG_DROP_PRESENT");
    return reasons.length ? [PARTIAL, reasons] : [AUTHORITATIVE, []];
  }

  // Section 9: what the document states against what its events prove, as if the seal's key were trusted.
  function claimViolation(document, outcome, documentSealHash) {
    const [claimable, reasons] = classify(outcome, true);
    const problems = {};
    const same = (a, b) => a === b || (a instanceof IntegralFloat && b instanceof IntegralFloat && a.value === b.value);
    const compare = (name, stated, recomputed) => {
      if (!same(stated === undefined ? null : stated, recomputed)) problems[name] = { stated, recomputed };
    };
    compare("evidence_class", document.evidence_class, claimable);
    compare("session_id", document.session_id, outcome.session_id);
    compare("chain_authority", document.chain_authority, outcome.authority);
    const seal = hasOwn(document, "seal") ? document.seal : null;
    if (seal === null) compare("seal", outcome.seal_payload_hash, null);
    else if (!isObject(seal)) problems.seal = { stated: "not an object", recomputed: outcome.seal_payload_hash };
    else compare("seal", documentSealHash, outcome.seal_payload_hash);
    const stated = document.verification;
    if (!isObject(stated)) {
      problems.verification = { stated: "missing or not an object", recomputed: "a report" };
    } else {
      const passed = outcome.seal_valid_if_trusted || !outcome.seal_signed;
      const recomputed = {
        session_id: outcome.session_id,
        status: passed ? PASS : FAIL,
        authority: outcome.authority,
        sealed: outcome.sealed,
        seal_signed: outcome.seal_signed,
        seal_key_id: outcome.seal_key_id,
        complete: outcome.complete,
        event_count: outcome.event_count,
        total_drops: outcome.total_drops,
        first_event_hash: outcome.first_event_hash,
        final_event_hash: outcome.final_event_hash,
        replay_fingerprint: passed ? outcome.final_event_hash : null,
      };
      for (const key of COMPARED_REPORT_KEYS) compare(`verification.${key}`, stated[key], recomputed[key]);
      compare("verification.evidence_class", stated.evidence_class, claimable);
      const statedReasons = stated.partial_reasons;
      const reasonsMatch =
        Array.isArray(statedReasons) &&
        statedReasons.length === reasons.length &&
        statedReasons.every((reason, i) => reason === reasons[i]);
      if (!reasonsMatch) problems["verification.partial_reasons"] = { stated: statedReasons, recomputed: reasons };
    }
    const names = Object.keys(problems);
    if (!names.length) return null;
    return violation(
      "EXPORT_CLAIM_MISMATCH",
      `the export document states ${names.join(", ")} differently from what its events prove`,
      null,
      null,
      { mismatches: problems },
    );
  }

  function buildReport(outcome, claim) {
    const found = outcome.violation || claim;
    let evidenceClass = NON_AUTHORITATIVE;
    let reasons = [];
    if (found === null) [evidenceClass, reasons] = classify(outcome, false);
    const passed = found === null;
    return {
      session_id: outcome.session_id,
      status: passed ? PASS : FAIL,
      evidence_class: evidenceClass,
      partial_reasons: reasons,
      authority: outcome.authority,
      sealed: outcome.sealed,
      seal_signed: outcome.seal_signed,
      seal_key_id: outcome.seal_key_id,
      seal_key_trusted: outcome.seal_key_trusted,
      complete: outcome.complete,
      event_count: outcome.event_count,
      total_drops: outcome.total_drops,
      first_event_hash: outcome.first_event_hash,
      final_event_hash: outcome.final_event_hash,
      replay_fingerprint: passed ? outcome.final_event_hash : null,
      violations: found === null ? [] : [found],
      warnings: outcome.warnings,
      spec_version: SPEC_VERSION,
    };
  }

  root.AgentOpsVerifier = Object.freeze({
    load,
    prepare,
    CanonicalizationError,
    evaluate,
    parseJSON,
    canonicalize,
    IntegralFloat,
    isKeyId: (text) => typeof text === "string" && KEY_ID.test(text),
  });
})(globalThis);

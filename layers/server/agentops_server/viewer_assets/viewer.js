// AgentOps Replay session viewer: the page around the export document. It shows the session as soon as the
// document is read, verifies it with verifier.js (AgentOpsVerifier) and puts the result on the root element:
// data-verification-status (PASS or FAIL; UNAVAILABLE when the browser offers no WebCrypto, ERROR when the page
// itself failed), data-evidence-class, data-first-violation (a code or empty) and data-verified-events (the events
// checked before the first violation). Nothing here touches the network; document text goes in as textContent.
"use strict";

(function () {
  const verifier = globalThis.AgentOpsVerifier;
  const root = document.documentElement;
  const byId = (id) => document.getElementById(id);
  const ROW_HEIGHT = 24;
  const OVERSCAN = 20;
  const SUMMARY_CHARS = 240;
  const DETAIL_CHARS = 200000;
  const PIN_PREFIX = "pin=";
  const FAILED_TOOL_STATUSES = new Set(["error", "failure", "failed", "timeout"]);
  const EVENT_TYPES = [
    "SESSION_START", "MODEL_REQUEST", "MODEL_RESPONSE", "TOOL_CALL", "TOOL_RESULT", "AGENT_STATE_SNAPSHOT",
    "DECISION_TRACE", "ANNOTATION", "ERROR", "LOG_DROP", "SESSION_END", "CHAIN_SEAL",
  ];

  // ---- the document ------------------------------------------------------------------------------------------

  // The document's exact bytes: base64 of their deflate (zlib) form, inflated by the browser itself.
  async function embeddedBytes() {
    const element = byId("export-document");
    const text = element.textContent.trim();
    let compressed;
    if (typeof Uint8Array.fromBase64 === "function") {
      compressed = Uint8Array.fromBase64(text);
    } else {
      const binary = atob(text);
      compressed = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) compressed[i] = binary.charCodeAt(i);
    }
    if (element.dataset.encoding !== "deflate base64") throw new Error("unknown document encoding");
    // All of it written at once (a Blob's stream would feed it in small pieces, which takes longer).
    const inflater = new DecompressionStream("deflate");
    const writer = inflater.writable.getWriter();
    const ignore = () => {}; // a corrupt stream fails the read below, which reports it
    writer.write(compressed).catch(ignore);
    writer.close().catch(ignore);
    return new Uint8Array(await new Response(inflater.readable).arrayBuffer());
  }

  const isObject = (value) =>
    typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof verifier.IntegralFloat);

  // Plain JSON for display (an integral double shows as its number).
  function displayJSON(value, indent) {
    return JSON.stringify(value, (key, item) => (item instanceof verifier.IntegralFloat ? item.value : item), indent);
  }

  function clip(text, limit) {
    return text.length <= limit ? text : text.slice(0, limit - 1) + "…";
  }

  function shown(value) {
    if (value === undefined) return "";
    if (typeof value === "string") return value;
    return displayJSON(value);
  }

  // ---- the session model -------------------------------------------------------------------------------------

  function buildModel(loaded) {
    const events = loaded.events;
    const count = events.length;
    const model = {
      document: loaded.document,
      events,
      types: new Array(count),
      pairs: new Int32Array(count).fill(-1),
      summaries: new Array(count),
      flags: new Array(count),
      search: null,
      typeCounts: new Map(),
      start: null,
      end: null,
    };
    const openCalls = new Map(); // tool_id -> indexes of calls not yet answered, oldest first
    for (let i = 0; i < count; i++) {
      const event = events[i];
      const type = isObject(event) && typeof event.event_type === "string" ? event.event_type : "(not an event)";
      model.types[i] = type;
      model.typeCounts.set(type, (model.typeCounts.get(type) || 0) + 1);
      const payload = isObject(event) && isObject(event.payload) ? event.payload : null;
      if (type === "SESSION_START" && model.start === null) model.start = i;
      if (type === "SESSION_END" && model.end === null) model.end = i;
      if (payload === null || typeof payload.tool_id !== "string") continue;
      if (type === "TOOL_CALL") {
        if (!openCalls.has(payload.tool_id)) openCalls.set(payload.tool_id, []);
        openCalls.get(payload.tool_id).push(i);
      } else if (type === "TOOL_RESULT") {
        const waiting = openCalls.get(payload.tool_id);
        if (waiting && waiting.length) {
          const call = waiting.shift();
          model.pairs[call] = i;
          model.pairs[i] = call;
        }
      }
    }
    return model;
  }

  function payloadOf(model, i) {
    const event = model.events[i];
    return isObject(event) && isObject(event.payload) ? event.payload : null;
  }
  function isWithheld(model, i) {
    const event = model.events[i];
    return isObject(event) && event.payload_withheld === true;
  }

  function countRedactions(value) {
    let found = 0;
    const stack = [value];
    while (stack.length) {
      const node = stack.pop();
      if (node === "[REDACTED]") found++;
      else if (Array.isArray(node)) stack.push(...node);
      else if (isObject(node)) for (const key of Object.keys(node)) stack.push(node[key]);
    }
    return found;
  }

  // {error, drop, redacted, withheld} for one event, computed when first needed.
  function flagsOf(model, i) {
    let flags = model.flags[i];
    if (flags !== undefined) return flags;
    const type = model.types[i];
    const payload = payloadOf(model, i);
    const status = payload && typeof payload.status === "string" ? payload.status.toLowerCase() : "";
    flags = {
      error:
        type === "ERROR" ||
        (type === "TOOL_RESULT" && FAILED_TOOL_STATUSES.has(status)) ||
        (type === "SESSION_END" && status !== "" && status !== "success"),
      drop: type === "LOG_DROP",
      redacted: payload === null ? 0 : countRedactions(payload),
      withheld: isWithheld(model, i),
    };
    model.flags[i] = flags;
    return flags;
  }

  function summaryOf(model, i) {
    let summary = model.summaries[i];
    if (summary === undefined) {
      summary = clip(describeEvent(model, i).replace(/\s+/g, " "), SUMMARY_CHARS);
      model.summaries[i] = summary;
    }
    return summary;
  }

  // One line saying what the event was (ELS section 3 payloads).
  function describeEvent(model, i) {
    const type = model.types[i];
    if (isWithheld(model, i)) return "payload withheld from this export";
    const p = payloadOf(model, i);
    if (p === null) return "";
    const pair = model.pairs[i];
    const parts = [];
    const add = (label, value) => {
      if (value === undefined || value === null || shown(value) === "") return;
      parts.push(label ? `${label} ${shown(value)}` : shown(value));
    };
    switch (type) {
      case "SESSION_START":
        add("agent", p.agent_id);
        add("env", p.environment);
        add("framework", p.framework);
        break;
      case "SESSION_END":
        add("status", p.status);
        add("", p.reason);
        if (p.duration_ms !== undefined) add("duration", `${shown(p.duration_ms)} ms`);
        break;
      case "MODEL_REQUEST": {
        add("", p.model);
        const messages = Array.isArray(p.messages) ? p.messages : [];
        if (messages.length) {
          const last = messages[messages.length - 1];
          parts.push(`${messages.length} message(s)`);
          if (isObject(last)) add(shown(last.role) + ":", last.content);
        }
        break;
      }
      case "MODEL_RESPONSE":
        add("", p.model);
        add("finish", p.finish_reason);
        add("", p.content);
        break;
      case "TOOL_CALL":
        add("", p.tool_name);
        add("id", p.tool_id);
        add("args", p.args);
        parts.push(pair >= 0 ? `→ result #${pair}` : "no result recorded");
        break;
      case "TOOL_RESULT":
        add("", p.tool_name);
        add("status", p.status);
        if (p.duration_ms !== undefined) add("", `${shown(p.duration_ms)} ms`);
        add("→", p.result);
        if (pair >= 0) parts.push(`← call #${pair}`);
        break;
      case "AGENT_STATE_SNAPSHOT":
        add("checkpoint", p.checkpoint_id);
        add("state", p.state);
        break;
      case "DECISION_TRACE":
        add("", p.decision_id);
        add("—", p.justification);
        break;
      case "ERROR":
        add("", p.error_type);
        add("", p.message);
        if (p.fatal === true) parts.push("(fatal)");
        break;
      case "ANNOTATION":
        add("", p.annotator_id);
        add("", p.annotation_type);
        add("", p.content);
        break;
      case "LOG_DROP":
        parts.push(`gap: ${shown(p.dropped_count)} event(s) dropped`);
        add("reason", p.drop_reason);
        add("range", p.sequence_range);
        add("cumulative", p.cumulative_drops);
        break;
      case "CHAIN_SEAL":
        add("sealed", p.event_count);
        add("by", p.signer_key_id || "(unsigned seal)");
        add("at", p.seal_timestamp);
        break;
      default:
        parts.push(displayJSON(p));
    }
    return parts.join("  ");
  }

  function searchTextOf(model, i) {
    const event = model.events[i];
    const payload = payloadOf(model, i);
    const text = `#${i} ${model.types[i]} ${summaryOf(model, i)} ${isObject(event) ? shown(event.event_id) : ""} ${
      payload === null ? "" : displayJSON(payload)
    }`;
    return text.toLowerCase();
  }

  // ---- the header ----------------------------------------------------------------------------------------------

  function setText(id, text) {
    byId(id).textContent = text;
  }

  function renderHeader(model, loaded) {
    const doc = model.document;
    const sessionId = doc !== null && typeof doc.session_id === "string" ? doc.session_id : "(not stated)";
    setText("fact-session", sessionId);
    document.title = `Session ${sessionId} — AgentOps Replay`;
    if (model.start !== null) {
      const start = payloadOf(model, model.start);
      setText("fact-agent", start === null ? "(SESSION_START payload withheld)" : shown(start.agent_id) || "(none)");
    } else {
      setText("fact-agent", "(no SESSION_START)");
    }
    if (model.end !== null) {
      const end = payloadOf(model, model.end);
      const status = end === null ? "(SESSION_END payload withheld)" : shown(end.status);
      const reason = end !== null && end.reason !== undefined ? ` — ${shown(end.reason)}` : "";
      setText("fact-status", status + reason);
      if (end !== null && end.status !== "success") byId("fact-status").classList.add("problem");
    } else {
      setText("fact-status", "none (no SESSION_END recorded)");
    }
    setText("fact-events", model.events.length.toLocaleString("en-US"));
    setText("fact-claimed", doc !== null ? shown(doc.evidence_class) || "(not stated)" : "(no document)");
    const seal = doc !== null && isObject(doc.seal) ? doc.seal : null;
    setText(
      "fact-seal-key",
      doc === null || doc.seal === null || doc.seal === undefined
        ? "(not sealed)"
        : seal !== null && typeof seal.signer_key_id === "string"
          ? seal.signer_key_id
          : "(unsigned seal)",
    );
    const notes = [];
    if (doc !== null) {
      if (doc.generated_at !== undefined) notes.push(`generated_at ${shown(doc.generated_at)}`);
      if (doc.generator !== undefined) notes.push(`generator ${shown(doc.generator)}`);
      if (Array.isArray(doc.pii_findings)) notes.push(`${doc.pii_findings.length} PII finding(s)`);
      notes.push(
        doc.log_proof === undefined || doc.log_proof === null
          ? "no evidence-log proof"
          : "an evidence-log proof is included (not checked by this page: use agentops-verify)",
      );
    }
    byId("document-facts").textContent =
      `Document: ${loaded.bytes.length.toLocaleString("en-US")} bytes` +
      (notes.length ? `; not evidence: ${notes.join("; ")}.` : ".");
  }

  // ---- the timeline (only the rows in view exist) ---------------------------------------------------------------

  const view = {
    model: null,
    order: new Int32Array(0), // event indexes shown, in sequence order
    selected: -1, // an event index
    hiddenTypes: new Set(),
    onlyFlagged: false,
    query: "",
    violationIndex: -1,
    rows: [],
  };

  function showModel(model) {
    view.model = model;
    view.selected = -1;
    view.hiddenTypes.clear();
    const chips = byId("type-filter");
    chips.textContent = "";
    const types = [...EVENT_TYPES.filter((type) => model.typeCounts.has(type))];
    for (const type of model.typeCounts.keys()) if (!types.includes(type)) types.push(type);
    for (const type of types) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.dataset.type = type;
      chip.setAttribute("aria-pressed", "true");
      chip.textContent = `${type} ${model.typeCounts.get(type).toLocaleString("en-US")}`;
      chip.addEventListener("click", () => {
        if (view.hiddenTypes.has(type)) view.hiddenTypes.delete(type);
        else view.hiddenTypes.add(type);
        chip.setAttribute("aria-pressed", String(!view.hiddenTypes.has(type)));
        applyFilter();
      });
      chips.appendChild(chip);
    }
    applyFilter();
  }

  function listen() {
    const timeline = byId("timeline");
    timeline.addEventListener("scroll", () => requestAnimationFrame(renderRows), { passive: true });
    window.addEventListener("resize", () => requestAnimationFrame(renderRows));
    timeline.addEventListener("click", (event) => {
      const row = event.target.closest(".row");
      if (row) select(Number(row.dataset.index), false);
    });
    let searchTimer = 0;
    byId("search").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => {
        view.query = byId("search").value.trim().toLowerCase();
        applyFilter();
      }, 150);
    });
    byId("only-flagged").addEventListener("change", (event) => {
      view.onlyFlagged = event.target.checked;
      applyFilter();
    });
    document.addEventListener("keydown", onKey);
  }

  function applyFilter() {
    const model = view.model;
    const count = model.events.length;
    const keep = new Int32Array(count);
    let kept = 0;
    if (view.query && model.search === null) model.search = new Array(count);
    for (let i = 0; i < count; i++) {
      if (view.hiddenTypes.has(model.types[i])) continue;
      if (view.onlyFlagged) {
        const flags = flagsOf(model, i);
        if (!(flags.error || flags.drop || flags.redacted || flags.withheld || i === view.violationIndex)) continue;
      }
      if (view.query) {
        if (model.search[i] === undefined) model.search[i] = searchTextOf(model, i);
        if (!model.search[i].includes(view.query)) continue;
      }
      keep[kept++] = i;
    }
    view.order = keep.subarray(0, kept);
    setText("shown-count", `${kept.toLocaleString("en-US")} of ${count.toLocaleString("en-US")} events shown`);
    byId("timeline-spacer").style.height = `${kept * ROW_HEIGHT}px`;
    renderRows();
  }

  function positionOf(index) {
    // view.order is sorted: binary search
    let low = 0;
    let high = view.order.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const value = view.order[middle];
      if (value === index) return middle;
      if (value < index) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }

  function renderRows() {
    const timeline = byId("timeline");
    const spacer = byId("timeline-spacer");
    const first = Math.max(0, Math.floor(timeline.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(view.order.length,
        Math.ceil((timeline.scrollTop + timeline.clientHeight) / ROW_HEIGHT) + OVERSCAN);
    const needed = last - first;
    while (view.rows.length < needed) {
      const row = document.createElement("div");
      row.className = "row";
      row.setAttribute("role", "option");
      for (const part of ["seq", "time", "type", "summary", "flags"]) {
        const span = document.createElement("span");
        span.className = part;
        row.appendChild(span);
      }
      spacer.appendChild(row);
      view.rows.push(row);
    }
    for (let slot = 0; slot < view.rows.length; slot++) {
      const row = view.rows[slot];
      const position = first + slot;
      if (slot >= needed) {
        row.hidden = true;
        continue;
      }
      row.hidden = false;
      fillRow(row, view.order[position], position);
    }
  }

  function fillRow(row, i, position) {
    const model = view.model;
    const event = model.events[i];
    const flags = flagsOf(model, i);
    row.dataset.index = String(i);
    row.style.top = `${position * ROW_HEIGHT}px`;
    const [seq, time, type, summary, marks] = row.children;
    seq.textContent = `#${i}`;
    time.textContent = isObject(event) && typeof event.timestamp_wall === "string" ? event.timestamp_wall : "";
    type.textContent = model.types[i];
    summary.textContent = summaryOf(model, i);
    marks.textContent = "";
    const addFlag = (kind, text) => {
      const flag = document.createElement("span");
      flag.className = `flag ${kind}`;
      flag.textContent = text;
      marks.appendChild(flag);
    };
    if (i === view.violationIndex) addFlag("violation", view.violationCode);
    if (flags.error) addFlag("error", "error");
    if (flags.drop) addFlag("drop", "gap");
    if (flags.redacted) addFlag("redacted", `[REDACTED]×${flags.redacted}`);
    if (flags.withheld) addFlag("withheld", "withheld");
    row.className = "row";
    if (flags.error) row.classList.add("error");
    if (flags.drop) row.classList.add("drop");
    if (flags.withheld) row.classList.add("withheld");
    if (i === view.violationIndex) row.classList.add("violation");
    if (i === view.selected) row.classList.add("selected");
    row.setAttribute("aria-selected", String(i === view.selected));
  }

  function select(index, scroll = true) {
    if (index < 0 || index >= view.model.events.length) return;
    view.selected = index;
    root.dataset.selectedEvent = String(index);
    if (scroll) {
      let position = positionOf(index);
      if (position < 0) {
        // the event is filtered out: show everything again so it can be seen
        view.hiddenTypes.clear();
        view.onlyFlagged = false;
        view.query = "";
        byId("search").value = "";
        byId("only-flagged").checked = false;
        for (const chip of byId("type-filter").children) chip.setAttribute("aria-pressed", "true");
        applyFilter();
        position = positionOf(index);
      }
      const timeline = byId("timeline");
      const top = position * ROW_HEIGHT;
      if (top < timeline.scrollTop) timeline.scrollTop = top;
      else if (top + ROW_HEIGHT > timeline.scrollTop + timeline.clientHeight) {
        timeline.scrollTop = top + ROW_HEIGHT - timeline.clientHeight;
      }
    }
    renderRows();
    renderDetail(index);
  }

  function move(step) {
    if (!view.order.length) return;
    const position = positionOf(view.selected);
    const next = position < 0 ? 0 : Math.min(view.order.length - 1, Math.max(0, position + step));
    select(view.order[next]);
  }

  function onKey(event) {
    const target = event.target;
    if (target instanceof HTMLInputElement) {
      if (event.key === "Escape") target.blur();
      if (event.key === "Enter" && target.id === "search") byId("timeline").focus();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const page = Math.max(1, Math.floor(byId("timeline").clientHeight / ROW_HEIGHT) - 1);
    const actions = {
      j: () => move(1),
      ArrowDown: () => move(1),
      k: () => move(-1),
      ArrowUp: () => move(-1),
      PageDown: () => move(page),
      PageUp: () => move(-page),
      Home: () => view.order.length && select(view.order[0]),
      End: () => view.order.length && select(view.order[view.order.length - 1]),
      Enter: () => {
        if (view.selected < 0) move(0);
        else if (view.model.pairs[view.selected] >= 0) select(view.model.pairs[view.selected]);
        else byId("detail").focus();
      },
      "/": () => byId("search").focus(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  // ---- the detail pane ------------------------------------------------------------------------------------------

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function renderDetail(i) {
    const model = view.model;
    const event = model.events[i];
    const pane = byId("detail");
    pane.textContent = "";
    pane.appendChild(element("h2", `#${i} ${model.types[i]}`));
    if (i === view.violationIndex) {
      pane.appendChild(element("p", `${view.violationCode}: ${view.violationMessage}`, "problem"));
    }
    const pair = model.pairs[i];
    if (pair >= 0) {
      const links = element("p", undefined, "links");
      const button = element("button", model.types[i] === "TOOL_CALL" ? `Its result: #${pair}` : `Its call: #${pair}`);
      button.type = "button";
      button.addEventListener("click", () => select(pair));
      links.appendChild(button);
      links.appendChild(element("span", "(Enter)", "note"));
      pane.appendChild(links);
    }
    if (!isObject(event)) {
      pane.appendChild(element("pre", clip(shown(event), DETAIL_CHARS)));
      return;
    }
    const table = element("table");
    for (const name of Object.keys(event)) {
      if (name === "payload") continue;
      const tr = element("tr");
      tr.appendChild(element("th", name));
      tr.appendChild(element("td", shown(event[name])));
      table.appendChild(tr);
    }
    pane.appendChild(table);
    const flags = flagsOf(model, i);
    if (flags.withheld) {
      pane.appendChild(
        element("p", "The payload was withheld from this export. Its hash (payload_hash) still chains.", "note"),
      );
      return;
    }
    if (flags.redacted) {
      pane.appendChild(
        element("p", `${flags.redacted} value(s) were redacted by the producer before hashing ("[REDACTED]").`, "note"),
      );
    }
    pane.appendChild(element("h2", "Payload"));
    const text = displayJSON(event.payload, 2) ?? "(no payload)";
    const more = (text.length - DETAIL_CHARS).toLocaleString("en-US");
    pane.appendChild(
      element(
        "pre",
        text.length > DETAIL_CHARS ? `${text.slice(0, DETAIL_CHARS)}\n… (${more} more characters)` : text,
      ),
    );
  }

  // ---- verification ---------------------------------------------------------------------------------------------

  const REASONS = {
    UNSEALED_SESSION: "the session is not sealed",
    UNSIGNED_SEAL: "the seal is not signed",
    UNTRUSTED_SEAL_KEY: "the seal's key is not pinned: paste the key id you trust above",
    MISSING_SESSION_END: "no SESSION_END was recorded",
    LOG_DROP_PRESENT: "events were dropped (LOG_DROP)",
  };

  function pinFromAddress() {
    const fragment = decodeURIComponent(location.hash.replace(/^#/, ""));
    for (const part of fragment.split("&")) if (part.startsWith(PIN_PREFIX)) return part.slice(PIN_PREFIX.length);
    return "";
  }

  function showReport(report) {
    const status = report.status;
    const violation = report.violations[0] || null;
    root.dataset.verificationStatus = status;
    root.dataset.evidenceClass = report.evidence_class;
    root.dataset.firstViolation = violation ? violation.type : "";
    root.dataset.verifiedEvents = String(report.verified_events);
    globalThis.agentopsReport = report;

    const tone = status !== "PASS" ? "fail" : report.evidence_class === "AUTHORITATIVE_EVIDENCE" ? "pass" : "partial";
    const badge = byId("result-badge");
    badge.className = `badge ${tone}`;
    badge.textContent = status;
    setText("fact-verified", report.evidence_class);
    const summary = byId("verification-summary");
    summary.className = tone;
    summary.textContent =
      status === "PASS"
        ? `PASS — ${report.event_count.toLocaleString("en-US")} events verified in this browser: every payload ` +
          `hash, event hash and chain link recomputed, the order and authority rules checked` +
          (report.seal_key_trusted ? ", and the seal's signature verified under the key id you pinned." : ".")
        : `FAIL — ${violation.type}` +
          (violation.event_sequence !== null ? ` at event #${violation.event_sequence}` : "") +
          `: ${violation.message}`;
    const details = byId("verification-details");
    details.textContent = "";
    if (violation && violation.event_sequence !== null) {
      const item = element("li", `${report.verified_events.toLocaleString("en-US")} event(s) verified before it. `);
      const button = element("button", `Show event #${violation.event_sequence}`);
      button.type = "button";
      button.addEventListener("click", () => select(violation.event_sequence));
      item.appendChild(button);
      details.appendChild(item);
    }
    for (const reason of report.partial_reasons) details.appendChild(element("li",
        `${reason}: ${REASONS[reason] || reason}`));
    if (report.replay_fingerprint) details.appendChild(element("li", `replay fingerprint ${report.replay_fingerprint}`,
        "mono"));
    for (const warning of report.warnings) {
      const where = warning.event_sequence !== null ? ` at #${warning.event_sequence}` : "";
      details.appendChild(element("li", `warning ${warning.type}${where}: ${warning.message}`));
    }
    details.appendChild(element("li", `document SHA-256 ${report.document_sha256}`, "mono"));

    view.violationIndex = violation && violation.event_sequence !== null ? violation.event_sequence : -1;
    view.violationCode = violation ? violation.type : "";
    view.violationMessage = violation ? violation.message : "";
    renderRows();
    if (view.selected >= 0) renderDetail(view.selected);
  }

  function pinNote(pin, report) {
    const note = byId("pin-note");
    const input = byId("pin-input");
    input.classList.toggle("invalid", pin !== "" && !verifier.isKeyId(pin));
    if (pin === "") note.textContent = "No key pinned: the class is at most PARTIAL (UNTRUSTED_SEAL_KEY).";
    else if (!verifier.isKeyId(pin)) note.textContent = "Not a key id: expected sha256: and 64 lowercase hex digits.";
    else if (report && report.seal_key_trusted) note.textContent = "The seal's signature verifies under this key.";
    else if (report && report.seal_key_id && report.seal_key_id !== pin) {
      note.textContent = "The seal names another key.";
    }
    else note.textContent = "";
  }

  async function main() {
    performance.mark("viewer-start");
    const loaded = verifier.load(await embeddedBytes());
    performance.mark("viewer-parsed");
    const model = buildModel(loaded);
    renderHeader(model, loaded);
    listen();
    showModel(model);
    const pinInput = byId("pin-input");
    pinInput.value = pinFromAddress();
    pinNote(pinInput.value, null);
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    performance.mark("viewer-first-screen");
    root.dataset.firstScreen = "shown";

    if (!globalThis.crypto || !crypto.subtle) {
      root.dataset.verificationStatus = "UNAVAILABLE";
      setText("verification-summary", "This browser offers no WebCrypto here, so the page cannot verify the chain.");
      return;
    }
    const progress = byId("verification-progress");
    const onProgress = (done, total) => {
      progress.value = total ? done / total : 1;
      const [hashed, all] = [done.toLocaleString("en-US"), total.toLocaleString("en-US")];
      setText("verification-summary", `Verifying in this browser… ${hashed} of ${all} events hashed`);
    };
    // The document was not in canonical form, so it was read again strictly: show what that reading holds.
    const onReread = (reread) => {
      const again = buildModel(reread);
      renderHeader(again, reread);
      showModel(again);
    };
    const prepared = await verifier.prepare(loaded, onProgress, onReread);
    performance.mark("viewer-hashed");
    progress.classList.add("done");
    const check = () => {
      const pin = pinInput.value.trim();
      const report = verifier.evaluate(prepared, verifier.isKeyId(pin) ? pin : null);
      pinNote(pin, report);
      showReport(report);
      return report;
    };
    check();
    performance.mark("viewer-verified");
    pinInput.addEventListener("input", () => {
      const pin = pinInput.value.trim();
      if (verifier.isKeyId(pin)) {
        try {
          history.replaceState(null, "", `#${PIN_PREFIX}${pin}`);
        } catch (error) {
          // some browsers refuse history changes on file:// pages; the pin still applies
        }
      }
      check();
    });
    window.addEventListener("hashchange", () => {
      pinInput.value = pinFromAddress();
      check();
    });
  }

  main().catch((error) => {
    root.dataset.verificationStatus = "ERROR";
    setText("verification-summary", `The viewer failed: ${error && error.message ? error.message : error}`);
    throw error;
  });
})();

"""The replay viewer opening a 100,000-event session (issue 15): first screen and verification within 10 s.

Builds a sealed server-authority session of ``--events`` events (default 100,000) with varied, realistic payloads:
model requests and responses with non-ASCII and astral text, tool calls paired with results (some failing), errors,
decisions with a redacted value, annotations, state snapshots, usage figures and costs as doubles. It is exported
as the exporter writes a document (every line copied, the report of the verifier library), turned into the viewer
page by ``render_viewer`` and opened from disk in headless Chromium (Debian's package, ``make browser``) with the
seal's key id pinned through the address. Figures, as one JSON object:

- ``document_bytes``, ``page_bytes``: the export document and the page (deflated, then base64);
- ``render_seconds``: ``render_viewer`` in this process;
- ``first_screen_seconds``: from the navigation to the first rows drawn (the page's ``viewer-first-screen`` mark;
  the document has been inflated, decoded and read by the browser's JSON.parse by then);
- ``verified_seconds``: from the navigation to the verdict on the root element (every payload hash and event hash
  recomputed with WebCrypto, the seal signature checked); ``within_target`` compares it with 10 s;
- ``browser_cpu_seconds_to_verdict``: CPU time all of Chromium's processes used from the navigation to the verdict,
  next to ``load_average_1min`` and ``cpus``: on a machine busy with other work the wall figures mostly measure
  waiting for a CPU, and the CPU seconds say what the same open costs where the browser has the machine to itself;
- ``phases``: the page's own marks from its time origin: ``viewer-start`` (the HTML is read), ``viewer-parsed``,
  ``viewer-first-screen``, ``viewer-hashed`` (canonical form proved, every hash computed), ``viewer-verified``;
- same-run baselines in the same page on the same bytes: ``baseline_json_parse_seconds`` (the browser's native
  ``JSON.parse`` of the document alone, the least a reader pays) and
  ``baseline_digest_seconds`` (two WebCrypto SHA-256 calls per event over inputs of the events' sizes, the least any
  WebCrypto verification pays); ``python_verify_seconds``: ``agentops-verify``'s library on the same document;
- ``search_seconds``: typing a word into the search field until the filtered count shows, the first time (the page
  builds its search text then) and again.

What it does not cover: other browsers and slower machines (the figure is this machine's, busy with whatever else
runs); memory (Chromium's peak is not measured); scrolling smoothness beyond one search; documents with log proofs
(the page does not check them); the size limits of the export route itself.

Usage: ``python benchmarks/viewer_open.py [--events N]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from agentops_server.viewer import render_viewer
from agentops_verify import TrustStore, canonicalize, verify_bytes

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tests.browser.chromium import running_browser
from tests.browser.documents import export_document
from tests.support.chains import DEFAULT_START_TIME, build_chain
from tests.support.keys import make_signer

TARGET_SECONDS = 10.0

_TOPICS = ("quarterly revenue", "Kündigungsfrist", "東京の天気", "délai de livraison", "latency budget", "churn risk")
_TOOLS = ("web_search", "sql_query", "calculator", "send_email", "read_file")


def realistic_payload(sequence_number: int) -> tuple[str, dict[str, Any]]:
    """The ordinary events of a busy agent, cycling through a conversation turn of eight events."""
    turn, step = divmod(sequence_number - 1, 8)
    topic = _TOPICS[turn % len(_TOPICS)]
    tool = _TOOLS[turn % len(_TOOLS)]
    tool_id = f"call-{turn}"
    if step == 0:
        return "MODEL_REQUEST", {
            "model": "gpt-4.1",
            "provider": "openai",
            "messages": [
                {"role": "system", "content": "You are a careful analyst. Answer with sources."},
                {"role": "user", "content": f"Turn {turn}: what changed in {topic}? Give figures 😀 and a summary."},
            ],
            "parameters": {"temperature": 0.2, "top_p": 0.95, "max_tokens": 800},
        }
    if step == 1:
        return "TOOL_CALL", {"tool_name": tool, "tool_id": tool_id, "args": {"query": f"{topic} {turn}", "limit": 10}}
    if step == 2:
        failed = turn % 17 == 0
        return "TOOL_RESULT", {
            "tool_name": tool,
            "tool_id": tool_id,
            "status": "error" if failed else "success",
            "duration_ms": 120 + turn % 900,
            "result": {"rows": [{"id": n, "value": n * 1.25, "label": f"{topic} #{n}"} for n in range(3)]},
        }
    if step == 3 and turn % 17 == 0:
        return "ERROR", {"error_type": "ToolError", "message": f"{tool} timed out after 30 s", "fatal": False}
    if step == 3:
        return "AGENT_STATE_SNAPSHOT", {
            "state": {"turn": turn, "memory_items": turn % 40},
            "checkpoint_id": f"cp-{turn}",
        }
    if step == 4:
        return "DECISION_TRACE", {
            "decision_id": f"d-{turn}",
            "inputs": {"customer_email": "[REDACTED]", "customer_email_hash": f"{turn:064x}"},
            "outputs": {"action": "reply", "confidence": 0.87},
            "justification": f"the {tool} result answers the question about {topic}",
        }
    if step == 5:
        return "MODEL_RESPONSE", {
            "model": "gpt-4.1",
            "content": f"In turn {turn}, {topic} moved by {turn * 0.1:.1f} % — naïve estimate; see sources.\u2028Done.",
            "finish_reason": "stop",
            "usage": {
                "prompt_tokens": 512 + turn % 300,
                "completion_tokens": 96,
                "cost_usd": 0.000123 * (turn % 50 + 1),
            },
        }
    if step == 6:
        return "ANNOTATION", {"annotator_id": "qa-bot", "annotation_type": "rating", "content": {"score": turn % 5}}
    return "MODEL_REQUEST", {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "Summarize in 1 line."}]}


def build_document(events: int) -> tuple[bytes, str]:
    signer = make_signer()
    chain = build_chain(
        events - 1,
        session_id=str(uuid.uuid4()),
        signer=signer,
        payload_factory=realistic_payload,
        start_time=DEFAULT_START_TIME - timedelta(hours=1),
    )
    return export_document([canonicalize(event) for event in chain], signers=[signer]), signer.key_id


BASELINE_SCRIPT = """(async () => {
  const compressed = Uint8Array.fromBase64(document.getElementById("export-document").textContent.trim());
  const inflated = new Blob([compressed]).stream().pipeThrough(new DecompressionStream("deflate"));
  const decoded = new TextDecoder().decode(await new Response(inflated).arrayBuffer());
  let start = performance.now();
  const parsed = JSON.parse(decoded);
  const parseSeconds = (performance.now() - start) / 1000;
  const encoder = new TextEncoder();
  const inputs = parsed.events.map((event) => encoder.encode(JSON.stringify(event.payload)));
  const envelope = encoder.encode("x".repeat(330));
  start = performance.now();
  for (let i = 0; i < inputs.length; i += 2048) {
    const batch = [];
    for (const input of inputs.slice(i, i + 2048)) {
      batch.push(crypto.subtle.digest("SHA-256", input), crypto.subtle.digest("SHA-256", envelope));
    }
    await Promise.all(batch);
  }
  return JSON.stringify({parse: parseSeconds, digest: (performance.now() - start) / 1000});
})()"""

SHOWN_COUNT = "document.getElementById('shown-count').textContent"
CLEAR_SEARCH = """(() => {
  const search = document.getElementById("search");
  search.value = "";
  search.dispatchEvent(new Event("input"));
  search.focus();
})()"""
MARKS_SCRIPT = """JSON.stringify(Object.fromEntries(
  performance.getEntriesByType("mark").map((mark) => [mark.name, mark.startTime / 1000])))"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    arguments = parser.parse_args()

    started = time.perf_counter()
    document, key_id = build_document(arguments.events)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    python_report = verify_bytes(document, trust=TrustStore(pinned_ids=[key_id]))
    python_seconds = time.perf_counter() - started
    started = time.perf_counter()
    page = render_viewer(document)
    render_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder, running_browser() as browser:
        path = Path(folder) / "viewer.html"
        path.write_bytes(page)
        tab = browser.page()
        cpu_before = browser.cpu_seconds()
        started = time.perf_counter()
        url = tab.open(path, f"pin={key_id}")
        tab.wait_for("document.documentElement !== null && document.documentElement.dataset.firstScreen", 120, 0.01)
        first_screen_wall = time.perf_counter() - started
        tab.wait_for("document.documentElement.dataset.verificationStatus", 120, 0.01)
        verified_wall = time.perf_counter() - started
        browser_cpu = browser.cpu_seconds() - cpu_before
        attributes = json.loads(tab.evaluate("JSON.stringify(Object.assign({}, document.documentElement.dataset))"))
        marks = json.loads(tab.evaluate(MARKS_SCRIPT))
        requests = [request for request in tab.requests if request != url.split("#")[0] and request != url]

        searches = []
        everything = tab.evaluate(SHOWN_COUNT)
        for _ in range(2):
            tab.evaluate(CLEAR_SEARCH)
            tab.wait_for(f"{SHOWN_COUNT} === {json.dumps(everything)}", 120, 0.01)
            started = time.perf_counter()
            tab.type_text("timed out")
            tab.wait_for(f"{SHOWN_COUNT} !== {json.dumps(everything)}", 120, 0.005)
            searches.append(time.perf_counter() - started)

        baseline = json.loads(tab.evaluate(BASELINE_SCRIPT, timeout=300))

    result = {
        "events": arguments.events,
        "document_bytes": len(document),
        "page_bytes": len(page),
        "build_seconds": round(build_seconds, 2),
        "render_seconds": round(render_seconds, 3),
        "first_screen_seconds": round(marks.get("viewer-first-screen", first_screen_wall), 3),
        "verified_seconds": round(marks.get("viewer-verified", verified_wall), 3),
        "wall_seconds_to_first_screen": round(first_screen_wall, 3),
        "wall_seconds_to_verdict": round(verified_wall, 3),
        "within_target": max(verified_wall, marks.get("viewer-verified", 0)) <= TARGET_SECONDS,
        "browser_cpu_seconds_to_verdict": round(browser_cpu, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "target_seconds": TARGET_SECONDS,
        "phases": {name: round(value, 3) for name, value in sorted(marks.items(), key=lambda item: item[1])},
        "verdict": {
            "status": attributes.get("verificationStatus"),
            "evidence_class": attributes.get("evidenceClass"),
            "verified_events": attributes.get("verifiedEvents"),
            "python_status": python_report.status,
            "python_evidence_class": python_report.evidence_class,
        },
        "baseline_json_parse_seconds": round(baseline["parse"], 3),
        "baseline_digest_seconds": round(baseline["digest"], 3),
        "python_verify_seconds": round(python_seconds, 3),
        "search_seconds": [round(value, 3) for value in searches],
        "network_requests": requests,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A local chat-completions server for testing gr-synth; injects faults on command.

Listens on 127.0.0.1 only (python3 standard library only). It reads the
ground truth from the synthesis system prompt ("Request: X" ... after
"Answers:") and answers with deterministic reasoning steps ending in that
answer block, so that the same request always gets the same text.

Faults, by request:
  * A directive in the user message, [[faults:A,B,C]], scripts the answers to
    the 1st, 2nd, 3rd attempt of that exact request body (later ones: ok). A
    token ending in "*" repeats forever. Tokens:
      ok  429  429ra=N (Retry-After: N)  500  502  503  400  401  404
      slow (sleep --slow seconds first)  badjson  wrong (wrong labels)
      empty (empty content)  nocontent  drop (close without a reply)
      partial (close mid-body)  trail (text after the answer block)
      echokey (a wrong answer quoting the Authorization header and the path)
      echo404 (a 404 whose message quotes the path and the Authorization header)
  * --fault-rate P: without a directive, attempt n of a body (n <= --max-faults)
    fails with probability P, the fault drawn from --faults; deterministic in
    (--fault-seed, body, n).
GET /stats returns the counters as JSON; POST /reset clears them.
"""
import argparse
import hashlib
import json
import re
import socket
import threading
import time
from urllib.parse import urlsplit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ATTEMPTS = {}  # body digest -> attempts seen
STATS = {"requests": 0, "ok": 0, "faults": {}, "ok_by_body": {}, "connections": 0}
ARGS = None
DIRECTIVE = re.compile(r"\[\[faults:([^\]]*)\]\]")


def digest(b):
    return hashlib.sha256(b).hexdigest()


def unit(*parts):
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def labels_from_system(system):
    out = {}
    tail = system.split("Answers:", 1)[1] if "Answers:" in system else ""
    for name in ("Request", "Completion", "Response"):
        m = re.search(r"^%s: *(\S+)" % name, tail, re.M)
        out[name] = m.group(1) if m else "None"
    return out


OPPOSITE = {"harmful": "unharmful", "unharmful": "harmful", "refusal": "compliance",
            "compliance": "refusal", "None": "harmful"}


def answer_text(user, labels, wrong=False):
    h = digest(user.encode())
    snippet = user.split("\n")[1][:40] if "\n" in user else user[:40]
    parts = []
    names = [("Request", "the human user's request"), ("Completion", "the AI assistant's response"),
             ("Response", "the AI assistant's response")]
    for t, (name, what) in enumerate(names):
        parts.append("# Task %d\n" % (t + 1))
        steps = 1 + int(h[t * 2:t * 2 + 2], 16) % 3
        for s in range(steps):
            parts.append("## Reasoning Step %d: Consider %s (%s, part %d).\nIt reads \u201c%s\u201d.\n"
                         % (s + 1, what, name.lower(), s + 1, snippet))
        parts.append("## Conclusion for Task %d: %s.\n" % (t + 1, labels[name]))
    block = dict(labels)
    if wrong:
        key = "Request" if labels["Request"] != "None" else ("Response" if labels["Response"] != "None" else "Completion")
        block[key] = OPPOSITE[labels[key]]
    parts.append("---\n\nAnswers: \nRequest: %s\nCompletion: %s\nResponse: %s\n"
                 % (block["Request"], block["Completion"], block["Response"]))
    return "\n".join(parts)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle holds
    # the body until the client's delayed ACK, adding ~40-200 ms per request
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        with LOCK:
            STATS["connections"] += 1

    def send_json(self, code, obj, headers=()):
        body = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                s = dict(STATS)
                s["ok_by_body"] = dict(STATS["ok_by_body"])
            self.send_json(200, s)
        else:
            self.send_json(404, {"error": {"message": "no such path"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        if self.path == "/reset":
            with LOCK:
                ATTEMPTS.clear()
                STATS.update({"requests": 0, "ok": 0, "faults": {}, "ok_by_body": {}, "connections": 0})
            return self.send_json(200, {})
        if not urlsplit(self.path).path.endswith("/chat/completions"):
            return self.send_json(404, {"error": {"message": "unknown path " + self.path}})
        if ARGS.key and self.headers.get("Authorization") != "Bearer " + ARGS.key:
            return self.send_json(401, {"error": {"message": "Incorrect API key provided: %s"
                                                  % self.headers.get("Authorization", "")}})
        try:
            req = json.loads(raw)
            msgs = req["messages"]
            system = next(m["content"] for m in msgs if m["role"] == "system")
            user = next(m["content"] for m in msgs if m["role"] == "user")
        except Exception as e:  # noqa: BLE001 - any malformed request is a 400
            return self.send_json(400, {"error": {"message": "bad request: %s" % e}})
        key = digest(raw)
        with LOCK:
            ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
            attempt = ATTEMPTS[key]
            STATS["requests"] += 1
        fault = "ok"
        m = DIRECTIVE.search(user)
        if m:
            seq = [t.strip() for t in m.group(1).split(",") if t.strip()]
            if seq:
                i = attempt - 1
                if i < len(seq):
                    fault = seq[i]
                elif seq[-1].endswith("*"):
                    fault = seq[-1]
                fault = fault.rstrip("*")
        elif ARGS.fault_rate > 0 and attempt <= ARGS.max_faults:
            if unit(ARGS.fault_seed, key, attempt) < ARGS.fault_rate:
                kinds = ARGS.faults.split(",")
                fault = kinds[int(unit("kind", ARGS.fault_seed, key, attempt) * len(kinds))]
        with LOCK:
            STATS["faults"][fault] = STATS["faults"].get(fault, 0) + 1
        self.serve(fault, req, system, user, key)

    def serve(self, fault, req, system, user, key):
        if fault.startswith("429"):
            hdr = [("Retry-After", fault.split("=", 1)[1])] if "=" in fault else []
            return self.send_json(429, {"error": {"message": "Rate limit reached", "type": "requests"}}, hdr)
        if fault in ("500", "502", "503", "400", "401", "404"):
            return self.send_json(int(fault), {"error": {"message": "injected %s" % fault}})
        if fault == "echo404":  # an error that quotes the path and the key it was sent
            return self.send_json(404, {"error": {"message": "no model at %s for %s" % (
                self.path, self.headers.get("Authorization", ""))}})
        if fault == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "partial":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "5000")
            self.end_headers()
            try:
                self.wfile.write(b'{"id":"x","choices":[{"mess')
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault == "badjson":
            return self.send_json(200, b'{"id": "x", "choices": [{"message": {"content": "half')
        if fault == "slow":
            time.sleep(ARGS.slow)
        elif ARGS.latency > 0:
            time.sleep(ARGS.latency)
        labels = labels_from_system(system)
        content = answer_text(user, labels, wrong=(fault == "wrong"))
        if fault == "empty":
            content = ""
        if fault == "trail":
            content += "\nI hope this helps!\n"
        if fault == "echokey":  # a wrong answer that quotes the credentials it was sent
            content = answer_text(user, labels, wrong=True) + "\n(sent %s to %s with %s)\n" % (
                self.headers.get("Authorization", ""), self.path, self.headers.get("Authorization", "").split(" ")[-1])
        message = {"role": "assistant", "content": None if fault == "nocontent" else content}
        if fault == "ok":
            with LOCK:
                STATS["ok"] += 1
                STATS["ok_by_body"][key[:16]] = STATS["ok_by_body"].get(key[:16], 0) + 1
        body = {
            "id": "chatcmpl-" + key[:12], "object": "chat.completion", "created": 0,
            "model": req.get("model", "test-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": (len(system) + len(user)) // 4,
                      "completion_tokens": len(content) // 4,
                      "total_tokens": (len(system) + len(user)) // 4 + len(content) // 4},
        }
        self.send_json(200, body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # a client that goes away (killed mid-request, as the tests do) is no news
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--key", help="require this API key")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--fault-seed", default="1")
    p.add_argument("--max-faults", type=int, default=2)
    p.add_argument("--faults", default="429,429ra=1,500,502,503,slow,badjson,wrong,empty,drop,partial")
    p.add_argument("--slow", type=float, default=2.0, help="seconds a slow reply waits")
    p.add_argument("--latency", type=float, default=0.0, help="seconds every answer takes (like a real model)")
    ARGS = p.parse_args()
    srv = Server(("127.0.0.1", ARGS.port), Handler)
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        import os
        os.replace(ARGS.port_file + ".tmp", ARGS.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

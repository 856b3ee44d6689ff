"""A fault-injecting HTTP proxy in front of an S3 API (moto), for the storage tests.

    faultproxy.py PORT UPSTREAM RULES LOG

Listens on 127.0.0.1:PORT and forwards every request to UPSTREAM (http://127.0.0.1:N). Before
each request it reads RULES, a JSON list of faults, so a test can change them while it runs:

    {"method": "PUT", "match": "_staging/labels", "action": "flip", "count": 1}

- method: the request method the fault applies to;
- match: a substring of the request path (percent-decoded, with its query), or a list of substrings that must
  all be in it;
- action: "flip" inverts one byte in the middle of the request body (PUT) or of the response
  body (GET); "short" answers a GET with the first half of its body and a Content-Length to
  match, keeping the Content-Range of the whole range, as a misbehaving store or middlebox
  would; "status" answers with the rule's "status" (403, 503, ...) and an S3 error body
  without asking upstream; "delay" holds the request for the rule's "seconds", then forwards
  it whether or not the client is still there (a PUT in flight when its sender is killed),
  and logs a "landed" line once upstream has answered;
- count: how many matching requests get the fault (a negative count: all of them);
- ranged (optional): true to apply only to requests with a Range header, false only to
  requests without one;
- range (optional): a prefix the Range header must start with ("bytes=4-" is the first
  column chunk of a Parquet file, after its magic number).

Every fault applied is appended to LOG as one JSON line, so a test can tell that it happened.
"""

import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

PORT, UPSTREAM, RULES, LOG = int(sys.argv[1]), urlparse(sys.argv[2]), sys.argv[3], sys.argv[4]
LOCK = threading.Lock()
USED = {}  # rule index -> times applied
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


def rules():
    try:
        with open(RULES) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def log(entry):
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def take(method, path, range_header):
    """The first rule that applies to this request, counted; None if none."""
    with LOCK:
        for i, rule in enumerate(rules()):
            wanted = rule["match"] if isinstance(rule["match"], list) else [rule["match"]]
            if rule["method"] != method or not all(m in path for m in wanted):
                continue
            if "ranged" in rule and rule["ranged"] != (range_header is not None):
                continue
            if "range" in rule and not (range_header or "").startswith(rule["range"]):
                continue
            used = USED.get((i, json.dumps(rule, sort_keys=True)), 0)
            if 0 <= rule["count"] <= used:
                continue
            USED[(i, json.dumps(rule, sort_keys=True))] = used + 1
            with open(LOG, "a") as f:
                f.write(json.dumps({"method": method, "path": path, "action": rule["action"]}) + "\n")
            return rule
    return None


def flipped(body):
    if not body:
        return body
    i = len(body) // 2
    return body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def forward(self):
        body = self.body()
        path = unquote(self.path)
        rule = take(self.command, path, self.headers.get("Range")) or {}
        action = rule.get("action")
        if action == "status":
            status = rule["status"]
            code = {403: "AccessDenied", 503: "SlowDown"}.get(status, "InternalError")
            data = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>injected by the fault proxy</Message></Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        if action == "delay":
            time.sleep(rule["seconds"])
        if action == "flip" and self.command == "PUT":
            body = flipped(body)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        if action == "delay":
            log({"method": self.command, "path": path, "action": "landed", "status": response.status})
        if self.command == "GET" and response.status in (200, 206):
            if action == "flip":
                data = flipped(data)
            elif action == "short":
                data = data[: len(data) // 2]
        try:
            self.reply(response, data)
        except OSError:
            pass  # the client is gone (killed while its request was held)

    def reply(self, response, data):
        self.send_response(response.status, response.reason)
        for k, v in response.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", response.getheader("Content-Length", "0"))
            self.end_headers()
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

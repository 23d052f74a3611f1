#!/usr/bin/python3
"""A webhook receiver for the http sink's tests: listens on 127.0.0.1 (a free port, written to
--port-file), records every POST as one JSON line in --log ({"t": unix time, "status": the answer,
"body": the request body}) and answers 200 "ok", as Slack does. --fail-status S answers S to the
first --fail-count N posts (N < 0: to every post), with a Retry-After of --retry-after seconds
when given. POST /_control {"status": S, "count": N, "retry_after": R} changes that while
running. GET /health answers 200."""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

lock = threading.Lock()
state = {"status": 200, "count": 0, "retry_after": None}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--fail-count", type=int, default=0)
    p.add_argument("--retry-after", type=int, default=None)
    args = p.parse_args()
    state.update(status=args.fail_status, count=args.fail_count, retry_after=args.retry_after)
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client reuses its connection

        def answer(self, status, body, headers=()):
            data = body.encode()
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.answer(200 if self.path == "/health" else 404, "ok")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.path == "/_control":
                with lock:
                    state.update(json.loads(body))
                self.answer(200, "ok")
                return
            with lock:
                status, headers = 200, []
                if state["count"] != 0:
                    status = state["status"]
                    if state["count"] > 0:
                        state["count"] -= 1
                    if state["retry_after"] is not None:
                        headers.append(("Retry-After", str(state["retry_after"])))
                log.write(json.dumps({"t": time.time(), "path": self.path, "status": status,
                                      "body": body}) + "\n")
            self.answer(status, "ok" if status == 200 else f"no_service: test answer {status}",
                        headers)

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()

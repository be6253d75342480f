#!/usr/bin/env python3
"""The real servers' HTTP server in the demo, the end-to-end tests and the benchmark.

Python's own http.server (ThreadingHTTPServer, SimpleHTTPRequestHandler) serving a
directory on [::]:PORT, dual-stack, so the same socket answers on the real server's
addresses (NAT, FULLNAT) and on the VIPs (DR on lo, TUN in lvs-realserver's device), in
IPv4 and IPv6. Two additions, both for checking the director from the client's side:

- every response carries `X-Real-Server: NAME`, so a client knows which real server
  answered even a file download;
- `GET /peer` answers `NAME PEER` where PEER is the address the connection came from:
  the client's address in NAT, DR and TUN, the director's local address in FULLNAT.

HTTP/1.1 with keep-alive (every response has a Content-Length), for load generators
that reuse connections. Requests are logged on stderr only with --log.
"""

import argparse
import http.server
import os
import socket
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def end_headers(self):
        self.send_header("X-Real-Server", self.server.real_server_name)
        super().end_headers()

    def do_GET(self):
        if self.path == "/peer":
            peer = self.client_address[0]
            # An IPv4 client of the dual-stack socket shows as ::ffff:a.b.c.d.
            if peer.startswith("::ffff:") and "." in peer:
                peer = peer[len("::ffff:"):]
            body = f"{self.server.real_server_name} {peer}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format, *args):
        if self.server.log_requests:
            super().log_message(format, *args)


class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self):
        # One socket for IPv4 and IPv6.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="the real server's name (rs1, ...)")
    p.add_argument("--dir", required=True, help="the directory to serve")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--log", action="store_true", help="log each request on stderr")
    a = p.parse_args()
    os.chdir(a.dir)
    srv = Server(("::", a.port), Handler)
    srv.real_server_name = a.name
    srv.log_requests = a.log
    print(f"{a.name}: serving {a.dir} on [::]:{a.port}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

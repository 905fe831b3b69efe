#!/usr/bin/env python3
"""Minimal OCI distribution benchmark client (standard library only).

The same client drives every registry in bench/registry.sh so that the
ratios compare servers, not clients. Bodies are streamed: uploads go from
the file with socket.sendfile (zero copy), downloads are read into one
reused buffer and discarded.

Sub-commands (all print one JSON object on stdout):
  push-big    push a single-layer image whose layer is a file on disk
  pull        pull an image (GET manifest, GET every blob, discard)
  pull-many   N concurrent pulls of the same image (threads)
  manifests   push N distinct small manifests (tags t0..tN-1)
  sink        a trivial registry that discards uploads (client ceiling check)
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

CHUNK = 1 << 20  # read/write granularity for streamed bodies
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = ",".join([
    OCI_MANIFEST,
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


class RegistryError(Exception):
    pass


class Client:
    """One keep-alive HTTP/1.1 connection to a registry (not thread-safe)."""

    def __init__(self, base, auth=None):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.auth = auth  # value of the Authorization header, or None
        self.conn = None
        self.buf = bytearray(CHUNK)

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600, blocksize=CHUNK)
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, file=None, offset=0, length=None,
                discard=False, expect=None):
        """Send one request; returns (status, headers, body-bytes-or-count).

        `file` + `offset`/`length` streams that file range as the body with sendfile.
        `discard` reads the response body into a scratch buffer and returns its length.
        """
        hdrs = {}
        if self.auth:
            hdrs["Authorization"] = self.auth
        if headers:
            hdrs.update(headers)
        if file is not None:
            hdrs["Content-Length"] = str(length)
        elif body is not None:
            hdrs["Content-Length"] = str(len(body))
        elif method in ("PUT", "POST", "PATCH"):
            hdrs["Content-Length"] = "0"
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for k, v in hdrs.items():
                    conn.putheader(k, v)
                conn.endheaders()
                if file is not None:
                    sent = 0
                    while sent < length:
                        n = conn.sock.sendfile(file, offset + sent, length - sent)
                        if n == 0:
                            raise RegistryError("sendfile: EOF on body file")
                        sent += n
                elif body is not None:
                    conn.sock.sendall(body)
                resp = conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # Idle keep-alive closed by the server: reconnect once, but only
                # when nothing big was in flight.
                self.close()
                if attempt or file is not None:
                    raise
        if discard and 200 <= resp.status < 300:
            total = 0
            mv = memoryview(self.buf)
            while True:
                n = resp.readinto(mv)
                if not n:
                    break
                total += n
            data = total
        else:
            data = resp.read()
        if resp.will_close:
            self.close()
        if expect is not None and resp.status not in expect:
            raise RegistryError(f"{method} {path}: HTTP {resp.status}: {data[:500]!r}")
        return resp.status, resp.headers, data

    def _loc(self, headers):
        """Registries answer with an absolute or relative Location; keep path+query."""
        loc = headers["Location"]
        u = urllib.parse.urlsplit(loc)
        return u.path + ("?" + u.query if u.query else "")

    @staticmethod
    def _add_query(path, **kw):
        sep = "&" if "?" in path else "?"
        return path + sep + urllib.parse.urlencode(kw)

    # ---- push ---------------------------------------------------------------

    def push_blob_bytes(self, name, data, digest):
        st, h, _ = self.request("POST", f"/v2/{name}/blobs/uploads/", expect=(202,))
        self.request("PUT", self._add_query(self._loc(h), digest=digest), body=data,
                     headers={"Content-Type": "application/octet-stream"}, expect=(201,))

    def push_blob_file(self, name, f, size, digest, chunk=None):
        """Monolithic (POST + PUT with the whole body) or chunked (PATCH of `chunk` bytes)."""
        st, h, _ = self.request("POST", f"/v2/{name}/blobs/uploads/", expect=(202,))
        loc = self._loc(h)
        ct = {"Content-Type": "application/octet-stream"}
        if chunk is None:
            self.request("PUT", self._add_query(loc, digest=digest), file=f, offset=0, length=size,
                         headers=ct, expect=(201,))
            return
        off = 0
        while off < size:
            n = min(chunk, size - off)
            hd = dict(ct, **{"Content-Range": f"{off}-{off + n - 1}"})
            st, h, _ = self.request("PATCH", loc, file=f, offset=off, length=n, headers=hd, expect=(202,))
            loc = self._loc(h)
            off += n
        self.request("PUT", self._add_query(loc, digest=digest), expect=(201,))

    def put_manifest(self, name, ref, manifest_bytes, media_type=OCI_MANIFEST):
        self.request("PUT", f"/v2/{name}/manifests/{ref}", body=manifest_bytes,
                     headers={"Content-Type": media_type}, expect=(201,))

    # ---- pull ---------------------------------------------------------------

    def pull(self, name, ref):
        """GET manifest, then every blob (config + layers) streamed and discarded."""
        st, h, data = self.request("GET", f"/v2/{name}/manifests/{ref}", headers={"Accept": ACCEPT},
                                   expect=(200,))
        m = json.loads(data)
        total = len(data)
        for d in [m["config"]] + m.get("layers", []):
            st, h, n = self.request("GET", f"/v2/{name}/blobs/{d['digest']}", discard=True,
                                    expect=(200, 307))
            if st == 307:  # redirect to blob storage: follow on a fresh connection
                u = urllib.parse.urlsplit(h["Location"])
                c2 = Client(f"{u.scheme}://{u.netloc}")
                _, _, n = c2.request("GET", u.path + ("?" + u.query if u.query else ""), discard=True,
                                     expect=(200,))
                c2.close()
            if n != d["size"]:
                raise RegistryError(f"blob {d['digest']}: got {n} bytes, expected {d['size']}")
            total += n
        return total


# ---- helpers ------------------------------------------------------------------


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(8 * CHUNK)
            if not b:
                break
            h.update(b)
    return "sha256:" + h.hexdigest()


def config_blob(tag):
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": []},
                      "history": [{"created_by": f"berth bench {tag}"}]}, sort_keys=True).encode()
    return cfg, "sha256:" + hashlib.sha256(cfg).hexdigest()


def manifest(cfg_digest, cfg_size, layers, annotations=None):
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest, "size": cfg_size},
         "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": s} for d, s in layers]}
    if annotations:
        m["annotations"] = annotations
    return json.dumps(m, sort_keys=True).encode()


def auth_header(args):
    if args.password:
        return "Basic " + base64.b64encode(f"AWS:{args.password}".encode()).decode()
    return None


def out(obj):
    print(json.dumps(obj), flush=True)


# ---- sub-commands -------------------------------------------------------------


def cmd_push_big(args):
    size = os.path.getsize(args.file)
    digest = args.digest or sha256_file(args.file)
    c = Client(args.url, auth_header(args))
    cfg, cfg_d = config_blob(args.tag)
    chunk = args.chunk_mib * CHUNK if args.chunk_mib else None
    with open(args.file, "rb") as f:
        t0 = time.perf_counter()
        c.push_blob_file(args.name, f, size, digest, chunk=chunk)
        t_blob = time.perf_counter() - t0
        c.push_blob_bytes(args.name, cfg, cfg_d)
        c.put_manifest(args.name, args.tag, manifest(cfg_d, len(cfg), [(digest, size)]))
        t = time.perf_counter() - t0
    c.close()
    out({"bytes": size, "seconds": t, "blob_seconds": t_blob, "mb_s": size / t / 1e6})


def cmd_pull(args):
    c = Client(args.url, auth_header(args))
    t0 = time.perf_counter()
    n = c.pull(args.name, args.tag)
    t = time.perf_counter() - t0
    c.close()
    out({"bytes": n, "seconds": t, "mb_s": n / t / 1e6})


def cmd_pull_many(args):
    auth = auth_header(args)
    results, errors = [None] * args.n, []
    start = threading.Barrier(args.n + 1)

    def worker(i):
        c = Client(args.url, auth)
        try:
            c._conn()  # connect before the barrier so the timing covers requests only
            start.wait()
            t0 = time.perf_counter()
            results[i] = (c.pull(args.name, args.tag), time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(str(e))
        finally:
            c.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(args.n)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RegistryError(f"{len(errors)} pulls failed; first: {errors[0]}")
    total = sum(r[0] for r in results)
    lat = sorted(r[1] for r in results)
    out({"pulls": args.n, "bytes": total, "seconds": wall, "mb_s": total / wall / 1e6,
         "slowest_s": lat[-1], "median_s": lat[len(lat) // 2]})


def cmd_manifests(args):
    auth = auth_header(args)
    c = Client(args.url, auth)
    # One small layer and one config shared by every manifest; pushed once, untimed.
    layer = os.urandom(1024)
    layer_d = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg, cfg_d = config_blob("small")
    c.push_blob_bytes(args.name, layer, layer_d)
    c.push_blob_bytes(args.name, cfg, cfg_d)
    c.close()
    bodies = [manifest(cfg_d, len(cfg), [(layer_d, len(layer))],
                       annotations={"org.example.bench.i": str(i), "org.example.bench.run": args.run_id})
              for i in range(args.n)]
    errors = []
    next_i = [0]
    lock = threading.Lock()
    start = threading.Barrier(args.concurrency + 1)

    def worker():
        cl = Client(args.url, auth)
        try:
            cl._conn()
            start.wait()
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= args.n:
                    return
                cl.put_manifest(args.name, f"t{i}", bodies[i])
        except Exception as e:  # noqa: BLE001
            errors.append(str(e))
        finally:
            cl.close()

    ts = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    t = time.perf_counter() - t0
    if errors:
        raise RegistryError(f"{len(errors)} of {args.concurrency} workers failed; first: {errors[0]}")
    out({"manifests": args.n, "concurrency": args.concurrency, "seconds": t, "per_s": args.n / t})


# ---- sink: a trivial registry, to measure the client's own ceiling ------------------


def cmd_sink(args):
    blobs = {}  # digest -> path (served with sendfile)
    for spec in args.blob or []:
        d, p = spec.split("=", 1)
        blobs[d] = p
    manifests, small = {}, {}
    lock = threading.Lock()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(256)
    print(f"sink listening on http://127.0.0.1:{srv.getsockname()[1]}", flush=True)

    def handle(sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = sock.makefile("rb", buffering=CHUNK)
        scratch = bytearray(CHUNK)
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                method, target, _ = line.decode().split(" ", 2)
                hdrs = {}
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, v = h.decode().split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
                n = int(hdrs.get("content-length", "0"))
                body = b""
                if n <= 65536:
                    body = f.read(n)
                else:
                    mv = memoryview(scratch)
                    left = n
                    while left:
                        got = f.readinto(mv[:min(left, CHUNK)])
                        if not got:
                            return
                        left -= got
                path = target.split("?")[0]
                parts = path.split("/")
                extra, payload, file_ = "", b"", None
                if method == "POST":
                    status, extra = "202 Accepted", f"Location: {path}x\r\n"
                elif method == "PATCH":
                    status, extra = "202 Accepted", f"Location: {path}\r\n"
                elif method == "PUT":
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
                    with lock:
                        if "manifests" in parts:
                            manifests[parts[-1]] = body
                        elif "digest" in q and body:
                            small[q["digest"][0]] = body
                    status = "201 Created"
                elif method == "GET" and "manifests" in parts:
                    status, payload = "200 OK", manifests.get(parts[-1], b"{}")
                    extra = f"Content-Type: {OCI_MANIFEST}\r\n"
                elif method == "GET" and "blobs" in parts and parts[-1] in blobs:
                    status, file_ = "200 OK", blobs[parts[-1]]
                elif method == "GET" and "blobs" in parts:
                    status, payload = "200 OK", small.get(parts[-1], b"")
                else:
                    status = "200 OK"
                if file_:
                    size = os.path.getsize(file_)
                    sock.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {size}\r\n\r\n".encode())
                    with open(file_, "rb") as bf:
                        sock.sendfile(bf)
                else:
                    sock.sendall(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(payload)}\r\n\r\n"
                                 .encode() + payload)
        except (ConnectionError, ValueError):
            return
        finally:
            sock.close()

    while True:
        s, _ = srv.accept()
        threading.Thread(target=handle, args=(s,), daemon=True).start()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp):
        sp.add_argument("--url", required=True, help="registry base URL, e.g. http://127.0.0.1:5000")
        sp.add_argument("--password", default=os.environ.get("REGISTRY_PASSWORD"),
                        help="ECR-style password: sends Basic AWS:PASSWORD (default env REGISTRY_PASSWORD)")
        sp.add_argument("--name", required=True, help="repository name")

    sp = sub.add_parser("push-big")
    common(sp)
    sp.add_argument("--file", required=True)
    sp.add_argument("--digest")
    sp.add_argument("--tag", default="big")
    sp.add_argument("--chunk-mib", type=int, default=0, help="chunked PATCH upload in chunks of this size")
    sp.set_defaults(fn=cmd_push_big)

    sp = sub.add_parser("pull")
    common(sp)
    sp.add_argument("--tag", required=True)
    sp.set_defaults(fn=cmd_pull)

    sp = sub.add_parser("pull-many")
    common(sp)
    sp.add_argument("--tag", required=True)
    sp.add_argument("-n", type=int, default=50)
    sp.set_defaults(fn=cmd_pull_many)

    sp = sub.add_parser("manifests")
    common(sp)
    sp.add_argument("-n", type=int, default=1000)
    sp.add_argument("--concurrency", type=int, default=1)
    sp.add_argument("--run-id", default=str(time.time_ns()))
    sp.set_defaults(fn=cmd_manifests)

    sp = sub.add_parser("sink")
    sp.add_argument("--port", type=int, default=0)
    sp.add_argument("--blob", action="append", help="DIGEST=PATH served on GET .../blobs/DIGEST")
    sp.set_defaults(fn=cmd_sink)

    args = p.parse_args()
    try:
        args.fn(args)
    except RegistryError as e:
        print(f"regclient: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A ClickHouse HTTP-interface front end over chdb (the ClickHouse engine as an
in-process library, PyPI `chdb-core`).

Test rig only (see docs/servers.md). It speaks enough of the ClickHouse HTTP
protocol for the Rust `clickhouse` crate, curl and similar clients:

* `GET /ping`, `GET /` (no query) -> `Ok.\n`
* `GET|POST /?query=...` with the query in the URL and/or the body (the two are
  joined with a newline, as ClickHouse does); `multipart/form-data` bodies
  whose fields are read as URL parameters (how the crate sends `param_*`)
* `INSERT ... FORMAT X` / `INSERT ... VALUES` with the data in the body, in any
  input format chdb knows (RowBinary, RowBinaryWithNamesAndTypes, TSV,
  JSONEachRow, Native, Parquet, ...)
* `default_format`, `database`, `query_id`, `param_<name>` (ClickHouse's own
  `{name:Type}` parameters, passed to chdb unmodified), every other URL
  parameter as a per-query setting (`SET` before, reset to default after)
* request bodies in ClickHouse native compression framing with `decompress=1`
  (LZ4 / ZSTD / none), request `Content-Encoding` gzip/deflate/zstd/lz4
* responses: plain; HTTP `Content-Encoding` lz4/zstd/gzip/deflate when the
  client sends `Accept-Encoding` and `enable_http_compression` is not 0 (the
  ClickHouse >= 25.10 default); native framing (LZ4) with `compress=1`
* SELECT/WITH answers are streamed (chunked transfer encoding) block by block as
  the engine makes them, as ClickHouse does, so a client can consume the head of
  a large answer while the rest is computed. An error before the first block is
  an HTTP 500; an error after it is written into the body as ClickHouse >= 25.11
  does: the tagged block `\r\n__exception__\r\n<TAG>\r\n<message>\n<length>
  <TAG>\r\n__exception__\r\n` (TAG: 16 random letters, also sent in the
  `X-ClickHouse-Exception-Tag` header of every answer), then the connection is
  closed without the final chunk (docs/servers.md cites the sources)
* user/password from `X-ClickHouse-User`/`X-ClickHouse-Key`, basic auth or the
  `user`/`password` URL parameters; checked only if the server is given one
* HTTPS on a second port (`--tls-port`, `--tls-cert`, `--tls-key`) from the same
  process, each connection's handshake in its own thread
* errors: HTTP 500 (403 for authentication), header
  `X-ClickHouse-Exception-Code: N`, body `Code: N. DB::Exception: ...`

One chdb engine (data on disk under --path) serves a pool of chdb connections,
one per request at a time, so queries run concurrently and see the same data.
Each query carries the request's query_id in `log_comment`; `system.processes`
is read through a view whose `query_id` is that id, and `KILL QUERY WHERE ...`
kills the matching running queries (a streamed one also stops when its client
disconnects).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import hmac
import json
import os
import random
import re
import ssl
import string
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import chdb  # noqa: F401  (loads the engine)
from chdb import _chdb

try:
    import lz4.block
    import lz4.frame
except ImportError:  # pragma: no cover
    lz4 = None
try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None
try:
    from clickhouse_cityhash.cityhash import CityHash128
except ImportError:  # pragma: no cover
    CityHash128 = None

# URL parameters that are part of the HTTP protocol, not settings.
PROTOCOL_PARAMS = {
    "query", "database", "default_format", "user", "password", "query_id",
    "session_id", "session_timeout", "session_check", "compress", "decompress",
    "wait_end_of_query", "http_wait_end_of_query", "buffer_size", "role",
    "quota_key", "enable_http_compression", "http_zlib_compression_level",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "client_protocol_version", "stacktrace", "add_http_cors_header",
    "http_response_buffer_size", "http_native_compression_disable_checksumming_on_decompress",
    "cancel_http_readonly_queries_on_client_close", "http_write_exception_in_output_format",
    "readonly",  # a readonly session could not reset its own settings
    "max_query_size",
}
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CODE_RE = re.compile(r"Code: (\d+)\. ")
ERROR_NAMES = {1001: "STD_EXCEPTION", 516: "AUTHENTICATION_FAILED", 27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
               271: "CANNOT_DECOMPRESS", 62: "SYNTAX_ERROR", 115: "UNKNOWN_SETTING", 48: "NOT_IMPLEMENTED"}

CH_NATIVE_NONE, CH_NATIVE_LZ4, CH_NATIVE_ZSTD = 0x02, 0x82, 0x90
# ClickHouse >= 25.11 (WriteBufferFromHTTP1ServerResponse): a 16-letter tag per answer, and
# an exception block after the first byte of the body is at most 16 KiB.
EXCEPTION_MARKER = b"__exception__"
EXCEPTION_TAG_LENGTH = 16
MAX_EXCEPTION_SIZE = 16 * 1024


def exception_tag() -> str:
    return "".join(random.SystemRandom().choice(string.ascii_lowercase) for _ in range(EXCEPTION_TAG_LENGTH))


def exception_block(message: str, tag: str) -> bytes:
    """The block ClickHouse writes into a 200 answer when the query fails after the body has
    started: `\r\n__exception__\r\n<TAG>\r\n<message>\n<length> <TAG>\r\n__exception__\r\n`
    (length counts the message and its newline; the message is cut to fit 16 KiB)."""
    t = tag.encode()
    fixed = 2 + len(EXCEPTION_MARKER) + 2 + len(t) + 2 + 8 + 1 + len(t) + 2 + len(EXCEPTION_MARKER) + 2
    msg = message.encode("utf-8", "replace")[:MAX_EXCEPTION_SIZE - fixed]
    if not msg.endswith(b"\n"):
        msg += b"\n"
    return (b"\r\n" + EXCEPTION_MARKER + b"\r\n" + t + b"\r\n" + msg
            + str(len(msg)).encode() + b" " + t + b"\r\n" + EXCEPTION_MARKER + b"\r\n")
# Statements whose answer is streamed: a SELECT or WITH, after comments.
STREAMED = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*(?:SELECT|WITH)\b", re.I | re.S)


class ChError(Exception):
    def __init__(self, code: int, message: str, status: int = 500):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def ch_error(code: int, message: str, status: int = 500) -> ChError:
    name = ERROR_NAMES.get(code, "")
    suffix = f" ({name})" if name else ""
    return ChError(code, f"Code: {code}. DB::Exception: {message}{suffix}", status)


def from_chdb_error(exc: BaseException) -> ChError:
    msg = str(exc).strip()
    m = CODE_RE.search(msg)
    code = int(m.group(1)) if m else 1001
    # chdb sometimes nests the same prefix twice: "Code: 115. DB::Exception: Code: 115. DB::Exception: ..."
    dup = f"Code: {code}. DB::Exception: "
    while msg.startswith(dup + dup):
        msg = msg[len(dup):]
    if not msg.startswith("Code: "):
        msg = f"Code: {code}. DB::Exception: {msg}"
    return ChError(code, msg)


# ---------------------------------------------------------------------------
# Compression helpers


def native_decompress(data: bytes, verify: bool) -> bytes:
    """Decode ClickHouse native compression framing (a sequence of blocks)."""
    out = []
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < 25:
            raise ch_error(271, "Truncated compressed block header")
        checksum = data[pos:pos + 16]
        method = data[pos + 16]
        csize, usize = struct.unpack_from("<II", data, pos + 17)
        if csize < 9 or pos + 16 + csize > n:
            raise ch_error(271, f"Invalid compressed block size {csize}")
        block = data[pos + 16:pos + 16 + csize]
        if verify and CityHash128 is not None:
            h = CityHash128(block)
            if struct.pack("<QQ", h >> 64, h & ((1 << 64) - 1)) != checksum:
                raise ch_error(40, "Checksum doesn't match: corrupted data (CHECKSUM_DOESNT_MATCH)")
        payload = block[9:]
        if method == CH_NATIVE_LZ4:
            if lz4 is None:
                raise ch_error(271, "lz4 module not installed")
            out.append(lz4.block.decompress(payload, uncompressed_size=usize))
        elif method == CH_NATIVE_ZSTD:
            if zstandard is None:
                raise ch_error(271, "zstandard module not installed")
            out.append(zstandard.ZstdDecompressor().decompress(payload, max_output_size=usize))
        elif method == CH_NATIVE_NONE:
            out.append(payload)
        else:
            raise ch_error(271, f"Unknown compression method byte 0x{method:02x}")
        pos += 16 + csize
    return b"".join(out)


def native_compress(data: bytes) -> bytes:
    """ClickHouse native framing, LZ4 blocks of at most 1 MiB (for compress=1)."""
    if CityHash128 is None or lz4 is None:
        raise ch_error(48, "compress=1 needs the lz4 and clickhouse-cityhash modules")
    out = []
    step = 1 << 20
    for i in range(0, max(len(data), 1), step):
        chunk = data[i:i + step]
        comp = lz4.block.compress(chunk, store_size=False)
        block = struct.pack("<BII", CH_NATIVE_LZ4, len(comp) + 9, len(chunk)) + comp
        h = CityHash128(block)
        out.append(struct.pack("<QQ", h >> 64, h & ((1 << 64) - 1)) + block)
        if not data:
            break
    return b"".join(out)


class StreamEncoder:
    """Incremental HTTP Content-Encoding for a streamed answer."""

    def __init__(self, enc: str):
        if enc == "gzip":
            self.c = zlib.compressobj(3, zlib.DEFLATED, 31)
        elif enc == "deflate":
            self.c = zlib.compressobj(3)
        elif enc == "zstd":
            self.c = zstandard.ZstdCompressor(level=3).compressobj()
        elif enc == "lz4":
            # auto_flush: every chunk leaves as whole LZ4 blocks, as ClickHouse streams them.
            self.c = lz4.frame.LZ4FrameCompressor(auto_flush=True)
            self.head = self.c.begin()
        self.enc = enc

    def chunk(self, data: bytes) -> bytes:
        out = self.c.compress(data)
        if self.enc == "lz4" and self.head:
            out, self.head = self.head + out, b""
        return out

    def flush(self) -> bytes:
        """Everything given so far, decodable, without ending the stream (before a cut)."""
        if self.enc in ("gzip", "deflate"):
            return self.c.flush(zlib.Z_SYNC_FLUSH)
        if self.enc == "zstd":
            return self.c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        out, self.head = self.head, b""
        return out

    def finish(self) -> bytes:
        if self.enc == "lz4":
            return self.head + self.c.flush()
        return self.c.flush()


def decode_content_encoding(body: bytes, enc: str) -> bytes:
    enc = enc.strip().lower()
    if not enc or enc == "identity":
        return body
    if enc in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if enc == "deflate":
        return zlib.decompress(body)
    if enc == "zstd" and zstandard is not None:
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if enc == "lz4" and lz4 is not None:
        return lz4.frame.decompress(body)
    raise ch_error(48, f"Unsupported Content-Encoding: {enc}")


def pick_response_encoding(accept: str) -> str | None:
    for item in accept.split(","):
        enc = item.split(";")[0].strip().lower()
        if enc in ("gzip", "deflate"):
            return enc
        if enc == "zstd" and zstandard is not None:
            return enc
        if enc == "lz4" and lz4 is not None:
            return enc
    return None


def encode_response(body: bytes, enc: str) -> bytes:
    if enc == "gzip":
        return gzip.compress(body, compresslevel=3)
    if enc == "deflate":
        return zlib.compress(body, 3)
    if enc == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(body)
    if enc == "lz4":
        return lz4.frame.compress(body)
    return body


# ---------------------------------------------------------------------------
# SQL scanning (just enough to split INSERT statements from their data)

_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


def scan_insert(buf: bytes):
    """If `buf` is an INSERT with inline data, return (sql, format, data).

    Scans tokens outside literals/comments; stops at the first FORMAT <name>
    (data follows it), VALUES (data follows it) or SELECT/WITH (no data).
    Returns None for anything else.
    """
    i, n = 0, len(buf)
    first = True
    while i < n:
        c = buf[i:i + 1]
        if c in b" \t\r\n\f":
            i += 1
        elif buf.startswith(b"--", i) or c == b"#":
            j = buf.find(b"\n", i)
            i = n if j < 0 else j + 1
        elif buf.startswith(b"/*", i):
            j = buf.find(b"*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in (b"'", b'"', b"`"):
            j = i + 1
            while j < n:
                if buf[j:j + 1] == b"\\":
                    j += 2
                    continue
                if buf[j:j + 1] == c:
                    if buf[j + 1:j + 2] == c:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        else:
            m = _WORD.match(buf, i)
            if not m:
                i += 1
                continue
            word = m.group(0).upper()
            if first:
                if word != b"INSERT":
                    return None
                first = False
            elif word in (b"SELECT", b"WITH"):
                return None
            elif word == b"VALUES":
                return buf[:i], "Values", buf[m.end():]
            elif word == b"FORMAT":
                f = _WORD.match(buf, _skip_ws(buf, m.end()))
                if not f:
                    return None
                j = f.end()
                while j < n and buf[j:j + 1] in b" \t\f":
                    j += 1
                if buf[j:j + 1] == b"\r":
                    j += 1
                if buf[j:j + 1] == b"\n":
                    j += 1
                return buf[:i], f.group(0).decode(), buf[j:]
            i = m.end()
    return None


def _skip_ws(buf: bytes, i: int) -> int:
    while i < len(buf) and buf[i:i + 1] in b" \t\r\n\f":
        i += 1
    return i


def parse_multipart(body: bytes, ctype: str) -> dict[str, str]:
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not m:
        raise ch_error(1001, "multipart/form-data without boundary")
    delim = b"--" + m.group(1).encode()
    fields: dict[str, str] = {}
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        part = part[2:] if part.startswith(b"\r\n") else part
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if value.endswith(b"\r\n"):
            value = value[:-2]
        hm = re.search(rb'name="([^"]*)"', head)
        if not hm:
            continue
        if re.search(rb'filename="', head):
            raise ch_error(48, "external tables (multipart files) are not supported by this front end")
        fields[hm.group(1).decode()] = value.decode("utf-8")
    return fields


def sql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------
# Engine


# `KILL QUERY WHERE <condition> [SYNC|ASYNC|TEST]`, answered by the front end (see Engine.kill).
KILL_QUERY = re.compile(r"\A\s*KILL\s+QUERY\s+WHERE\s+(?P<cond>.*?)(?:\s+(?P<mode>SYNC|ASYNC|TEST))?\s*;?\s*\Z",
                        re.I | re.S)
SYSTEM_PROCESSES = re.compile(r"\bsystem\s*\.\s*processes\b", re.I)
# chdb makes up its own query ids; each query carries the front end's in `log_comment`, and
# system.processes is read through this view, whose `query_id` is the front end's (chdb's is
# `chdb_query_id`), so `WHERE query_id = ...` means what it means on a ClickHouse server.
LOG_COMMENT_PREFIX = "chdb_http:"
PROCESSES_VIEW = (
    "(SELECT * REPLACE (if(startsWith(chdb_log_comment, '{p}'), substring(chdb_log_comment, {n}), query_id)"
    " AS query_id) FROM (SELECT *, query_id AS chdb_query_id, Settings['log_comment'] AS chdb_log_comment"
    " FROM system.processes))").format(p=LOG_COMMENT_PREFIX, n=len(LOG_COMMENT_PREFIX) + 1)
# Statements whose effect would outlive the request on a pooled connection (ClickHouse without
# a session_id forgets them after the request): such a connection is closed afterwards.
SESSION_STATE = re.compile(r"\A\s*SET\b|\bTEMPORARY\b", re.I)


# Quoted strings/identifiers and comments, which the rewrite below leaves alone.
_VERBATIM = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"|`(?:[^`\\]|\\.|``)*`|--[^\n]*|/\*.*?\*/", re.S)


def with_processes_view(sql: str) -> str:
    """`system.processes` outside literals and comments -> PROCESSES_VIEW."""
    out, pos = [], 0
    for m in _VERBATIM.finditer(sql):
        out.append(SYSTEM_PROCESSES.sub(lambda _: PROCESSES_VIEW, sql[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(SYSTEM_PROCESSES.sub(lambda _: PROCESSES_VIEW, sql[pos:]))
    return "".join(out)


class Engine:
    """chdb, one engine per process over one data path; any number of chdb connections to it
    run queries in parallel and see the same data (chdb's `connect` docs). A request takes a
    connection of its own from a pool, so requests run concurrently, each with its own
    session state (database, settings), and a query can be killed from another request."""

    def __init__(self, path: str, max_connections: int = 64):
        os.makedirs(path, exist_ok=True)
        self.path = path
        # Never closed: the engine shuts down when its last connection closes.
        self.anchor = _chdb.connect(path)
        self.idle: list = []
        self.idle_lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(max_connections)
        self.version = self.anchor.query("SELECT version()", "TSV", params={}).bytes().decode().strip()

    @contextlib.contextmanager
    def session(self, *, database: str, settings: dict, query_id: str, sql: str | None):
        """A pooled connection set up for one request: `USE database`, the request's settings
        and the query id in `log_comment`; all reset afterwards."""
        self.slots.acquire()
        try:
            with self.idle_lock:
                conn = self.idle.pop() if self.idle else None
            if conn is None:
                conn = _chdb.connect(self.path)
            applied = []
            keep = not (sql and SESSION_STATE.search(sql))
            try:
                q = lambda text: conn.query(text, "TSV", params={})  # noqa: E731
                q(f"USE {_ident(database)}")
                for name, value in {**settings, "log_comment": LOG_COMMENT_PREFIX + query_id}.items():
                    q(f"SET {name} = {sql_quote(value)}")
                    applied.append(name)
                yield conn
            finally:
                for name in applied:
                    try:
                        conn.query(f"SET {name} = DEFAULT", "TSV", params={})
                    except Exception as exc:  # do not reuse a connection in an unknown state
                        keep = False
                        log(f"warning: could not reset setting {name}: {exc}")
                if keep:
                    with self.idle_lock:
                        self.idle.append(conn)
                else:
                    try:
                        conn.close()
                    except Exception as exc:
                        log(f"warning: could not close a chdb connection: {exc}")
        finally:
            self.slots.release()

    def run(self, *, sql: str | None, insert, fmt: str, database: str, settings: dict, params: dict,
            query_id: str):
        """Execute one statement; returns (body, stats dict)."""
        if sql is not None:
            m = KILL_QUERY.match(sql)
            if m:
                return self.kill(m.group("cond"), (m.group("mode") or "ASYNC").upper(), fmt, query_id)
        with self.session(database=database, settings=settings, query_id=query_id, sql=sql) as conn:
            if insert is not None:
                head, in_fmt, data = insert
                ins = conn.send_insert(head.decode("utf-8"), in_fmt)
                try:
                    if data:
                        conn.insert_append(ins, data)
                    res = conn.insert_done(ins)
                except BaseException:
                    try:
                        conn.insert_cancel(ins)
                    except Exception:
                        pass
                    raise
                return b"", {"written_rows": res.rows_written(), "written_bytes": res.bytes_written(),
                             "elapsed": res.elapsed()}
            res = conn.query(with_processes_view(sql), fmt, params=params)
            return res.bytes(), {"read_rows": res.rows_read(), "read_bytes": res.bytes_read(),
                                 "written_rows": getattr(res, "rows_written", lambda: 0)(),
                                 "written_bytes": getattr(res, "bytes_written", lambda: 0)(),
                                 "elapsed": res.elapsed()}

    def kill(self, cond: str, mode: str, fmt: str, query_id: str):
        """`KILL QUERY WHERE cond`: the condition is evaluated over the view above (so it sees
        the front end's query ids), then chdb's KILL QUERY stops those queries by chdb's ids."""
        with self.session(database="system", settings={}, query_id=query_id, sql=None) as conn:
            found = conn.query(f"SELECT chdb_query_id FROM {PROCESSES_VIEW} WHERE {cond}", "TSV", params={})
            ids = [i for i in found.bytes().decode().split("\n") if i]
            if not ids:
                return b"", {}
            listed = ", ".join(sql_quote(i) for i in ids)
            res = conn.query(f"KILL QUERY WHERE query_id IN ({listed}) {mode}", fmt, params={})
            log(f"query_id={query_id} KILL {mode} {len(ids)} quer{'y' if len(ids) == 1 else 'ies'}")
            return res.bytes(), {}

    def stream(self, *, sql: str, fmt: str, database: str, settings: dict, params: dict, query_id: str):
        """Run a SELECT; a generator of answer blocks. The connection is the request's until
        the generator ends or is closed (the client went away: the query is cancelled)."""
        with self.session(database=database, settings=settings, query_id=query_id, sql=sql) as conn:
            res = conn.send_query(with_processes_view(sql), fmt, params=params)
            try:
                while True:
                    r = conn.streaming_fetch_result(res)
                    if r is None:
                        break
                    data = r.bytes()
                    if not data and r.rows_read() == 0:
                        break
                    if data:
                        yield data
                res = None
            finally:
                if res is not None:
                    try:
                        conn.streaming_cancel_query(res)
                    except Exception as exc:
                        log(f"warning: could not cancel a streamed query: {exc}")


def _ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def log(msg: str) -> None:
    sys.stderr.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb-http"
    engine: Engine = None  # set in main()
    auth_user: str | None = None
    auth_password: str | None = None
    http_compression_default = True

    def _via(self) -> str:
        """` https` in the log line of a request that came over TLS."""
        return " https" if isinstance(self.connection, ssl.SSLSocket) else ""

    def log_message(self, format, *args):  # silence default access log
        pass

    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_HEAD(self):
        self._handle(head=True)

    # -- plumbing --
    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    break
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, head: bool = False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _credentials(self, params: dict):
        user = self.headers.get("X-ClickHouse-User")
        password = self.headers.get("X-ClickHouse-Key")
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                u, _, p = base64.b64decode(auth[6:].strip()).decode().partition(":")
                user = user if user is not None else u
                password = password if password is not None else p
            except Exception:
                pass
        if user is None:
            user = params.get("user")
        if password is None:
            password = params.get("password")
        return user or "default", password or ""

    def _handle(self, head: bool = False):
        started = time.monotonic()
        query_id = ""
        user = "-"
        sql_for_log = ""
        try:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            body = self._read_body()
            if url.path in ("/ping", "/replicas_status") or (url.path == "/" and "query" not in params and not body):
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"}, head)
                return
            if url.path not in ("/", "/query"):
                self._send(404, b"There is no handle " + url.path.encode() + b"\n",
                           {"Content-Type": "text/plain; charset=UTF-8"}, head)
                return
            query_id = params.get("query_id") or str(uuid.uuid4())
            ctype = self.headers.get("Content-Type", "")
            if ctype.lower().startswith("multipart/form-data"):
                params.update(parse_multipart(body, ctype))
                body = b""
            user, password = self._credentials(params)
            if self.auth_password is not None:
                ok_user = hmac.compare_digest(user.encode(), (self.auth_user or "default").encode())
                ok_pass = hmac.compare_digest(password.encode(), self.auth_password.encode())
                if not (ok_user and ok_pass):
                    raise ch_error(516, f"{user}: Authentication failed: password is incorrect, "
                                        "or there is no user with such name", status=403)
            body = decode_content_encoding(body, self.headers.get("Content-Encoding", ""))
            if params.get("decompress") in ("1", "true"):
                verify = params.get("http_native_compression_disable_checksumming_on_decompress") not in ("1", "true")
                body = native_decompress(body, verify)

            q = params.get("query", "").encode("utf-8")
            full = q + b"\n" + body if (q and body) else (q or body)
            if not full.strip():
                raise ch_error(62, "Empty query")
            sql_for_log = full[:300].decode("utf-8", "replace")
            insert = scan_insert(full)
            sql = None
            if insert is None:
                try:
                    sql = full.decode("utf-8")
                except UnicodeDecodeError:
                    raise ch_error(62, "Query is not valid UTF-8 and is not an INSERT with a FORMAT clause")
            else:
                sql_for_log = insert[0][:300].decode("utf-8", "replace") + f" FORMAT {insert[1]} <{len(insert[2])} bytes>"

            settings = {}
            qparams = {}
            for k, v in params.items():
                if k.startswith("param_"):
                    qparams[k[6:]] = v
                elif k in PROTOCOL_PARAMS:
                    continue
                elif not SETTING_NAME.match(k):
                    raise ch_error(115, f"Unknown setting '{k}'")
                else:
                    settings[k] = v
            fmt = params.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated"
            database = params.get("database") or self.headers.get("X-ClickHouse-Database") or "default"

            if insert is None and not head and STREAMED.match(sql):
                self._stream(sql, fmt, database, settings, qparams, params, query_id, user, started, sql_for_log)
                return
            out, stats = self.engine.run(sql=sql, insert=insert, fmt=fmt, database=database,
                                         settings=settings, params=qparams, query_id=query_id)
            headers = {
                "Content-Type": "text/tab-separated-values; charset=UTF-8" if insert is None else "text/plain; charset=UTF-8",
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Exception-Tag": exception_tag(),
                "X-ClickHouse-Server-Display-Name": "chdb-http",
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Summary": json.dumps({
                    "read_rows": str(stats.get("read_rows", 0)), "read_bytes": str(stats.get("read_bytes", 0)),
                    "written_rows": str(stats.get("written_rows", 0)), "written_bytes": str(stats.get("written_bytes", 0)),
                    "total_rows_to_read": "0", "result_rows": "0", "result_bytes": str(len(out)),
                    "elapsed_ns": str(int(stats.get("elapsed", 0) * 1e9)),
                }),
            }
            if params.get("compress") in ("1", "true"):
                out = native_compress(out)
            else:
                http_comp = params.get("enable_http_compression")
                enabled = self.http_compression_default if http_comp is None else http_comp in ("1", "true")
                enc = pick_response_encoding(self.headers.get("Accept-Encoding", "")) if enabled else None
                if enc:
                    out = encode_response(out, enc)
                    headers["Content-Encoding"] = enc
            self._send(200, out, headers, head)
            log(f"query_id={query_id} user={user}{self._via()} ok {1000 * (time.monotonic() - started):.1f}ms "
                f"bytes={len(out)} sql={_one_line(sql_for_log)}")
        except ChError as e:
            self._error(e, query_id, user, started, sql_for_log, head)
        except (BrokenPipeError, ConnectionResetError):
            log(f"query_id={query_id} client disconnected")
        except RuntimeError as e:  # chdb errors
            self._error(from_chdb_error(e), query_id, user, started, sql_for_log, head)
        except Exception as e:  # never let a request kill the server
            log("internal error: " + traceback.format_exc().replace("\n", " | "))
            self._error(ch_error(1001, f"{type(e).__name__}: {e}"), query_id, user, started, sql_for_log, head)

    def _stream(self, sql, fmt, database, settings, qparams, params, query_id, user, started, sql_for_log):
        blocks = self.engine.stream(sql=sql, fmt=fmt, database=database, settings=settings, params=qparams,
                                    query_id=query_id)
        sent = 0
        tag = exception_tag()
        try:
            # The first block decides between a 200 and an error status.
            first = next(blocks, b"")
            headers = {
                "Content-Type": "text/tab-separated-values; charset=UTF-8",
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Server-Display-Name": "chdb-http",
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Exception-Tag": tag,
                "Transfer-Encoding": "chunked",
            }
            native = params.get("compress") in ("1", "true")
            encoder = None
            if not native:
                http_comp = params.get("enable_http_compression")
                enabled = self.http_compression_default if http_comp is None else http_comp in ("1", "true")
                enc = pick_response_encoding(self.headers.get("Accept-Encoding", "")) if enabled else None
                if enc:
                    encoder = StreamEncoder(enc)
                    headers["Content-Encoding"] = enc
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()

            def emit(data: bytes):
                nonlocal sent
                if native:
                    data = native_compress(data)
                elif encoder is not None:
                    data = encoder.chunk(data)
                if data:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    sent += len(data)

            try:
                if first:
                    emit(first)
                for block in blocks:
                    emit(block)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as exc:
                # Too late for a status. ClickHouse (cancelWithException) writes the tagged
                # block as one chunk of the (compressed) body and then cancels the answer: no
                # final empty chunk, the connection is closed, so the body is also truncated.
                e = exc if isinstance(exc, ChError) else from_chdb_error(exc)
                msg = e.message if "(version " in e.message else f"{e.message} (version {self.engine.version})"
                log(f"query_id={query_id} user={user}{self._via()} ERROR code={e.code} after {sent} bytes "
                    f"sql={_one_line(sql_for_log)} :: {_one_line(msg)}")
                try:
                    block = exception_block(msg, tag)
                    if native:
                        block = native_compress(block)
                    elif encoder is not None:
                        block = encoder.chunk(block) + encoder.flush()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                    self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True
                return
            if encoder is not None:
                tail = encoder.finish()
                if tail:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
            self.wfile.write(b"0\r\n\r\n")
            log(f"query_id={query_id} user={user}{self._via()} ok {1000 * (time.monotonic() - started):.1f}ms "
                f"bytes={sent} streamed sql={_one_line(sql_for_log)}")
        finally:
            blocks.close()

    def _error(self, e: ChError, query_id, user, started, sql_for_log, head):
        msg = e.message
        if "(version " not in msg:
            msg += f" (version {self.engine.version})"
        log(f"query_id={query_id or '-'} user={user}{self._via()} ERROR code={e.code} "
            f"{1000 * (time.monotonic() - started):.1f}ms sql={_one_line(sql_for_log)} :: {_one_line(msg)}")
        try:
            self._send(e.status, (msg + "\n").encode("utf-8", "replace"), {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(e.code),
                "X-ClickHouse-Exception-Tag": exception_tag(),
                "X-ClickHouse-Query-Id": query_id or "",
            }, head)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _one_line(s: str) -> str:
    s = " ".join(s.split())
    return s[:300]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class TlsServer(Server):
    """The same front end over HTTPS. The listening socket stays plain and each connection is
    wrapped in its own worker thread, so a slow or failed handshake never holds up accept()."""

    ssl_context: ssl.SSLContext = None

    def finish_request(self, request, client_address):
        try:
            request = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            # A client that does not trust the certificate, or one speaking plain HTTP here.
            log(f"tls handshake with {client_address[0]}:{client_address[1]} failed: {exc}")
            return
        try:
            super().finish_request(request, client_address)
        finally:
            with contextlib.suppress(OSError):
                request.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--path", required=True, help="chdb data directory (persistent)")
    ap.add_argument("--user", default=None, help="enforce this user name (with --password-file)")
    ap.add_argument("--password-file", default=None,
                    help="file holding the password to enforce; without it any credentials are accepted")
    ap.add_argument("--no-http-compression", action="store_true",
                    help="never compress responses unless enable_http_compression=1 is sent")
    ap.add_argument("--pid-file", default=None)
    ap.add_argument("--tls-port", type=int, default=None,
                    help="also serve HTTPS on this port (with --tls-cert and --tls-key)")
    ap.add_argument("--tls-cert", default=None, help="PEM certificate chain for --tls-port")
    ap.add_argument("--tls-key", default=None, help="PEM private key for --tls-port")
    args = ap.parse_args()
    if args.tls_port is not None and not (args.tls_cert and args.tls_key):
        ap.error("--tls-port needs --tls-cert and --tls-key")

    Handler.engine = Engine(args.path)
    if args.password_file:
        with open(args.password_file) as f:
            Handler.auth_password = f.read().strip()
        Handler.auth_user = args.user or "default"
    Handler.http_compression_default = not args.no_http_compression
    srv = Server((args.host, args.port), Handler)
    tls_srv = None
    if args.tls_port is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        tls_srv = TlsServer((args.host, args.tls_port), Handler)
        tls_srv.ssl_context = ctx
        threading.Thread(target=tls_srv.serve_forever, name="https", daemon=True).start()
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(str(os.getpid()))
    log(f"chdb-http: ClickHouse {Handler.engine.version} (chdb) on http://{args.host}:{args.port} "
        f"data={args.path} auth={'on' if Handler.auth_password is not None else 'off'}"
        + (f" https://{args.host}:{args.tls_port}" if tls_srv else ""))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

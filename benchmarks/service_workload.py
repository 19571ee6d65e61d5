"""Speed of the segment prediction service, measured over loopback HTTP like a real client sees it.

`measure_service(output_dir)` starts `serve()` in a child process on a free loopback port (one
uvicorn worker, exactly what `segmentation-pipeline serve` runs), waits for /ready and drives it with
a small asyncio HTTP/1.1 client on keep-alive connections (a few microseconds per request, so the
generator leaves the server most of the shared CPU). It measures:

- `manual_1`: POST /segment/manual from one client, one request at a time (latency floor);
- `manual_50`: 50 clients each sending as fast as answers come (a closed loop): the throughput.
  Latency there is queueing by construction (50 requests always in flight: mean latency =
  50 / throughput), so it is reported but is not the latency figure;
- `manual_50_paced`: 50 connections sending together `rate` requests/s in total (an open loop, each
  connection on its own schedule): the latency at that load, the p99 the goal is about;
- `batch`: POST /segment/batch with `batch_rows` rows, sent one after the other: wall time per call
  as the client sees it (encoding excluded, transfer and decoding of the answer included).

Every phase is bounded in requests and seconds. Any non-200 answer is counted in `errors`. Each phase
also records the server process's CPU time per request (`server_cpu_ms_per_request`, from
/proc/<pid>/stat): on a machine shared with other work, wall-clock figures move with the load but
this one does not, and 1000 / it is the request rate one core could sustain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.measure import REPO_ROOT

MANUAL_BODY = json.dumps({"recency": 30, "frequency": 5, "monetary": 1500.0}).encode()
GOALS = {"manual_50_paced_p99_ms": 10.0, "manual_50_requests_per_second": 1000.0, "batch_median_ms": 200.0}


def measure_service(
    output_dir: str | Path,
    *,
    requests: int = 3000,
    concurrency: int = 50,
    rate: float = 1000.0,
    batch_rows: int = 10_000,
    batch_calls: int = 7,
    phase_seconds: float = 20.0,
) -> dict:
    """Latency and throughput figures of a service on the set published under `output_dir`."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key != "SEGMENTATION_API_KEY"}
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from segmentation_pipeline.service import serve; "
         "serve(sys.argv[1], port=int(sys.argv[2]))", str(output_dir), str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        return asyncio.run(_measure(port, requests, concurrency, rate, batch_rows, batch_calls, phase_seconds, server))
    finally:
        server.terminate()
        server.wait(timeout=10)


async def _measure(port, requests, concurrency, rate, batch_rows, batch_calls, phase_seconds, server) -> dict:
    await _wait_ready(port, server)
    await _closed_loop(port, 1, 200, MANUAL_BODY, "/segment/manual", phase_seconds)  # warm-up
    phases = {
        "manual_1": lambda: _closed_loop(port, 1, requests // 3, MANUAL_BODY, "/segment/manual", phase_seconds),
        f"manual_{concurrency}": lambda: _closed_loop(port, concurrency, requests, MANUAL_BODY, "/segment/manual", phase_seconds),
        f"manual_{concurrency}_paced": lambda: _paced(port, concurrency, rate, requests, MANUAL_BODY, phase_seconds),
        "batch": lambda: _batches(port, batch_rows, batch_calls, phase_seconds * 3),
    }
    results = {}
    for name, phase in phases.items():
        cpu_before = _cpu_seconds(server.pid)
        results[name] = await phase()
        answered = results[name].get("requests") or results[name]["calls"]
        results[name]["server_cpu_ms_per_request"] = round((_cpu_seconds(server.pid) - cpu_before) * 1000 / answered, 3)
    results["goals"] = {
        # the goals are about 50 clients and 1,000 requests/s; with other settings these are only indicative
        "manual_50_paced_p99_ms": (results[f"manual_{concurrency}_paced"]["p99_ms"], "<=", GOALS["manual_50_paced_p99_ms"]),
        "manual_50_requests_per_second": (results[f"manual_{concurrency}"]["requests_per_second"], ">=",
                                          GOALS["manual_50_requests_per_second"]),
        "batch_median_ms": (results["batch"]["median_ms"], "<=", GOALS["batch_median_ms"]),
    }
    results["settings"] = {"requests": requests, "concurrency": concurrency, "rate": rate, "batch_rows": batch_rows,
                           "batch_calls": batch_calls, "load_average": os.getloadavg()}
    return results


class _Connection:
    """One keep-alive HTTP/1.1 connection: just enough protocol for this service's answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        return int(lines[0].split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def _wait_ready(port: int, server: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the service exited: {server.stderr.read().decode()[-2000:]}")
        try:
            connection = await _Connection.open(port)
            status, _ = await connection.request("GET", "/ready")
            connection.close()
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the service was not ready within {timeout:.0f} s")


async def _closed_loop(port, clients, requests, body, path, seconds) -> dict:
    """`clients` connections, each sending its next request when the last is answered."""
    latencies, errors = [], 0
    deadline = time.monotonic() + seconds

    async def client(share: int) -> None:
        nonlocal errors
        connection = await _Connection.open(port)
        for _ in range(share):
            if time.monotonic() > deadline:
                break
            started = time.perf_counter()
            status, _ = await connection.request("POST", path, body)
            latencies.append(time.perf_counter() - started)
            errors += status != 200
        connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(requests // clients) for _ in range(clients)))
    return _summary(latencies, errors, time.perf_counter() - started)


async def _paced(port, connections, rate, requests, body, seconds) -> dict:
    """`connections` connections sending `rate` requests/s together, each on a fixed schedule
    (offset so they do not fire at once); latency counts from the scheduled send time, so a late
    send (the client or server falling behind) shows as latency instead of being hidden."""
    latencies, errors = [], 0
    interval = connections / rate
    per_connection = min(requests // connections, int(seconds / interval))

    async def client(index: int, start: float) -> None:
        nonlocal errors
        connection = await _Connection.open(port)
        for n in range(per_connection):
            scheduled = start + (n + index / connections) * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status, _ = await connection.request("POST", "/segment/manual", body)
            latencies.append(time.perf_counter() - scheduled)
            errors += status != 200
        connection.close()

    start = time.perf_counter() + 0.1
    await asyncio.gather(*(client(i, start) for i in range(connections)))
    return _summary(latencies, errors, time.perf_counter() - start)


async def _batches(port, rows, calls, seconds) -> dict:
    rng = np.random.default_rng(0)
    body = json.dumps({"rows": [
        {"recency": int(r), "frequency": int(f), "monetary": round(float(m), 2)}
        for r, f, m in zip(rng.integers(0, 365, rows), rng.integers(1, 40, rows), rng.uniform(5, 20_000, rows))
    ]}).encode()
    connection = await _Connection.open(port)
    await connection.request("POST", "/segment/batch", body)  # warm-up
    durations, errors = [], 0
    deadline = time.monotonic() + seconds
    for _ in range(calls):
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        status, answer = await connection.request("POST", "/segment/batch", body)
        json.loads(answer)
        durations.append(time.perf_counter() - started)
        errors += status != 200
    connection.close()
    milliseconds = np.array(durations) * 1000
    return {"rows": rows, "calls": len(durations), "median_ms": round(float(np.median(milliseconds)), 1),
            "max_ms": round(float(milliseconds.max()), 1), "request_bytes": len(body), "errors": errors}


def _summary(latencies: list[float], errors: int, seconds: float) -> dict:
    milliseconds = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(milliseconds, 50)), 2),
        "p99_ms": round(float(np.percentile(milliseconds, 99)), 2),
        "max_ms": round(float(milliseconds.max()), 2),
        "errors": errors,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


METHODS = ("kmeans", "gmm", "fuzzy_cmeans", "autoencoder_kmeans", "hdbscan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, help="a pipeline output folder with a published set; "
                        "default: a set published from the synthetic generator (--customers, --methods)")
    parser.add_argument("--customers", type=int, default=2000, help="customers of the generated set (default 2000)")
    parser.add_argument("--methods", default=",".join(METHODS), help="methods of the generated set (default all five)")
    parser.add_argument("--requests", type=int, default=3000, help="requests per /segment/manual phase (default 3000)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s offered in the paced phase (default 1000)")
    parser.add_argument("--batch-rows", type=int, default=10_000, help="rows per /segment/batch call (default 10000)")
    parser.add_argument("--batch-calls", type=int, default=7, help="timed /segment/batch calls (default 7)")
    parser.add_argument("--phase-seconds", type=float, default=20.0,
                        help="time limit of each /segment/manual phase; the batch phase gets 3x (default 20)")
    parser.add_argument("--json", type=Path, help="write the results here instead of printing them")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        output_dir = args.output_dir
        published_seconds = None
        if output_dir is None:
            from segmentation_pipeline_tests.service_support import publish_retail_set

            output_dir = Path(scratch)
            started = time.perf_counter()
            publish_retail_set(output_dir, "benchmark", methods=tuple(args.methods.split(",")), customers=args.customers)
            published_seconds = round(time.perf_counter() - started, 2)
        results = measure_service(output_dir, requests=args.requests, concurrency=args.concurrency, rate=args.rate,
                                  batch_rows=args.batch_rows, batch_calls=args.batch_calls, phase_seconds=args.phase_seconds)
    results["published_set"] = {"output_dir": str(args.output_dir) if args.output_dir else None,
                                "customers": None if args.output_dir else args.customers,
                                "methods": None if args.output_dir else args.methods.split(","),
                                "publish_seconds": published_seconds}
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

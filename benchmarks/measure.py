"""Measuring tools: peak RSS of this process or of a child, child processes timed from outside,
medians, and the facts about the machine a result only means something on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

PACKAGES = ("pandas", "numpy", "pyarrow", "duckdb", "scikit-learn", "dagster", "lifetimes", "polars")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status (Linux) in MB, or None where there is no such file."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def reset_peak_rss() -> float | None:
    """Restart the peak-RSS mark at the current RSS (Linux: `5` to clear_refs); return the current RSS in MB.

    Without the reset (other systems, restricted containers) the peak is the whole process's, loading included.
    """
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def peak_rss_resettable() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS of this process since the last reset."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(maxrss / (2**20 if sys.platform == "darwin" else 1024), 1)


@dataclass
class ChildRun:
    returncode: int
    seconds: float  # wall, from outside: interpreter start and imports included
    peak_rss_mb: float  # the child's own peak (and that of the children it waited for)
    stdout: str
    stderr: str


def run_child(command: list[str], env: dict | None = None, cwd: Path = REPO_ROOT, timeout: float | None = None) -> ChildRun:
    """Run a command to completion; its wall time and peak RSS come from wait4, so nothing else pollutes them.

    With `timeout` (seconds) a child still running then is killed: its return code is then -9 and its
    stderr ends with a line saying so.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        # with a time limit the child leads its own process group, so the limit also ends what it started
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=bool(timeout))
        timer = threading.Timer(timeout, _kill_group, (process.pid,)) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            if timer:
                timer.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        maxrss = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
        stderr = err.read().decode(errors="replace")
        if timeout and seconds >= timeout and process.returncode < 0:
            stderr += f"\nkilled after the {timeout:g} s time limit\n"
        return ChildRun(
            returncode=process.returncode,
            seconds=round(seconds, 3),
            peak_rss_mb=round(maxrss, 1),
            stdout=out.read().decode(errors="replace"),
            stderr=stderr,
        )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def medians(samples: list[dict], keys: tuple[str, ...]) -> dict:
    """Median of each key over the samples that have it (each key on its own: the runs are noisy)."""
    result = {}
    for key in keys:
        values = [s[key] for s in samples if s.get(key) is not None]
        result[key] = round(statistics.median(values), 4) if values else None
    return result


def machine_info() -> dict:
    """CPU, memory, OS, package versions, commit, and the load when the benchmark started."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": _memory_gb(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_per_stage": peak_rss_resettable(),
        "packages": {name: _version(name) for name in PACKAGES},
        "git_commit": _git_commit(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """HEAD, with `+changes` when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+changes" if changed.stdout.strip() else "")

"""One benchmark measurement (one model on one runtime) in a process of its own.

A fresh process per row keeps runtimes from sharing allocators, thread pools or caches, makes
its peak memory that row's alone, and lets a crashing runtime fail one row, not the bench.
Reads a JSON job on stdin, writes one JSON row on stdout:

    python -m lrgan_edge.benchmarks.worker < job.json

Timing hygiene: threads pinned; the first call (which also grows every runtime's arenas) is
the memory probe and is not timed; then `warmup` untimed calls per batch size; then `repeats`
timed passes over `images` images; CUDA is synchronised inside every call.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import sys
import threading
import time

import torch


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled every millisecond."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.before = self.peak = self.rss()

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self.page
        except OSError:                                   # macOS: the high-water mark is what we have
            scale = 1 if sys.platform == "darwin" else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def __enter__(self):
        self.before = self.peak = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


def summary(values: list[float], digits: int = 4) -> dict[str, float]:
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def timed_passes(run, inputs, batch: int, images: int, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds per 100 images of each pass, and seconds of every call."""
    calls = math.ceil(images / batch)
    per_pass, per_call = [], []
    for _ in range(repeats):
        total = 0.0
        for _ in range(calls):
            start = time.perf_counter()
            run(inputs)
            elapsed = time.perf_counter() - start
            per_call.append(elapsed)
            total += elapsed
        per_pass.append(total * 100 / (calls * batch))
    return per_pass, per_call


def measure(job: dict) -> dict:
    from .models import ModelSpec, build_model
    from .runtimes import RUNTIMES, make_runner, runtime_version, set_threads

    rt = RUNTIMES[job["runtime"]]
    threads = job["threads"]
    set_threads(threads)
    spec = ModelSpec(**job["model"])
    module = build_model(spec, "eager") if rt.artifact is None else None
    gen = torch.Generator().manual_seed(0)
    make = lambda b: [torch.randn([b, *shape[1:]], generator=gen) for shape in job["input_shapes"]]  # noqa: E731
    batch, images, repeats, warmup = job["batch_size"], job["images"], job["repeats"], job["warmup"]
    row: dict = {"runtime_version": runtime_version(rt), "threads": threads}

    run, place = make_runner(rt, module, job["artifacts"].get("batch"), job["input_names"], threads)
    x = place(make(batch))
    if rt.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        run(x)
        row["memory"] = {"method": "torch.cuda.max_memory_allocated", "peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
        row["device_name"] = torch.cuda.get_device_name()
    else:
        with PeakRSS() as mem:
            run(x)
        row["memory"] = {"method": "process RSS sampled every 1 ms", "peak_mb": round(mem.peak / 2**20, 1),
                         "increase_mb": round((mem.peak - mem.before) / 2**20, 1)}
    for _ in range(warmup):
        run(x)
    per_pass, _ = timed_passes(run, x, batch, images, repeats)
    row["batch"] = {"batch_size": batch, "images": math.ceil(images / batch) * batch, "repeats": repeats,
                    "seconds_per_100": summary(per_pass)}

    if job["single_images"] > 0:
        if job["artifacts"].get("single") != job["artifacts"].get("batch"):    # .pte / Core ML: a batch-1 program
            run, place = make_runner(rt, module, job["artifacts"].get("single"), job["input_names"], threads)
        x = place(make(1))
        for _ in range(max(warmup, 1)):
            run(x)
        per_pass, per_call = timed_passes(run, x, 1, job["single_images"], job["single_repeats"])
        ms = [c * 1000 for c in per_call]
        row["single"] = {"batch_size": 1, "images": job["single_images"], "repeats": job["single_repeats"],
                         "seconds_per_100": summary(per_pass),
                         "latency_ms": {"p50": round(percentile(ms, 50), 3), "p90": round(percentile(ms, 90), 3),
                                        "min": round(min(ms), 3), "max": round(max(ms), 3)}}
    return row


def main() -> None:
    job = json.loads(sys.stdin.read())
    row = measure(job)
    sys.stdout.write("\n" + json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

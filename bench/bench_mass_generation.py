"""Benchmark mass certificate generation: 1,000 holders -> one merged PDF and -> a ZIP of PDFs.

    .venv/bin/python bench/bench_mass_generation.py [--holders 1000] [--baseline-runs 15] [--wos-holders 1000]
                                                    [--fallback-holders 60]

Needs no database: it renders the sample certificate of ``app.insurance.pdf.sample_data`` (the same
template, fonts and data shape the app uses). Reports, all from this one run:

- baseline: the median of N single plain xhtml2pdf renders of the same certificate (HTML -> PDF, no
  stamping), i.e. what a naive one-render-per-holder loop pays per holder;
- for each mode (merged, zip): wall time of ``render_batch`` and peak RSS, each measured in a fresh
  child process (peak = the child's own max RSS + the largest of its worker processes, so worker
  processes are included); the per-certificate cost and its ratio to the baseline;
- the same for a WOS certificate, whose wording names each holder in a paragraph of its own (the
  name is stamped into lines kept for it: still no render per holder);
- the fallback path, a description naming the holder inside a sentence: every holder is rendered in
  full, on two processes (run with fewer holders by default: it costs a full render per holder).

Every output is checked (page count / ZIP members, holder names extractable) before it is reported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def holders(n: int):
    from app.insurance.pdf import HolderInfo

    return [HolderInfo(name=f"Holder {i:04d} General Contractors of Central Texas LLC", address=f"{100 + i} Main St",
                       city="Austin", state="TX", zip_code="78701") for i in range(n)]


def child(mode: str, kind: str, count: int, out_dir: str) -> None:
    """Runs in a fresh process: one render_batch, then prints JSON with wall time and peak RSS."""
    from app.insurance import pdf

    data = pdf.sample_data("coi" if kind == "inline" else kind)
    items = holders(count)
    data["holder"] = {**data["holder"], "name": items[0].name}
    if kind == "coi_wos":  # the wording names the holder, as build_certificate_data writes it
        data["description"] = pdf.WOS_WORDING.format(holder=items[0].name) + "\nProject: Eastside Elementary."
    if kind == "inline":  # staff wrote the holder's name inside a sentence: every holder is rendered in full
        data["description"] = f"Roofing work for {items[0].name} at its yard, as agreed in the contract."
    out = Path(out_dir) / f"out-{mode}-{kind}.{'zip' if mode == 'zip' else 'pdf'}"
    start = time.perf_counter()
    written = pdf.render_batch(data, items, out, mode=mode)
    wall = time.perf_counter() - start
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"written": written, "wall": wall, "self_mb": self_kb / 1024, "children_mb": children_kb / 1024,
                      "bytes": out.stat().st_size, "path": str(out)}))


def verify(result: dict, mode: str, count: int) -> None:
    from pypdf import PdfReader

    path = Path(result["path"])
    names = [f"Holder {i:04d}" for i in (0, count // 2, count - 1)]
    if mode == "zip":
        with zipfile.ZipFile(path) as zf:
            members = zf.namelist()
            assert len(members) == count, (len(members), count)
            for i in (0, count // 2, count - 1):
                text = PdfReader(io.BytesIO(zf.read(members[i]))).pages[0].extract_text()
                assert f"Holder {i:04d}" in text, (i, text[-200:])
    else:
        reader = PdfReader(path)
        per = len(reader.pages) // count
        assert len(reader.pages) == count * per, (len(reader.pages), count)
        for i, name in zip((0, count // 2, count - 1), names, strict=True):
            assert name in reader.pages[i * per].extract_text()
    path.unlink()


def run_child(mode: str, kind: str, count: int, out_dir: str) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", mode, kind, str(count), out_dir],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - started
    result["peak_mb"] = result["self_mb"] + result["children_mb"]
    verify(result, mode, count)
    return result


def baseline(runs: int) -> float:
    from app.insurance import pdf

    data = pdf.sample_data("coi")
    html = pdf.render_html(data)
    pdf._html_to_pdf(html)  # warm up (imports, fonts, template compile)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        pdf._html_to_pdf(pdf.render_html(data))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holders", type=int, default=1000)
    parser.add_argument("--baseline-runs", type=int, default=15)
    parser.add_argument("--wos-holders", type=int, default=1000, help="0 to skip the WOS scenario")
    parser.add_argument("--fallback-holders", type=int, default=60, help="0 to skip the full-render path")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, kind, count, out_dir = args.child
        child(mode, kind, int(count), out_dir)
        return

    print(f"machine: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    base = baseline(args.baseline_runs)
    print(f"baseline: one plain xhtml2pdf render of the certificate, median of {args.baseline_runs}: "
          f"{base * 1000:.1f} ms")
    scenarios = [("merged", "coi", args.holders), ("zip", "coi", args.holders)]
    if args.wos_holders:
        scenarios += [("merged", "coi_wos", args.wos_holders), ("zip", "coi_wos", args.wos_holders)]
    if args.fallback_holders:
        scenarios += [("merged", "inline", args.fallback_holders), ("zip", "inline", args.fallback_holders)]
    with tempfile.TemporaryDirectory(prefix="certdesk-bench-") as out_dir:
        print(f"{'mode':7} {'kind':8} {'holders':>7} {'wall s':>7} {'process s':>9} {'peak MB':>8} "
              f"{'output MB':>9} {'ms/cert':>8} {'x baseline':>10}")
        for mode, kind, count in scenarios:
            r = run_child(mode, kind, count, out_dir)
            per = r["wall"] / count
            print(f"{mode:7} {kind:8} {count:>7} {r['wall']:>7.2f} {r['process_wall']:>9.2f} {r['peak_mb']:>8.0f} "
                  f"{r['bytes'] / 1e6:>9.1f} {per * 1000:>8.2f} {per / base:>10.3f}")
    print("wall s = render_batch only; process s = the whole child process (interpreter start and imports "
          "included); peak MB = max RSS of the child plus its largest worker process.")


if __name__ == "__main__":
    main()

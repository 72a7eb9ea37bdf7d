"""Tests of the sentiment chapter (`accel_course.sentiment`): loaders on the real samples, bad input, the synthetic
generator, the verified checkpoint, batching, fine-tuning through `fit`, save/reload, `launch`, and the CLI runner."""
import bz2, json, os, re, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course.core import DataError, RunContext, run_project, validate_metrics
from accel_course.sentiment import (LABELS2, LABELS3, CheckpointError, LengthGroupedBatchSampler, PadCollator,
                                    TokenizedReviews, classification_metrics, confident_mistakes, default_checkpoint_dir,
                                    encode_labels, finetune, load_classifier, load_fasttext, load_finetuned, load_hf,
                                    load_path, load_reviews, load_table, load_uci, make_loader, make_reviews,
                                    padding_share, resolve_checkpoint, save_classifier, sentiment_job,
                                    stars_to_sentiment, tfidf_lr, verify_checkpoint)

from _real import REPO, data, needs

UCI = data("sentiment/amazon_cells_labelled.txt")              # ../shared/data's, else tests/fixtures'
FT = data("sentiment/amazon_polarity_test_first200.ft.txt")     # ../shared/data only
need_uci = needs("sentiment/amazon_cells_labelled.txt")
need_ft = needs("sentiment/amazon_polarity_test_first200.ft.txt")


# ---------------------------------------------------------------- real formats
@need_uci
def test_uci_reads_every_line():
    d = load_uci(UCI)
    n_lines = sum(1 for l in UCI.read_text(encoding="utf-8").splitlines() if l.strip())
    assert len(d) == n_lines == 1000
    assert d.labels == LABELS2 and set(d.df.label) == {0, 1}
    assert d.df.text.str.strip().str.len().min() > 0 and not d.synthetic
    assert load_path(UCI).df.equals(d.df)                       # format detection


@need_ft
def test_fasttext_sample_and_bz2(tmp_path):
    d = load_fasttext(FT)
    assert len(d) == 200 and set(d.df.label) == {0, 1} and d.labels == LABELS2
    first = FT.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("__label__2") and d.df.label[0] == 1 and d.df.text[0] == first[len("__label__2 "):].strip()
    z = tmp_path / "test.ft.txt.bz2"; z.write_bytes(bz2.compress(FT.read_bytes()))   # the Kaggle files are bz2
    assert load_fasttext(z).df.equals(d.df) and len(load_fasttext(z, n=10)) == 10
    assert load_path(FT).df.equals(d.df)


def test_uci_quoting_keeps_every_line(tmp_path):
    p = tmp_path / "q.txt"
    p.write_text('"Best phone ever, I said.\t1\nBad "battery" life\t0\nIt is "fine\t1\nOk\t0\n', encoding="utf-8")
    assert len(pd.read_csv(p, sep="\t", header=None)) < 4          # pandas' default quoting merges lines
    d = load_uci(p)
    assert len(d) == 4 and list(d.df.label) == [1, 0, 1, 0] and d.df.text[0].startswith('"Best')


def test_tables_with_chosen_columns(tmp_path):
    df = pd.DataFrame({"review": ["great", "meh", "awful", "fine"], "stars": [5, 3, 1, 4], "lab": ["pos", "neutral", "negative", "Positive"]})
    df.to_csv(tmp_path / "r.csv", index=False); df.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    df.to_parquet(tmp_path / "r.parquet")
    for f in ("r.csv", "r.jsonl", "r.parquet"):
        d = load_table(tmp_path / f, "review", "stars")
        assert list(d.df.label) == [2, 1, 0, 2] and d.labels == LABELS3 and list(d.df.text) == list(df.review)
        assert list(load_table(tmp_path / f, "review", "lab").df.label) == [2, 1, 0, 2]
    assert list(stars_to_sentiment([1, 2, 3, 4, 5])) == [0, 0, 1, 2, 2]
    y, labels = encode_labels([0, 1, 1]); assert labels == LABELS2 and list(y) == [0, 1, 1]
    y, labels = encode_labels([1, 2], scheme="stars"); assert labels == LABELS3 and list(y) == [0, 0]


# ---------------------------------------------------------------- bad input
def test_bad_input_clear_errors(tmp_path):
    (tmp_path / "empty_text.txt").write_text("Good\t1\n \t0\n")
    with pytest.raises(DataError, match=r"empty_text.txt.*empty text in line 2"): load_uci(tmp_path / "empty_text.txt")
    (tmp_path / "bad_label.txt").write_text("Good\t1\nBad\t2\n")
    with pytest.raises(DataError, match=r"bad_label.txt: line 2: unknown label '2'"): load_uci(tmp_path / "bad_label.txt")
    (tmp_path / "x.ft.txt").write_text("__label__2 good\n__label__3 what\n")
    with pytest.raises(DataError, match=r"line 2: unknown label '__label__3'"): load_fasttext(tmp_path / "x.ft.txt")
    (tmp_path / "y.ft.txt").write_text("__label__2 good\nno label here\n")
    with pytest.raises(DataError, match=r"line 2: expected '__label__1 text'"): load_fasttext(tmp_path / "y.ft.txt")
    pd.DataFrame({"text": ["ok", "fine"], "label": [1, 9]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match=r"t.csv: column 'label': unknown label values \[1, 9\]"): load_table(tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"missing required column\(s\) \['review'\]"): load_table(tmp_path / "t.csv", "review")
    pd.DataFrame({"text": ["ok", None], "label": [1, 0]}).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(DataError, match=r"e.csv: column 'text': empty text in row 1"): load_table(tmp_path / "e.csv")
    pd.DataFrame({"text": ["a"], "label": ["great"]}).to_csv(tmp_path / "n.csv", index=False)
    with pytest.raises(DataError, match=r"unknown label 'great'"): load_table(tmp_path / "n.csv")
    (tmp_path / "zero.txt").write_text("")
    with pytest.raises(DataError, match="file is empty"): load_uci(tmp_path / "zero.txt")
    with pytest.raises(DataError, match="nope.csv: no such file or folder"): load_reviews(str(tmp_path / "nope.csv"))
    (tmp_path / "weird.txt").write_text("just some text\n")
    with pytest.raises(DataError, match="unknown review format"): load_path(tmp_path / "weird.txt")
    with pytest.raises(DataError, match="star ratings must be integers 1..5"): stars_to_sentiment([0, 3])


def test_hf_defunct_and_offline_messages():
    with pytest.raises(DataError, match="amazon_reviews_multi.*defunct"): load_hf("amazon_reviews_multi")
    with pytest.raises(DataError, match="defunct"): load_reviews("hf:amazon_reviews_multi")
    if os.environ.get("HF_DATASETS_OFFLINE") == "1":
        with pytest.raises(DataError, match="needs internet"): load_hf("yelp_review_full", n=10)


# ---------------------------------------------------------------- synthetic generator
def test_generator_properties():
    a = make_reviews(1500, seed=3)
    assert a.equals(make_reviews(1500, seed=3)) and not a.equals(make_reviews(1500, seed=4))
    assert set(a.label) == {0, 1, 2} and a.label.value_counts(normalize=True).min() > 0.15
    assert a.text.str.strip().str.len().min() > 0
    assert a.negation.mean() > 0.2 and a.contrast.mean() > 0.2 and 0.01 < a.noisy_label.mean() < 0.06
    assert set(a.category) == {"electronics", "home", "clothing", "toys", "beauty"}
    assert (a.stars.map({1: 0, 2: 0, 3: 1, 4: 2, 5: 2}) != a.label).mean() == pytest.approx(a.noisy_label.mean())
    assert a.text.str.contains(" but | although |Although ", regex=True).mean() > 0.2
    assert a.text.str.contains(r"\bnot\b|n't\b|never|hardly", regex=True).mean() > 0.2
    d = load_reviews("sample", n=400, seed=0)
    assert d.synthetic and len(d) == 400 and d.labels == LABELS3
    b = d.binary(); assert b.labels == LABELS2 and len(b) == (d.df.label != 1).sum()


def test_generator_not_trivial_for_tfidf():
    df = make_reviews(2400, seed=0)
    tr, te = df[:1800], df[1800:]
    acc = (tfidf_lr().fit(tr.text, tr.label).predict(te.text) == te.label).mean()
    assert 0.5 < acc < 0.85, acc                   # learnable, but well below 100%


# ---------------------------------------------------------------- checkpoint
def test_checkpoint_verified_and_mismatch(tmp_path):
    d = default_checkpoint_dir()
    assert verify_checkpoint(d).startswith("53aa5117")
    assert resolve_checkpoint(None) == str(d) == resolve_checkpoint("all-MiniLM-L6-v2")
    assert resolve_checkpoint("bert-base-uncased") == "bert-base-uncased"          # hub names pass through
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match="does not match the expected 53aa5117"): verify_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="config.json"): resolve_checkpoint(str(tmp_path))


def test_uci_unicode_line_separators_inside_sentences(tmp_path):
    """Issue 14: the real imdb_labelled.txt has sentences with U+0085 (NEXT LINE); str.splitlines() splits there, the
    CSV parser does not. Every row loads, with the characters kept."""
    lines = ["A great film\u0085really great.\t1", "Dull\u2028and long.\t0", "Fine\u2029ending\x1c.\t1", "Bad.\t0"]
    p = tmp_path / "imdb_like.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(p.read_text(encoding="utf-8").splitlines()) > len(lines)      # the old count was wrong here
    d = load_uci(p)
    assert len(d) == 4 and list(d.df.label) == [1, 0, 1, 0]
    assert d.df.text[0] == "A great film\u0085really great." and "\u2028" in d.df.text[1] and "\u2029" in d.df.text[2]
    q = tmp_path / "crlf.txt"; q.write_bytes("Good\u0085one\t1\r\nBad\t0\r\n".encode("utf-8"))   # Windows line ends
    assert len(load_uci(q)) == 2 and load_uci(q).df.text[0] == "Good\u0085one"


def _bench(name):
    "A benchmark script of `benchmarks/`, imported as a module."
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"{name}_bench", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def _stubbed_quality_bench(p_pos: float):
    "sentiment_quality.py whose fine-tuning is a stub that gives every text P(positive) = p_pos."
    bench = _bench("sentiment_quality")
    class Stub:
        class history: best_epoch = 1
        def predict_proba(self, texts): return np.tile([1 - p_pos, p_pos], (len(texts), 1))
    bench.finetune_recipe = lambda tr, **kw: Stub()
    return bench


def _toy_uci(f, n: int, seed: int, noun: str):
    "A UCI-format file of n four-word toy sentences, labels alternating 0/1."
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "great", "awful", "fine", "poor", "nice", "broken"]
    f.write_text("".join(f"{' '.join(rng.choice(words, 4))} {noun}\t{i % 2}\n" for i in range(n)), encoding="utf-8")
    return f


def test_quality_benchmark_names_its_data_file(tmp_path, capsys):
    """`benchmarks/sentiment_quality.py --data FILE` says which file it used (it used to print "UCI Amazon sentences"
    whatever the file) and prints every model's mean +- std side by side. Fine-tuning is a stub: only the report is
    under test."""
    bench = _stubbed_quality_bench(0.6)
    f = _toy_uci(tmp_path / "imdb_labelled.txt", 40, seed=0, noun="film")
    bench.main(["--data", str(f), "--folds", "2", "--models", "tfidf_lr,finetuned_cls,finetuned_mean"])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"data: {f} ") and "Amazon" not in out, out
    summary = [l for l in out.splitlines() if "fold CV accuracy" in l]
    assert len(summary) == 1 and str(f) in summary[0], out
    rows = {l.split()[0]: l for l in out.splitlines() if l.startswith("  ")}
    assert set(rows) == {"tfidf_lr", "finetuned_cls", "finetuned_mean"}, out
    assert "accuracy 0.5000 +- 0.0000" in rows["finetuned_cls"] and "+-" in rows["tfidf_lr"]   # the stub always says 1


def test_saved_probabilities_are_combined_on_the_same_folds(tmp_path, capsys):
    """`sentiment_quality.py --save-probas` writes every model's out-of-fold P(positive) with its fold and label;
    `sentiment_combine.py` re-scores them per fold and averages groups of columns. Fine-tuning is a stub here."""
    bench, comb = _stubbed_quality_bench(0.7), _bench("sentiment_combine")
    f = _toy_uci(tmp_path / "yelp_labelled.txt", 60, seed=1, noun="food")
    out_csv = tmp_path / "run.csv"
    bench.main(["--data", str(f), "--folds", "3", "--models", "tfidf_lr,finetuned_cls", "--save-probas", str(out_csv)])
    printed = capsys.readouterr().out
    saved = pd.read_csv(out_csv)
    assert list(saved.columns) == ["fold", "label", "tfidf_lr", "finetuned_cls"] and len(saved) == 60
    assert sorted(saved.fold.value_counts()) == [20, 20, 20] and (saved.finetuned_cls == 0.7).all()
    assert not list(tmp_path.glob("*.tmp"))                                        # written through a temp file
    comb.main([str(out_csv), str(out_csv), "--ensemble", "both=tfidf_lr,finetuned_cls"])
    rows = {l.split()[0]: l for l in capsys.readouterr().out.splitlines() if l.startswith("  ")}
    tf_bench = re.search(r"tfidf_lr\s+accuracy (\S+) \+- (\S+)", printed).groups()
    assert rows["tfidf_lr"].split()[1:4] == [tf_bench[0], "+-", tf_bench[1]]      # the same folds, the same score
    assert rows["finetuned_cls"].split()[1] == "0.5000" and "both" in rows       # the stub says "positive" to all
    other = tmp_path / "other.csv"; saved.assign(label=1 - saved.label).to_csv(other, index=False)
    with pytest.raises(SystemExit, match="folds or labels differ"): comb.main([str(out_csv), str(other)])


# ---------------------------------------------------------------- batching
@pytest.fixture(scope="module")
def tiny():
    return load_classifier(labels=LABELS3, num_layers=1)


def test_dynamic_padding_and_grouping(tiny):
    _, tok = tiny
    df = make_reviews(300, seed=1)
    ds = TokenizedReviews(tok, df.text, df.label, max_length=64)
    b = PadCollator(tok.pad_token_id)([ds[0], ds[1]])
    assert b["input_ids"].shape[1] == max(ds.lengths[:2]) and b["attention_mask"].sum() == sum(ds.lengths[:2])
    shares = {k: padding_share(make_loader(ds, 16, pad_id=tok.pad_token_id, **kw)) for k, kw in
              dict(fixed=dict(padding="max_length", group_by_length=False), dyn=dict(group_by_length=False), grouped={}).items()}
    assert shares["fixed"] > shares["dyn"] > shares["grouped"] and shares["grouped"] < 0.1
    s = LengthGroupedBatchSampler(ds.lengths, 16, seed=0)
    e0, e1 = list(s), list(s)
    assert sorted(sum(e0, [])) == list(range(300)) and e0 != e1
    s2 = LengthGroupedBatchSampler(ds.lengths, 16, seed=0); s2.set_epoch(1); assert list(s2) == e1


# ---------------------------------------------------------------- fine-tuning, saving, reloading
def test_finetune_save_reload(tiny, tmp_path):
    model, tok = tiny
    df = make_reviews(160, seed=2)
    r = finetune(df[:128], df[128:], model=model, tokenizer=tok, lr=1e-4, epochs=1, max_length=32, batch_size=16, verbose=False)
    row = r.history.rows[0]
    assert np.isfinite(row["train_loss"]) and {"val_loss", "accuracy", "f1_macro"} <= set(row)
    out = save_classifier(r.model, r.tokenizer, tmp_path / "m", LABELS3, dict(r.config))
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin")) and not list(out.glob("*.pt"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"} and cfg["label2id"]["positive"] == 2
    from transformers import AutoModelForSequenceClassification
    assert AutoModelForSequenceClassification.from_pretrained(out, use_safetensors=True).config.num_labels == 3
    clf = load_finetuned(out)
    texts = list(df.text[128:140])
    assert np.allclose(clf.predict_proba(texts), r.predict_proba(texts), atol=1e-5)
    p = clf.predict("Not bad at all for the price.")
    assert p["label"] in LABELS3 and abs(sum(p["probabilities"].values()) - 1) < 1e-5
    (tmp_path / "nosafe").mkdir(); (tmp_path / "nosafe" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no .safetensors"): load_finetuned(tmp_path / "nosafe")


def test_metrics_and_mistakes():
    m = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2], LABELS3)
    assert m["accuracy"] == 0.75 and m["recall_neutral"] == 0 and m["precision_positive"] == pytest.approx(2 / 3)
    mist = confident_mistakes(["a", "b", "c"], [0, 1, 2], np.array([[.9, .05, .05], [.8, .1, .1], [.1, .3, .6]]), LABELS3)
    assert list(mist.text) == ["b"] and mist.confidence[0] == 0.8


def test_launch_two_processes():
    from accel_course.launch import launch
    df = make_reviews(96, seed=5)
    res = launch(sentiment_job, df[:64], df[64:], dict(lr=1e-4, epochs=1, max_length=32, batch_size=8, num_layers=1),
                 num_processes=2, mixed_precision="bf16", verbose=False)
    assert res["world_size"] == 2 and "MULTI_CPU" in res["distributed_type"]
    assert res["digests"][0] == res["digests"][1]           # one job: identical weights on both ranks


# ---------------------------------------------------------------- CLI runner
def _run(out, seed=0):
    return run_project("sentiment", RunContext(out=out, source="sample", fast=True, seed=seed,
                                               options={"max_length": 32}))


def test_runner_metrics_figures_and_model(tmp_path):
    _run(tmp_path / "a")
    m = validate_metrics(json.loads((tmp_path / "a" / "metrics.json").read_text()))
    assert m["project"] == "sentiment" and {"tfidf_lr", "frozen_embedding_lr", "finetuned"} <= set(m["models"])
    # 400 reviews < CV_THRESHOLD: 2-fold CV in fast mode, mean and std over the same folds for every model
    assert m["dataset"].endswith("(2-fold CV)") and (m["n_train"], m["n_test"]) == (200, 200)
    assert all(mm["cv_folds"] == 2 and 0 <= mm["accuracy_std"] < 1 for mm in m["models"].values())
    cv = pd.read_csv(tmp_path / "a" / "cv_folds.csv")
    assert sorted(set(cv.model)) == ["finetuned", "frozen_embedding_lr", "tfidf_lr"] and set(cv.fold) == {1, 2}
    assert m["models"]["tfidf_lr"]["accuracy"] == pytest.approx(cv[cv.model == "tfidf_lr"].accuracy.mean())
    assert json.loads((tmp_path / "a" / "model" / "training_info.json").read_text())["evaluation"].startswith("2-fold CV")
    assert 0 < m["models"]["finetuned"]["padding_share"] < 0.5
    for f in ("confusion_matrix.png", "wordclouds.png", "training_curve.png"):
        assert (tmp_path / "a" / f).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "a" / "model" / "model.safetensors").exists()
    assert load_finetuned(tmp_path / "a" / "model").labels == LABELS3
    # same seed -> same metrics: tests/test_projects.py checks it for every project


def test_cli_help_lists_model_option():
    r = subprocess.run([sys.executable, "-m", "accel_course.cli", "run", "sentiment", "--help"], capture_output=True,
                       text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0 and "--model NAME_OR_DIR" in r.stdout and "--max-steps N" in r.stdout, r.stdout + r.stderr


def test_max_steps_option_caps_the_recipe(tmp_path):
    from accel_course.sentiment import _recipe
    assert _recipe(RunContext(out=tmp_path, options={"max_steps": 7}), LABELS3)["max_steps_per_epoch"] == 7
    assert _recipe(RunContext(out=tmp_path), LABELS3)["max_steps_per_epoch"] is None        # full runs are not capped


# ---------------------------------------------------------------- issue 12: token ids in Arrow, cached on disk
def test_arrow_tokens_match_lists_and_are_cached(tiny, tmp_path, monkeypatch):
    import torch
    import accel_course.sentiment as S
    _, tok = tiny
    df = make_reviews(120, seed=4)
    ads = S.tokenize_to_arrow(tok, df.text, df.label, 40, cache_dir=tmp_path)
    (cached,) = tmp_path.iterdir()
    assert ads.features["input_ids"].feature.dtype == "int32" and ads.cache_files          # memory-mapped from disk
    arr, lst = S.ArrowReviews(ads, 40), TokenizedReviews(tok, df.text, df.label, 40)
    assert [x["input_ids"] for x in arr.__getitems__(range(len(arr)))] == lst.ids and list(arr.lengths) == lst.lengths
    for a, b in zip(make_loader(arr, 16, seed=2), make_loader(lst, 16, seed=2), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in ("input_ids", "attention_mask", "labels"))
    (cached / "marker").write_text("x")                                                   # a second call reuses the cache
    assert len(S.tokenize_to_arrow(tok, df.text, df.label, 40, cache_dir=tmp_path)) == 120 and (cached / "marker").exists()
    assert len(list(tmp_path.iterdir())) == 1
    S.tokenize_to_arrow(tok, df.text, df.label, 41, cache_dir=tmp_path)                   # other max_length: other entry
    assert len(list(tmp_path.iterdir())) == 2
    import accel_course.sentiment_model as M       # review_tokens reads its module's ARROW_ROWS and TOKEN_CACHE
    monkeypatch.setattr(M, "ARROW_ROWS", 100)
    monkeypatch.setattr(M, "TOKEN_CACHE", tmp_path / "tok")
    assert isinstance(S.review_tokens(tok, df, 40), S.ArrowReviews) and (tmp_path / "tok").is_dir()
    assert isinstance(S.review_tokens(tok, df[:50], 40), TokenizedReviews)


# ---------------------------------------------------------------- issue 14: evaluation that fits the data size, the recipe
def test_cross_validate_same_folds_mean_std():
    from accel_course.sentiment import cross_validate, cv_splits
    df = make_reviews(150, seed=7)[["text", "label"]]
    seen = {}
    def rec(name, p):
        def fn(tr, te, f):
            assert not set(tr.index) & set(te.index)                    # the test fold is never trained on
            seen.setdefault(name, []).append(sorted(te.index)); return p(tr, te)
        return fn
    prior = lambda tr, te: np.tile(np.bincount(tr.label, minlength=3) / len(tr), (len(te), 1))
    tfidf = lambda tr, te: tfidf_lr().fit(tr.text, tr.label).predict_proba(te.text)
    summary, folds, oof = cross_validate(df, {"prior": rec("prior", prior), "tfidf": rec("tfidf", tfidf)}, LABELS3, k=3,
                                         seed=1, verbose=False)
    assert seen["prior"] == seen["tfidf"] and sorted(sum(seen["prior"], [])) == list(range(150))   # same folds, each row once
    g = folds[folds.model == "tfidf"]
    assert len(g) == 3 and summary["tfidf"]["accuracy"] == pytest.approx(g.accuracy.mean())
    assert summary["tfidf"]["accuracy_std"] == pytest.approx(g.accuracy.std(ddof=1)) and "f1_macro_std" in summary["prior"]
    assert (oof["prior"].sum(1) > 0.99).all() and oof["tfidf"].shape == (150, 3)
    again = cv_splits(df.label, 3, 1, texts=df.text.tolist())
    assert [list(b) for _, b in again] == [sorted(x) for x in seen["prior"]]            # seeded, reproducible
    with pytest.raises(DataError, match=r"5-fold CV needs at least 5 reviews of every class"):
        cv_splits([0] * 20 + [1] * 3, 5)


# ---------------------------------------------------------------- issue 22 item 9: copies of a text stay in one fold
def _no_text_on_both_sides(splits, texts):
    from accel_course.sentiment import text_key
    keys = np.array([text_key(t) for t in texts], dtype=object)
    assert sorted(np.concatenate([te for _, te in splits]).tolist()) == list(range(len(texts)))   # each row tested once
    for tr, te in splits:
        assert not set(tr) & set(te) and not set(keys[tr]) & set(keys[te])


def test_cv_folds_keep_copies_of_a_text_together(capsys):
    """A file repeated 3 times: every copy of a text is in the same test fold (no text is trained and tested on), the
    folds are those of the file read once (tripled), one warning line counts the copies, and one seed gives one split."""
    from accel_course.sentiment import cv_splits
    from sklearn.model_selection import StratifiedKFold
    once = make_reviews(300, seed=3)[["text", "label"]]
    once = once[~once.text.str.lower().duplicated()].reset_index(drop=True)          # the generator repeats a few texts
    assert [list(b) for _, b in cv_splits(once.label, 5, 0, texts=once.text.tolist())] == \
           [list(b) for _, b in StratifiedKFold(5, shuffle=True, random_state=0).split(once, once.label)]   # no copies
    assert capsys.readouterr().out == ""                                                       # ... and no warning
    n = len(once); df = pd.concat([once] * 3, ignore_index=True)
    df.loc[n:2 * n - 1, "text"] = df.text[n:2 * n].str.upper() + "  "                       # case and spacing differ
    splits = cv_splits(df.label, 5, 0, texts=df.text.tolist(), where="x3.txt")
    _no_text_on_both_sides(splits, df.text)
    ref = cv_splits(once.label, 5, 0, texts=once.text.tolist())
    assert [sorted(te % n) for _, te in splits] == [sorted(list(te) * 3) for _, te in ref]   # the single file's folds
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"warning: x3.txt: {3 * n} of {3 * n} rows are copies of {n} texts (same text ignoring case and "
                   "spacing; 0 of them with conflicting labels): each text's copies are kept in one CV fold, so no text "
                   "is both trained and tested on"]
    again = cv_splits(df.label, 5, 0, texts=df.text.tolist(), where="x3.txt")
    assert all(np.array_equal(a, b) for s, t in zip(splits, again) for a, b in zip(s, t))           # deterministic
    other = cv_splits(df.label, 5, 1, texts=df.text.tolist(), where="x3.txt")
    assert any(not np.array_equal(s[1], t[1]) for s, t in zip(splits, other))                 # the seed matters


def test_cv_folds_count_conflicting_labels_and_distinct_texts(capsys):
    from accel_course.sentiment import cv_splits
    texts = [f"review number {i}" for i in range(40)]; y = [i % 2 for i in range(40)]
    texts += ["Great phone.", "great  phone.", "Great phone.", "Awful."]; y += [1, 0, 1, 0]   # 3 copies, labels disagree
    texts += ["Awful."]; y += [0]
    splits = cv_splits(y, 2, 0, texts=texts, where="f.txt")
    _no_text_on_both_sides(splits, texts)
    assert "warning: f.txt: 5 of 45 rows are copies of 2 texts (same text ignoring case and spacing; 1 of them with " \
           "conflicting labels)" in capsys.readouterr().out
    with pytest.raises(DataError, match=r"^f\.txt: 4 distinct labelled reviews leave 2 per test fold in 2-fold CV"):
        cv_splits([1, 0, 1, 0] * 10, 2, 0, texts=["a b", "c d", "e f", "g h"] * 10, where="f.txt")
    with pytest.raises(ValueError, match="3 texts for 4 labels"): cv_splits([0, 1, 0, 1], 2, texts=["a", "b", "c"])


def test_meanpool_recipe_and_max_length(capsys):
    from accel_course.sentiment import choose_max_length, finetune_recipe, MeanPoolClassifier, embed
    df = make_reviews(120, seed=8)
    r = finetune_recipe(df[:100], pooling="mean", labels=LABELS3, epochs=2, patience=1, batch_size=16, num_layers=1,
                        seed=0, verbose=True, max_steps_per_epoch=3)
    out = capsys.readouterr().out
    assert isinstance(r.model, MeanPoolClassifier) and re.search(r"max_length=\d+: the 98% quantile of 90 training", out)
    assert r.config["pooling"] == "mean" and r.config["best_epoch"] in (1, 2) and len(r.history.rows) <= 2
    p = r.predict_proba(df.text[100:])
    assert p.shape == (20, 3) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert embed(r.model, r.tokenizer, ["fine"]).shape == (1, 384)
    _, tok = load_classifier(labels=LABELS3, num_layers=1)
    texts = ["a b c"] * 90 + ["word " * 200] * 10
    L = choose_max_length(tok, texts, 0.85, verbose=True)
    assert L == 8 and "10.0% of them are cut" in capsys.readouterr().out
    assert choose_max_length(tok, texts, 0.99, cap=64, verbose=False) == 64
    with pytest.raises(ValueError, match="pooling"): finetune_recipe(df, pooling="max")


def test_saved_model_follows_umask(tiny, tmp_path):
    """safetensors writes its files 0600; the saved model folder gets the umask's permissions like any other output."""
    model, tok = tiny
    old = os.umask(0o027)
    try: out = save_classifier(model, tok, tmp_path / "m", LABELS3)
    finally: os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in [out, *out.iterdir()]}
    assert modes["model.safetensors"] == 0o640 and modes["m"] == 0o750 and set(modes.values()) <= {0o640, 0o750}, modes
    os.umask(0o022)
    try: out = save_classifier(model, tok, tmp_path / "m", LABELS3)
    finally: os.umask(old)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == 0o644 and out.stat().st_mode & 0o777 == 0o755


def test_runner_held_out_split_above_threshold(tmp_path, monkeypatch):
    import accel_course.sentiment as S
    monkeypatch.setattr(S, "CV_THRESHOLD", 100)                     # 400 fast-mode reviews: above it
    m = _run(tmp_path / "h")
    assert "CV" not in m["dataset"] and m["n_test"] == 60 and "accuracy_std" not in m["models"]["tfidf_lr"]
    assert not (tmp_path / "h" / "cv_folds.csv").exists() and (tmp_path / "h" / "model" / "model.safetensors").exists()


def test_layer_decay_slows_the_lower_layers():
    "finetune(layer_decay=...) gives the embeddings and the lower layers smaller steps than the top layer and the head."
    import torch
    df = make_reviews(64, seed=3)
    before, _ = load_classifier(labels=LABELS3, num_layers=2)
    w0 = {n: p.detach().clone() for n, p in before.named_parameters()}
    def moved(r):   # relative change of the first layer's query weights vs the top layer's
        p = dict(r.model.named_parameters()); q = "bert.encoder.layer.{}.attention.self.query.weight"
        rel = lambda n: ((p[n] - w0[n]).norm() / w0[n].norm()).item()
        return rel(q.format(0)) / rel(q.format(1))
    kw = dict(labels=LABELS3, num_layers=2, epochs=1, max_length=32, batch_size=16, seed=0, verbose=False, lr=1e-4)
    plain, slow = finetune(df, **kw), finetune(df, layer_decay=0.1, **kw)
    assert slow.config["layer_decay"] == 0.1 and "layer_decay" not in plain.config
    assert moved(slow) < 0.5 * moved(plain)            # the lower layer took about a tenth of the top layer's step
    with pytest.raises(ValueError, match="layer_decay"): finetune(df, layer_decay=1.5, **kw)

"""Tests of the few-labels chapter (`accel_course.few_shot`): contrastive pair construction, the siamese cosine model,
and SetFit end to end (contrastive fine-tuning through `fit` + a logistic-regression head) on the real UCI sample."""
import os

import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course.few_shot import (CosinePairModel, PairCollator, PairData, ProbaEnsemble, make_pairs, mean_pool, refit_ensemble,
                                   refit_finetune, setfit)
from accel_course.sentiment import load_uci

from _real import data, needs

UCI = data("sentiment/amazon_cells_labelled.txt")              # ../shared/data's, else tests/fixtures'
need_uci = needs("sentiment/amazon_cells_labelled.txt")


# ---------------------------------------------------------------- pairs
@pytest.mark.parametrize("labels", [[0, 1] * 10, [0] * 12 + [1] * 3 + [2] * 5])
def test_pairs_balanced_no_self_labels_right(labels):
    y = np.array(labels)
    p = make_pairs(y, iterations=3, seed=0)
    assert p.shape == (2 * 3 * len(y), 3) and p.dtype == np.int64
    i, j, t = p.T
    assert (i != j).all()                                          # never a text with itself
    assert (t == (y[i] == y[j])).all()                             # target 1 exactly for same-label pairs
    assert t.sum() == len(t) // 2                                  # balanced, even with imbalanced classes
    assert (np.bincount(i, minlength=len(y)) == 2 * 3).all()       # every text anchors 2 pairs per pass
    assert ((i >= 0) & (i < len(y)) & (j >= 0) & (j < len(y))).all()


def test_pairs_seeded():
    y = np.array([0, 1, 1, 0, 2, 2, 0, 1])
    assert np.array_equal(make_pairs(y, 2, seed=5), make_pairs(y, 2, seed=5))
    assert not np.array_equal(make_pairs(y, 2, seed=5), make_pairs(y, 2, seed=6))


def test_pairs_bad_input():
    with pytest.raises(ValueError, match="at least 2 classes"): make_pairs([1, 1, 1])
    with pytest.raises(ValueError, match="at least 2 texts"): make_pairs([0, 0, 1])
    with pytest.raises(ValueError, match="iterations"): make_pairs([0, 0, 1, 1], iterations=0)


# ---------------------------------------------------------------- siamese model
class _TinyEncoder(torch.nn.Module):
    "Embedding lookup standing in for a transformer: `.last_hidden_state` like a 🤗 encoder."
    def __init__(self):
        super().__init__(); self.emb = torch.nn.Embedding(10, 4)
    def forward(self, input_ids, attention_mask):
        return type("Out", (), {"last_hidden_state": self.emb(input_ids)})()


def test_collator_and_cosine_loss():
    class Tok:
        pad_token_id = 0
        def __call__(self, texts, truncation, max_length): return {"input_ids": [[int(c) for c in t][:max_length] for t in texts]}
    ds = PairData(Tok(), ["12", "345", "6"], np.array([[0, 1, 1], [1, 2, 0]]), max_length=8)
    b = PairCollator(0)([ds[0], ds[1]])
    assert list(b)[0] == "labels" and b["labels"].tolist() == [1.0, 0.0]
    assert b["input_ids"].shape == (4, 3)                          # 2 pairs -> 4 rows, padded to the longest text
    assert b["input_ids"][:, 0].tolist() == [1, 3, 3, 6] and b["attention_mask"].sum(1).tolist() == [2, 3, 3, 1]
    h = torch.tensor([[[1., 0], [3, 0], [9, 9]]]); m = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(h, m), torch.tensor([[2., 0]]))   # padding ignored
    torch.manual_seed(0); model = CosinePairModel(_TinyEncoder())
    out = model(**b)
    assert out.logits.shape == (2,) and (out.logits.abs() <= 1 + 1e-6).all()
    assert torch.isclose(out.loss, ((out.logits - b["labels"]) ** 2).mean())


# ---------------------------------------------------------------- SetFit end to end (real data)
@need_uci
def test_setfit_beats_chance_and_is_reproducible():
    df = load_uci(UCI).df
    tr = df.groupby("label").sample(24, random_state=0)                 # 48 labels, 24 a class
    te = df.drop(tr.index).sample(200, random_state=0)
    kw = dict(num_layers=2, iterations=2, seed=3, max_length=32)
    m1, m2 = setfit(tr, **kw), setfit(tr, **kw)
    p1 = m1.predict_proba(te.text)
    assert p1.shape == (200, 2) and np.allclose(p1.sum(1), 1, atol=1e-5)
    assert np.allclose(p1, m2.predict_proba(te.text), atol=1e-6)          # same seed, same model
    assert m1.config["n_pairs"] == 2 * 2 * 48 and len(m1.history) == 1
    acc = (p1.argmax(1) == te.label.to_numpy()).mean()
    chance = te.label.value_counts(normalize=True).max()
    assert acc > chance + 0.1, (acc, chance)                               # ~0.5 is chance on this balanced set


# ---------------------------------------------------------------- select, then refit; ensembles (real data, tiny model)
class _Const:
    def __init__(self, p): self.p = np.asarray(p, dtype=float)
    def predict_proba(self, texts): return np.tile(self.p, (len(texts), 1))


def test_proba_ensemble_averages_members():
    e = ProbaEnsemble({"a": _Const([0.9, 0.1]), "b": _Const([0.2, 0.8]), "c": _Const([0.4, 0.6])})
    p = e.predict_proba(["x", "y"])
    assert np.allclose(p, [[0.5, 0.5]] * 2) and set(e.member_proba(["x"])) == {"a", "b", "c"}
    e2 = ProbaEnsemble({"a": _Const([0.9, 0.1]), "b": _Const([0.3, 0.7])})
    assert e2.predict(["x"]).tolist() == [0]                            # 0.6 vs 0.4: the confident member wins
    with pytest.raises(ValueError, match="at least one pooling"): refit_ensemble(pd.DataFrame(), poolings=())


@need_uci
def test_refit_uses_the_holdout_epoch_and_the_whole_training_set():
    df = load_uci(UCI).df
    tr = df.groupby("label").sample(20, random_state=1)                 # 40 labels
    te = df.drop(tr.index).sample(50, random_state=1)
    kw = dict(num_layers=1, max_length=24, epochs=3, patience=1, batch_size=8, seed=5)
    r = refit_finetune(tr, pooling="cls", **kw)
    sel, fin = r.selection.history, r.final.history
    assert "val_f1_macro" in sel.rows[0] or any(k.startswith("val") for k in sel.rows[0])   # selection: validated
    assert 1 <= sel.best_epoch <= len(sel) <= 3
    assert r.epochs == sel.best_epoch == len(fin)                        # refit runs exactly the chosen epoch count
    assert not any(k.startswith("val") for k in fin.rows[0])             # ... with no holdout: all 40 reviews train it
    assert r.final.config["max_length"] == 24 and r.final.config["pooling"] == "cls"
    p = r.predict_proba(te.text)
    assert p.shape == (50, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    ens = refit_ensemble(tr, poolings=("cls", "mean"), seeds=(5,), with_selection=True,
                         **{k: v for k, v in kw.items() if k != "seed"})
    assert list(ens.members) == ["cls_s5", "mean_s5", "cls_s5_sel", "mean_s5_sel"]
    mp = ens.member_proba(te.text)
    assert np.allclose(mp["cls_s5"], p, atol=1e-6)                          # same seed, same refit: reproducible
    assert np.allclose(mp["cls_s5_sel"], r.selection.predict_proba(te.text), atol=1e-6)
    assert not np.allclose(mp["cls_s5"], mp["cls_s5_sel"], atol=1e-4)       # refit and selection are different models
    assert np.allclose(ens.predict_proba(te.text), np.mean(list(mp.values()), axis=0))

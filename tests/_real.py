"""Shared test helpers: where the real data samples are, with one skip line that says which sample is missing, and the
2-process torchrun launcher.

A real sample is named by its path relative to `../shared/data` (the course's samples beside the checkout, in the dev
setup and CI). `data(rel)` is that file when it is there, else the committed copy under `tests/fixtures/rel` (cuts of
the samples whose licence allows it; see tests/fixtures/NOTICE), so a fresh clone runs the real-format tests too.
`needs(rel)` (a skip marker) and `real(rel)` (inside a test) skip with one line when neither has it."""
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent/"shared"/"data"
FIXTURES = Path(__file__).resolve().parent/"fixtures"

# Samples that tests/fixtures does not hold, and why (the first matching prefix of the relative path says it).
NO_FIXTURE = {
    "nasa_cmapss/train_FD001_all100": "all 100 FD001 training engines (3.5 MB) are over the fixtures' 2 MB budget",
    "unsw_nb15/": "UNSW-NB15 is free for academic research only: not redistributed",
    "azure_pdm": "the Azure PdM sample is Microsoft sample data: not redistributed",
    "housing/kaggle_ames/": "Kaggle Ames is under Kaggle competition rules: not redistributed",
    "housing/windsor/": "Windsor (R package Ecdat) is GPL-3: not redistributed",
    "sentiment/amazon_polarity": "amazon_polarity is not redistributed",
}

def data(rel: str) -> Path:
    "The real sample `rel`: `../shared/data/rel` if present, else `tests/fixtures/rel` if present, else the shared path."
    for root in (SHARED_DATA, FIXTURES):
        if (root/rel).exists(): return root/rel
    return SHARED_DATA/rel

def missing(rel: str) -> str | None:
    "None if `data(rel)` exists; else one line naming the missing sample and why no fixture stands in for it."
    if data(rel).exists(): return None
    why = next((w for k, w in NO_FIXTURE.items() if rel.startswith(k)), "no fixture for it in tests/fixtures")
    return f"real sample {rel}: not in ../shared/data, and {why}"

def needs(*rels: str):
    "Skip marker: skip the test unless every real sample in `rels` is found (the reason names the first missing one)."
    why = next((m for m in map(missing, rels) if m), None)
    return pytest.mark.skipif(why is not None, reason=why or "")

def real(rel: str) -> Path:
    "Inside a test: the path of the real sample `rel`, or skip the test with one line naming what is missing."
    __tracebackhide__ = True                                 # pytest reports the skip at the test's line, not here
    why = missing(rel)
    if why: pytest.skip(why)
    return data(rel)

def torchrun(*args, env: dict, timeout: int = 300, nproc: int = 2, cwd=None):
    "Run `torchrun --nproc_per_node nproc ARGS` on a free port (the multi-CPU launcher); returns the CompletedProcess."
    import os, subprocess, sys
    from accel_course.launch import free_port
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                           "--master_port", str(free_port()), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}, cwd=cwd)

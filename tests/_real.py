"""Shared test helpers: the course's real data samples (`../shared/data` beside the checkout, only in the course's
dev setup and CI) with one skip marker that says which sample is missing, and the 2-process torchrun launcher."""
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent/"shared"/"data"

def needs(path, what: str = "real data sample"):
    "Skip the test unless `path` exists; the reason names the missing sample."
    path = Path(path)
    return pytest.mark.skipif(not path.exists(), reason=f"{what} not found at {path} (../shared/data absent)")

def torchrun(*args, env: dict, timeout: int = 300, nproc: int = 2, cwd=None):
    "Run `torchrun --nproc_per_node nproc ARGS` on a free port (the multi-CPU launcher); returns the CompletedProcess."
    import os, subprocess, sys
    from accel_course.launch import free_port
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                           "--master_port", str(free_port()), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}, cwd=cwd)

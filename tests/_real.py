"""The course's real data samples: `../shared/data` beside the checkout (only in the course's dev setup and CI),
and one skip marker that says which sample is missing."""
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent/"shared"/"data"

def needs(path, what: str = "real data sample"):
    "Skip the test unless `path` exists; the reason names the missing sample."
    path = Path(path)
    return pytest.mark.skipif(not path.exists(), reason=f"{what} not found at {path} (../shared/data absent)")

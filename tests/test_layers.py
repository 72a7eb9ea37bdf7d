"""The library's layers only look down (core -> training -> launch -> data -> chapters -> serve -> cli), and no module
imports another's private (`_`-prefixed) name. Read from the modules' source with `ast`: every import counts, also one
inside a function."""
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/"accel_course"
LAYERS = {   # a module may import modules of its own layer or below
    "core": ["core", "checks"],
    "training": ["training"],
    "launch": ["launch"],
    "data": ["housing_data", "maintenance_data", "sentiment_data", "sentiment_model", "anomaly_data",
             "anomaly_traffic", "cmapss_data"],
    "chapters": ["housing", "maintenance", "cmapss", "sentiment", "few_shot", "sentiment_scale", "anomaly"],
    "serve": ["serve"],
    "cli": ["cli"],
}
LEVEL = {m: i for i, mods in enumerate(LAYERS.values()) for m in mods}

def modules():
    return sorted(p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "_modidx"))

def imports(stem: str):
    "(module imported, names imported, line) for every import of an accel_course module in `stem`."
    for n in ast.walk(ast.parse((PKG/f"{stem}.py").read_text())):
        if isinstance(n, ast.ImportFrom):
            mod = n.module or ""
            if n.level == 1: target = mod
            elif mod.startswith("accel_course."): target = mod.split(".", 1)[1]
            else: continue
            yield target, [a.name for a in n.names], n.lineno
        elif isinstance(n, ast.Import):
            for a in n.names:
                if a.name.startswith("accel_course."): yield a.name.split(".", 1)[1], [], n.lineno

def test_every_module_has_a_layer():
    assert sorted(LEVEL) == modules(), "add the new module to LAYERS"

@pytest.mark.parametrize("stem", modules())
def test_imports_only_look_down(stem):
    up = [f"{stem}.py:{line} imports {t} ({[k for k, v in LAYERS.items() if t in v][0]})"
          for t, _, line in imports(stem) if t and LEVEL.get(t, -1) > LEVEL[stem]]
    assert not up, f"{stem} is in layer {[k for k, v in LAYERS.items() if stem in v][0]}: " + "; ".join(up)

@pytest.mark.parametrize("stem", modules())
def test_no_private_names_from_other_modules(stem):
    bad = [f"{stem}.py:{line}: {name} from {t}" for t, names, line in imports(stem) if t != stem
           for name in names if name.startswith("_") and not name.startswith("__")]
    assert not bad, "; ".join(bad)

def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    "A module of the core layer that imports the CLI, and a private name, are both caught."
    (tmp_path/"core.py").write_text("def f():\n    from .cli import main\n    from .launch import _x\n")
    monkeypatch.setattr(__import__(__name__), "PKG", tmp_path)
    found = list(imports("core"))
    assert ("cli", ["main"], 2) in found and ("launch", ["_x"], 3) in found
    with pytest.raises(AssertionError, match="imports cli"): test_imports_only_look_down("core")
    with pytest.raises(AssertionError, match="_x from launch"): test_no_private_names_from_other_modules("core")

"""The architecture's dependency rules, enforced on the source (AST) and at run time.

toolchain -> backends -> hw_emulator; nothing imports toolchain; TensorFlow/Keras only
under backends/tensorflow/; pyopencl/nengo_ocl only in the OpenCL adapter; hw_emulator
is numpy-only except the one module that reads nengo's built model.
"""

import ast
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("toolchain", "backends", "hw_emulator")

#: (module glob, forbidden top-level import names, files where they are allowed)
RULES = [
    ("tensorflow/keras only in backends/tensorflow", {"tensorflow", "keras", "tf_keras"}, ["backends/tensorflow/*"]),
    ("pyopencl/nengo_ocl only in the OpenCL adapter", {"pyopencl", "nengo_ocl"}, ["backends/opencl.py", "backends/opencl_device.py"]),
    ("nothing imports toolchain", {"toolchain"}, ["toolchain/*"]),
    ("backends does not import toolchain", {"toolchain"}, ["toolchain/*", "hw_emulator/*"]),
    ("hw_emulator does not import backends", {"backends"}, ["backends/*", "toolchain/*"]),
]

#: hw_emulator modules allowed to import nengo (reading the built model).
EMULATOR_NENGO_MODULES = ["hw_emulator/mapping.py", "hw_emulator/mapping/*"]


def _sources():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path


def _imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in the file (lazy ones included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


SOURCES = dict(_sources())


@pytest.mark.parametrize("rule, forbidden, allowed", RULES, ids=[r[0] for r in RULES])
def test_static_rule(rule, forbidden, allowed):
    offenders = []
    for rel, path in SOURCES.items():
        if any(fnmatch(rel, pattern) for pattern in allowed):
            continue
        bad = _imports(path) & forbidden
        if bad:
            offenders.append(f"{rel} imports {sorted(bad)}")
    assert not offenders, f"{rule}: " + "; ".join(offenders)


def test_hw_emulator_is_numpy_only():
    allowed = set(sys.stdlib_module_names) | {"numpy", "hw_emulator", "__future__"}
    offenders = []
    for rel, path in SOURCES.items():
        if not rel.startswith("hw_emulator/"):
            continue
        extra = {"nengo"} if any(fnmatch(rel, p) for p in EMULATOR_NENGO_MODULES) else set()
        bad = _imports(path) - allowed - extra
        if bad:
            offenders.append(f"{rel} imports {sorted(bad)}")
    assert not offenders, "; ".join(offenders)


def _loaded_after(code: str, heavy: tuple[str, ...]) -> str:
    code += f"; import sys; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("module", ["backends", "hw_emulator", "toolchain", "toolchain.parity"])
def test_import_is_light(module):
    assert _loaded_after(f"import {module}", ("tensorflow", "keras", "pyopencl", "nengo_ocl")) == ""


def test_availability_check_is_light():
    # Looking for an OpenCL device needs pyopencl, but nothing heavier.
    code = "import backends; backends.available(); backends.describe()"
    assert _loaded_after(code, ("tensorflow", "keras", "nengo_ocl")) == ""

"""The architecture's dependency rules, enforced on the source (AST) and at run time.

nhw.toolchain -> nhw.backends -> nhw.hw_emulator, with nhw.errors below them all;
nothing imports the toolchain; TensorFlow/Keras only under backends/tensorflow/;
pyopencl/nengo_ocl only in the OpenCL adapter; hw_emulator is numpy-only (the
host-chip interface that reads nengo's built model lives in backends/loihi_emu/); and no
module imports itself through a circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: import package -> folder in the repository (pyproject's package-dir)
FOLDERS = {"nhw": "nhw", "nhw.toolchain": "toolchain", "nhw.backends": "backends", "nhw.hw_emulator": "hw_emulator"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    for package, folder in FOLDERS.items():
        if rel.parts[0] == folder:
            parts = [*package.split("."), *rel.with_suffix("").parts[1:]]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise AssertionError(f"{rel} is in no package")


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for folder in FOLDERS.values() for p in sorted((ROOT / folder).rglob("*.py"))}


SOURCES = _sources()


def _imports(module: str, path: Path) -> set[str]:
    """Every module the file imports, absolute names, lazy imports included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod
            subs = {f"{origin}.{a.name}" for a in node.names} & SOURCES.keys()
            names.update(subs or {origin})
    return names


IMPORTS = {m: _imports(m, p) for m, p in SOURCES.items()}


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


#: (rule, importing modules it applies to, forbidden imports, modules exempt from it)
RULES = [
    ("tensorflow/keras only in backends/tensorflow", ["nhw"], ["tensorflow", "keras", "tf_keras"],
     ["nhw.backends.tensorflow"]),
    ("pyopencl/nengo_ocl only in the OpenCL adapter", ["nhw"], ["pyopencl", "nengo_ocl"],
     ["nhw.backends.opencl", "nhw.backends.opencl_device"]),
    ("nothing imports the toolchain", ["nhw.backends", "nhw.hw_emulator", "nhw.errors", "nhw.dl"],
     ["nhw.toolchain"], []),
    ("hw_emulator does not import backends", ["nhw.hw_emulator", "nhw.errors"], ["nhw.backends", "nhw.dl"], []),
    ("errors import nothing of nhw", ["nhw.errors"], ["nhw."], []),
]


@pytest.mark.parametrize("rule, scope, forbidden, exempt", RULES, ids=[r[0] for r in RULES])
def test_static_rule(rule, scope, forbidden, exempt):
    offenders = []
    for module, names in IMPORTS.items():
        if not _under(module, scope) or _under(module, exempt):
            continue
        bad = sorted(n for n in names if _under(n, forbidden) or any(n.startswith(f) for f in forbidden if f.endswith(".")))
        if bad:
            offenders.append(f"{module} imports {bad}")
    assert not offenders, f"{rule}: " + "; ".join(offenders)


#: hw_emulator modules allowed to import nengo: none (the mapping of nengo's built model
#: is the loihi-emu backend's, in backends/loihi_emu/).
EMULATOR_NENGO_MODULES: list[str] = []


#: the one optional accelerator: imported under try/except, with a bit-identical numpy path
OPTIONAL_KERNELS = {"nhw.hw_emulator.kernel": {"numba"}}


def test_hw_emulator_is_numpy_only():
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    offenders = []
    for module, names in IMPORTS.items():
        if not _under(module, ["nhw.hw_emulator"]):
            continue
        extra = {"nengo"} if any(fnmatch(module, p) for p in EMULATOR_NENGO_MODULES) else set()
        extra |= OPTIONAL_KERNELS.get(module, set())
        bad = sorted(n for n in names if n.split(".")[0] not in allowed | extra
                     and not _under(n, ["nhw.hw_emulator", "nhw.errors"]))
        if bad:
            offenders.append(f"{module} imports {bad}")
    assert not offenders, "; ".join(offenders)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    # lazy (function-level) imports count too: they only hide a circle, they do not break it
    graph = {m: {n for n in names if n in SOURCES and n != m} for m, names in IMPORTS.items()}
    cycles = _cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _loaded_after(code: str, heavy: tuple[str, ...]) -> str:
    code += f"; import sys; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("module", ["nhw", "nhw.dl", "nhw.backends", "nhw.hw_emulator", "nhw.toolchain",
                                    "nhw.toolchain.parity", "nhw.toolchain.cli"])
def test_import_is_light(module):
    assert _loaded_after(f"import {module}", ("tensorflow", "keras", "pyopencl", "nengo_ocl")) == ""


def test_availability_check_is_light():
    # Looking for an OpenCL device needs pyopencl, but nothing heavier.
    code = "from nhw import backends; backends.available(); backends.describe()"
    assert _loaded_after(code, ("tensorflow", "keras", "nengo_ocl")) == ""


def test_only_nhw_is_installed_at_top_level():
    # the fixed folders install under nhw (pyproject's package-dir), not as top-level names
    code = ("import importlib.util as u; "
            "print([n for n in ('toolchain', 'backends', 'hw_emulator') if u.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == "[]"


def test_every_package_folder_is_listed_in_pyproject():
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {_module_name(p.parent / "__init__.py") for folder in FOLDERS.values()
                for p in (ROOT / folder).rglob("__init__.py")}
    assert packages == set(setup["packages"])
    assert setup["package-dir"] == FOLDERS

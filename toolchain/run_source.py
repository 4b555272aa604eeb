"""A run directory given as a command's input: what a re-run of it may change.

A run of trained weights (an ``nhw train`` run, or a deploy/parity run of one) is
re-run on the training run's data split, and no command writes its output over the
run it reads.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from nhw.errors import ArtifactError, ConfigError

#: Data keys that choose which samples are held out for testing: on a run of trained
#: weights, changing one would score samples the network was trained on.
SPLIT_KEYS = ("name", "path", "test_fraction", "seed")


def pin_split(raw: dict, manifest: dict) -> dict:
    """``raw`` with ``data.seed`` pinned to the seed the training run split its data with."""
    data = raw.get("data")
    if not isinstance(data, dict) or data.get("seed") is not None:
        return raw
    raw = copy.deepcopy(raw)
    seed = raw.get("seed", manifest.get("seed"))
    raw["data"]["seed"] = 0 if seed is None else seed
    return raw


def refuse_split_change(path: Path, before: dict, after: dict) -> None:
    """Refuse overrides that move a trained run's test split (they would score training samples)."""
    old, new = before.get("data") or {}, after.get("data")
    new = new if isinstance(new, dict) else {}
    for key in SPLIT_KEYS:
        if old.get(key) != new.get(key):
            raise ConfigError(
                f"{path}: data.{key}: the network was trained with data.{key}={json.dumps(old.get(key))}; "
                f"got {json.dumps(new.get(key))} (--set): a different split would score samples the "
                f"network was trained on; expected the training run's value")


def refuse_overlap(source: str | None, out: Path) -> None:
    """Refuse an ``--out`` that is the input run or overlaps it (``--force`` would delete it)."""
    if source is None or not Path(source).is_dir():
        return
    src, dst = Path(source).resolve(), out.resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        raise ArtifactError(f"--out {out}: is the run {source} itself or overlaps it; expected a separate "
                            "folder (the input run is never modified)")

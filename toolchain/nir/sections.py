"""The experiment around an exported network, carried in the NIR graph's metadata.

NIR describes the network only. A classifier exported from a config also needs its
data, which input the data feeds, how long each sample is shown and which probe is
scored; without them the imported config would run an idle network. nhw's export
stores these config sections as JSON in ``graph.metadata``; ``nhw import`` writes them
back into the config it generates. Peers ignore the metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nhw.errors import NIRError

#: graph metadata key
SECTIONS_KEY = "nhw_experiment"
#: deploy keys that belong to the experiment rather than to one run of it
_DEPLOY_KEYS = ("n_steps", "dt")
#: ... and those that only mean something when data feeds an input
_FEED_KEYS = ("feed", "presentation_time", "n_items", "classify")


def export_sections(cfg, names: dict[str, str], n_steps: int) -> str:
    """JSON of ``cfg``'s data section and experiment deploy keys, input names mapped by ``names``.

    ``cfg.data.path`` is absolute after loading; it is stored so, and made relative to
    the generated config on import.
    """
    deploy = cfg.deploy.model_dump()
    keys = _DEPLOY_KEYS + (_FEED_KEYS if cfg.deploy.feed is not None else ())
    out: dict[str, Any] = {"deploy": {k: deploy[k] for k in keys if deploy[k] is not None}}
    if cfg.deploy.feed is None:
        out["deploy"]["n_steps"] = int(n_steps)  # a fed run's length follows its items
    out["seed"] = int(cfg.seed)  # the data split and the simulators' seeds follow it
    if cfg.deploy.feed is not None:
        out["deploy"]["feed"] = names.get(cfg.deploy.feed, cfg.deploy.feed)
    if cfg.data is not None:
        out["data"] = cfg.data.model_dump(exclude_defaults=True)
    return json.dumps(out, sort_keys=True)


def import_sections(metadata: dict | None, config_path: Path) -> dict[str, Any]:
    """Config sections stored by :func:`export_sections` (empty if the graph has none).

    Raises
    ------
    NIRError
        The stored value is not the JSON object nhw writes.
    """
    raw = (metadata or {}).get(SECTIONS_KEY)
    if raw is None:
        return {}
    try:
        sections = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError as exc:
        raise NIRError(f"graph metadata {SECTIONS_KEY}: not JSON ({exc})") from None
    if not isinstance(sections, dict) or not set(sections) <= {"data", "deploy", "seed"}:
        raise NIRError(f"graph metadata {SECTIONS_KEY}: expected an object with 'data'/'deploy', got {raw!r:.200}")
    data = sections.get("data") or {}
    if data.get("path"):
        # relative to the generated config, as a hand-written config would name it
        data["path"] = os.path.relpath(data["path"], config_path.resolve().parent)
    return sections

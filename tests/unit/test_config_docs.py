"""The config reference in docs/config-reference.md is the one generated from the schema."""

from pathlib import Path

from nhw.toolchain.config.docs import BEGIN, END, reference_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_reference_is_current():
    text = (ROOT / "docs" / "config-reference.md").read_text()
    assert BEGIN in text and END in text
    embedded = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert embedded == reference_markdown().strip(), (
        "docs/config-reference.md is stale: regenerate the part between the markers with `nhw config schema --markdown`"
    )


def test_reference_covers_every_section():
    ref = reference_markdown()
    for section in ("network", "data", "train", "train.optimizer", "deploy", "parity", "parity.default"):
        assert f"### `{section}`" in ref

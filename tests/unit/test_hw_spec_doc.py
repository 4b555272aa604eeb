"""SPEC.md's chip numbers are ChipSpec's: every "`field` (N)" in it names a LOIHI_V1 value."""

import re
from pathlib import Path

from nhw.hw_emulator.chip import LOIHI_V1

SPEC = Path(__file__).resolve().parents[2] / "hw_emulator" / "SPEC.md"


def test_spec_numbers_are_chipspec_fields():
    text = SPEC.read_text()
    plain = re.findall(r"`([a-z_]+)` \((\d+)\)", text)
    powers = re.findall(r"2\^([a-z_]+)` \(`2\^(\d+)`\)", text)
    assert {"q_bits", "u_bits", "v_bits"} <= {name for name, _ in plain}
    assert {"accumulator_bits", "decay_product_bits"} <= {name for name, _ in powers}
    for name, value in plain + powers:
        assert getattr(LOIHI_V1, name) == int(value), f"SPEC.md says {name} = {value}"
    for name, expr, value in re.findall(r"`([a-z_]+)` = `2\^\(v_bits-(\d+)\)` \(`2\^(\d+)`\)", text):
        assert getattr(LOIHI_V1, name) == 1 << (LOIHI_V1.v_bits - int(expr)) == 1 << int(value)


def test_no_bare_state_widths_in_spec_prose():
    # a width of q/u written without its ChipSpec field would not follow a different spec
    assert not re.search(r"wraps to (22|24) bits", SPEC.read_text())

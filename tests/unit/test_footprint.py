"""A network too large to build is refused before nengo's builder allocates anything."""

import nengo
import pytest

from nhw.errors import DeployError
from nhw.toolchain.experiment import footprint


def _chain(n):
    with nengo.Network() as net:
        a = nengo.Ensemble(n, 1, label="a")
        b = nengo.Ensemble(n, 1, label="b")
        nengo.Connection(a, b)
    return net


def test_refuses_a_build_that_cannot_fit_naming_the_largest_object():
    with pytest.raises(DeployError, match=r"needs about [\d,.]+ GiB \(largest: <Ensemble 'a'>.* 1\.0 GiB is available"):
        footprint.check_fits(_chain(10**6), "reference", available=2**30)


def test_decoder_solves_count_once_not_per_ensemble():
    kept, transient = footprint.estimate(_chain(1000))
    solve = max(size for size, _ in transient)
    assert solve >= 2000 * 1000 * 8  # 2n evaluation points by n neurons
    footprint.check_fits(_chain(1000), "reference", available=sum(s for s, _ in kept) + solve)


def test_ordinary_networks_pass_on_this_machine():
    footprint.check_fits(_chain(500), "reference")

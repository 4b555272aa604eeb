"""Cross-backend parity: every available target against ``reference`` on the standard
networks, with the tolerances each network declares (toolchain.parity_networks)."""

import pytest

from nhw import backends
from nhw.toolchain.parity_config import check_network
from nhw.toolchain.parity_networks import NETWORKS

OTHERS = [t for t in backends.available() if t != "reference"]


@pytest.mark.skipif(not OTHERS, reason="only 'reference' is available here")
@pytest.mark.parametrize("target", OTHERS)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_parity(name, target):
    net = NETWORKS[name]
    if target in net.unsupported:
        pytest.skip(f"{name} on {target}: {net.unsupported[target]}")
    report = check_network(net, [target])
    print(report.to_table())
    assert report.results, "no probe compared"
    assert report.passed, "\n" + report.to_table()


EMU = "loihi-emu"


@pytest.mark.skipif(EMU not in backends.available(), reason="loihi-emu is not available here")
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("name", list(NETWORKS))
def test_loihi_emu_parity_other_seeds(name, seed):
    # loihi-emu's tolerances bound seeds 0-4, not only the default seed 0
    report = check_network(NETWORKS[name], [EMU], seed=seed)
    assert report.passed, "\n" + report.to_table()

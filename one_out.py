import sys, time, logging
sys.path.insert(0, "/work/main/tests/peers")
import nir, _peerlib
logging.disable(logging.WARNING)
g = _peerlib.only(nir.read(sys.argv[1]), "output")
t = time.time()
from snntorch.import_nir import import_from_nir; m = import_from_nir(g)
print("one-output subgraph loaded in", round(time.time() - t, 1), "s")

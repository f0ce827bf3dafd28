"""netpol-pdp: a policy decision point for Kubernetes NetworkPolicy.

One namespaced package whose parts live in the repository's top-level folders:

- :mod:`netpol_pdp.index`   the model, validation, semantics, the compiled index,
                            the reference evaluator, and the feeds that keep it current;
- :mod:`netpol_pdp.server`  the gRPC services and their serving machinery;
- :mod:`netpol_pdp.clients` the Python client and the ``netpol-pdp`` command line;
- :mod:`netpol_pdp.bench`   benchmark worlds and load generators;
- :mod:`netpol_pdp.examples` the bundled example cluster and flow logs;
- :mod:`netpol_pdp.v1`      the generated protobuf/gRPC modules of ``proto/``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("netpol-pdp")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]

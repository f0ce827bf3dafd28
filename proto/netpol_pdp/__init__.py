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

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata when first asked for: every
    ``netpol-pdp`` run imports this package, and ``importlib.metadata`` costs ~25 ms to import."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        value = version("netpol-pdp")
    except PackageNotFoundError:  # running from a source tree without an install
        value = "0.0.0"
    globals()["__version__"] = value
    return value

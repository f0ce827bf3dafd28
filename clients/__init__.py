"""The Python client and the ``netpol-pdp`` command line."""

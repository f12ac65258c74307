"""The ``sessionflow`` command line."""

"""Private implementation of :mod:`movierec.datasets` (registry, archive access, parsers, download).

Import the public names from :mod:`movierec.datasets`; the modules here may change without notice.
"""

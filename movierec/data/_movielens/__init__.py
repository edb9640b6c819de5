"""Private implementation of :mod:`movierec.data.movielens` (registry, archive access, parsers, download).

Import the public names from :mod:`movierec.data.movielens`; the modules here may change without notice.
"""

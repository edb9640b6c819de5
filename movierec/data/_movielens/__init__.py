"""Private implementation of [`movierec.data.movielens`][movierec.data.movielens] (registry, archive access, parsers, download).

Import the public names from [`movierec.data.movielens`][movierec.data.movielens]; the modules here may change without notice.
"""

"""The toolkit every part of movierec uses: checks, parameters, ids, ranking, extras, model files.

Private: import the public names from [`movierec`][movierec]; the modules here may change without notice.
"""

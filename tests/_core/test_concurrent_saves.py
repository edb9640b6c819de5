"""Two processes save different ensembles to one folder while a third loads it: never a mixed ensemble.

Ensemble "A" knows 943 users, ensemble "B" 300; both have the same member classes, so only their
fitted state tells them apart. Every load must give back A or B whole (the ensemble's users are
its members' users, and its predictions are exactly A's or B's), or raise a clear
:class:`ModelFileError`; a load that returned anything else is a mixed load. The loads run in a
third process, for at most ``SECONDS`` and ``LOADS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS, LOADS = 15, 400

COMMON = """
import sys
from movierec.ensemble import WeightedEnsemble
from movierec.models.baseline import BiasedBaseline
from movierec.models.popularity import Popularity
from movierec.testing import synthetic_ratings

def ensemble(n_users):
    ratings = synthetic_ratings(n_users=n_users, n_items=80, density=0.2, seed=n_users)
    members = [BiasedBaseline(), Popularity(), BiasedBaseline(damping=0.0)]
    return WeightedEnsemble(members, errors=[1.0, 2.0, 1.5], random_state=0).fit(ratings), ratings
"""
SAVER = COMMON + """
model, _ = ensemble(int(sys.argv[2]))
print("ready", flush=True)
for _ in range(int(sys.argv[3])):
    model.save(sys.argv[1])
"""
LOADER = COMMON + """
import json, time
import numpy as np
from movierec.exceptions import ModelFileError

expected = {}
for n in (943, 300):
    model, ratings = ensemble(n)
    expected[n] = model.predict(ratings.iloc[:500]).to_numpy()
pairs = {n: ensemble(n)[1].iloc[:500] for n in (943, 300)}
print("ready", flush=True)
sys.stdin.readline()
counts = {"whole": 0, "errors": 0, "mixed": 0, "messages": []}
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline and sum(counts[k] for k in ("whole", "errors", "mixed")) < int(sys.argv[3]):
    try:
        loaded = WeightedEnsemble.load(sys.argv[1])
    except ModelFileError as err:
        counts["errors"] += 1
        counts["messages"].append(str(err)[:300])
        continue
    n = len(loaded.users_)
    same_ids = all(len(m.users_) == n and len(m.items_) == len(loaded.items_) for m in loaded.models_)
    whole = (n in expected and same_ids
             and np.array_equal(loaded.predict(pairs[n]).to_numpy(), expected[n], equal_nan=True))
    counts["whole" if whole else "mixed"] += 1
print(json.dumps(counts), flush=True)
"""


def start(script: str, *args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


@pytest.mark.slow
def test_a_load_racing_two_savers_of_different_ensembles_is_whole_or_a_clear_error(tmp_path):
    path = tmp_path / "ensemble"
    first = start(SAVER, path, 943, 1)
    assert first.wait(timeout=60) == 0  # a model is there before the loader starts
    loader = start(LOADER, path, SECONDS, LOADS)
    savers = [start(SAVER, path, 943, 10**6), start(SAVER, path, 300, 10**6)]
    try:
        loader.stdin.write("go\n")
        loader.stdin.flush()
        out, _ = loader.communicate(timeout=SECONDS + 60)
    finally:
        for saver in savers:
            saver.kill()
            saver.wait()
    counts = json.loads(out.strip().splitlines()[-1])
    print(counts["whole"], "whole,", counts["errors"], "errors,", counts["mixed"], "mixed")
    assert loader.returncode == 0
    assert counts["mixed"] == 0
    assert counts["whole"] >= 20  # the savers really raced the loads, and most loads went through
    for message in counts["messages"]:
        assert str(path) in message, message

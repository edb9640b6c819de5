import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec._ids import IdIndex
from movierec._ranking import top_k


@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 9)), elements=st.sampled_from([-np.inf, 0.0, 1.0, 2.0, 2.5, np.nan])), st.integers(1, 10))
def test_top_k_equals_a_full_sort(scores, k):
    rows, cols, values = top_k(scores, k)
    for r in range(scores.shape[0]):
        row = np.where(np.isnan(scores[r]), -np.inf, scores[r])
        finite = [c for c in np.lexsort((np.arange(len(row)), -row)) if np.isfinite(row[c])][:k]
        assert cols[rows == r].tolist() == finite
        np.testing.assert_array_equal(values[rows == r], row[finite])


def test_id_index_round_trip_and_unknowns():
    index = IdIndex([30, 10, 20, 10])
    assert index.ids.tolist() == [10, 20, 30]
    assert index.lookup([20, 99, 10]).tolist() == [1, -1, 0]
    again = IdIndex.from_array(index.to_array())
    assert again.lookup([30]).tolist() == [2]
    strings = IdIndex(["b", "a"])
    assert IdIndex.from_array(strings.to_array()).lookup(["a", "b", "z"]).tolist() == [0, 1, -1]


def test_import_movierec_loads_no_heavy_backend():
    code = (
        "import sys, movierec;"
        "heavy = [m for m in ('pyspark', 'surprise', 'boto3', 'sagemaker', 'botocore', 'matplotlib') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_adapter_names_are_listed():
    import movierec

    assert {"SparkALS", "SurpriseSVD", "SageMakerFM"} <= set(dir(movierec))
    with pytest.raises(AttributeError):
        movierec.NoSuchThing

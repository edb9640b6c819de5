"""movierec's one rule for randomness: what random_state may be, and named streams that repeat and differ."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec._core.random import MAX_SEED, check_random_state, derive, rng
from movierec.exceptions import InvalidParameterError

seeds = st.integers(0, MAX_SEED)
purposes = st.text(min_size=1, max_size=20)


@given(seeds)
def test_every_int_in_range_is_a_random_state_and_stays_an_int(seed):
    assert check_random_state(seed, "x") == seed and type(check_random_state(np.uint32(seed), "x")) is int


@pytest.mark.parametrize("bad", [-1, MAX_SEED + 1, True, np.bool_(False), 1.0, "1", np.random.RandomState(0),
                                 np.random.SeedSequence(0)])
def test_anything_else_is_refused_with_one_message(bad):
    with pytest.raises(InvalidParameterError) as caught:
        check_random_state(bad, "Owner")
    assert str(caught.value) == f"Owner: random_state must be None or an int in [0, {MAX_SEED}], got {bad!r}"


def test_a_generator_passes_only_where_it_is_allowed():
    generator = np.random.default_rng(0)
    assert check_random_state(generator, "split", generator=True) is generator
    assert rng(generator, "anything") is generator
    with pytest.raises(InvalidParameterError):
        check_random_state(generator, "Model")


@given(seeds, purposes, purposes)
def test_named_streams_repeat_for_one_purpose_and_differ_between_purposes(seed, first, second):
    draw = rng(seed, first).integers(2**62, size=4)
    np.testing.assert_array_equal(draw, rng(seed, first).integers(2**62, size=4))
    if first != second:
        assert not np.array_equal(draw, rng(seed, second).integers(2**62, size=4))
    # the root stream is numpy's own default_rng(seed)
    np.testing.assert_array_equal(rng(seed).integers(2**62, size=4), np.random.default_rng(seed).integers(2**62, size=4))


@given(seeds, purposes)
def test_derived_seeds_are_random_states_that_repeat(seed, purpose):
    value = derive(seed, purpose)
    assert value == derive(seed, purpose) and check_random_state(value, "x") == value
    assert derive(None, purpose) is None


def test_none_draws_fresh_entropy():
    assert rng(None, "a").integers(2**62) != rng(None, "a").integers(2**62)

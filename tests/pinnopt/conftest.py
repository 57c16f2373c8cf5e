"""Fixtures shared by the core's tests."""
import jax
import pytest


@pytest.fixture
def x64():
    """float64 for one test, the previous setting restored after it (never left flipped)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)

"""Shared fixtures for integration tests: a running lab (moto + region servers + control API)."""
from __future__ import annotations

from typing import Iterator

import pytest

from failover_engine.lab.lab import Lab


@pytest.fixture(scope="module")
def lab_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One lab per test module (moto state is process-wide: one lab at a time)."""
    with Lab(tmp_path_factory.mktemp("lab")) as lab:
        yield lab


@pytest.fixture
def lab(lab_module: Lab) -> Lab:
    """The module's lab in its steady state: every region up, moto cleared and Route 53 seeded."""
    lab_module.reset()
    return lab_module

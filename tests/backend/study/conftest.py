"""One short congested run of every design, shared by the study's tests (a June day on
SimBench's 1-LV-rural1--2-sw, whose transformer overloads at midday)."""

from __future__ import annotations

import pytest

from gridledger.study.config import StudyConfig
from gridledger.study.run import StudyResult, run_study

FIRST_DAY = 160  # 8 June 2016: overloads from about 10:00 to 14:00


@pytest.fixture(scope="session")
def short_study() -> StudyResult:
    return run_study(StudyConfig(first_day=FIRST_DAY, days=1), parallel=False)

"""Fixtures of the HTTP tests."""

from __future__ import annotations

from typing import Any

import pytest

from schema.fast.run import FastPath


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the plans run to completion by the compiled path."""
    runs: list[int] = []
    original = FastPath.run

    async def counting(self: FastPath, *args: Any) -> Any:
        result = await original(self, *args)
        runs.append(1)
        return result

    monkeypatch.setattr(FastPath, "run", counting)
    return runs

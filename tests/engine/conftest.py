"""The fakesnow emulator, shared by the Snowflake test modules of this folder (one server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine._fakesnow import Emulator


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = Emulator(tmp_path_factory.mktemp("fakesnow") / "server.log")
    yield emu
    emu.close()

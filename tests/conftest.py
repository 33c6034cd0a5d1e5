import pytest

pytest_plugins = ["tests.fix_stack", "tests.teardown_guard"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

import pytest

pytest_plugins = ["tests.fix_stack"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from sentiment_core.db import make_engine


def test_the_private_postgres_server_goes_down_and_comes_back(postgres_server) -> None:
    engine = make_engine(postgres_server.url)

    def answer() -> int:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar_one()

    assert answer() == 1
    postgres_server.stop()
    with pytest.raises(OperationalError):
        answer()
    postgres_server.start()
    assert answer() == 1
    engine.dispose()

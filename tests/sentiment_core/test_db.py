from datetime import timedelta

import pytest
from sqlalchemy import make_url, select

from sentiment_core.db import Review, make_engine, make_sessionmaker
from tests.databases import SERVER_URL, execute


@pytest.mark.skipif(not SERVER_URL, reason="SQLite keeps no time zone; needs TEST_DATABASE_URL")
def test_times_come_back_in_utc_whatever_the_servers_zone(settings) -> None:
    database = make_url(settings.database_url).database
    execute(f"ALTER DATABASE \"{database}\" SET timezone = 'America/New_York'")
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        session.add(Review(text="a fine film"))
        session.commit()
        created_at = session.scalars(select(Review.created_at)).one()
    engine.dispose()
    assert created_at.utcoffset() == timedelta(0)

"""Dogs numbered at the same moment by many requests (web API clients, bot replicas) get distinct codes."""

from __future__ import annotations

import threading


def test_forty_dogs_numbered_at_once_get_forty_codes(database_url, make_catalog) -> None:
    catalog = make_catalog(database_url)
    start = threading.Barrier(20)
    codes: list[str] = []
    failures: list[BaseException] = []

    def register() -> None:
        start.wait()
        try:
            for _ in range(2):
                codes.append(catalog.dogs.create(source="api").code)
        except BaseException as error:  # noqa: BLE001  (reported below, with the others)
            failures.append(error)

    threads = [threading.Thread(target=register) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(codes) == len(set(codes)) == 40

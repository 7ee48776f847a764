"""Creating an MLflow run once, through a write that may be retried (enpire.track.retry).

A tracking server can commit `create_run` and die before its answer arrives (a restart, a dropped
connection): the client sees a transient error, the writer retries, and a plain retry creates a second run.
The first, never filled, would then stand in the session as an iteration run without parameters, metrics or
artifacts, forever RUNNING. So every run the writer creates carries a tag `enpire.write_id` (one id per run
to create, the same across retries), and a retried create first looks for a run with that id: found, it is
the run; not found, the create never reached the store and is made again.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from typing import Any

WRITE_TAG = "enpire.write_id"


class RunCreator:
    """`create(key, ...)`: the run for `key` (e.g. ("iteration", 3)), created at most once."""

    def __init__(self, client: Any, experiment_id: str) -> None:
        self.client, self.experiment_id = client, experiment_id
        self._ids: dict[Hashable, str] = {}
        self._tried: set[Hashable] = set()

    def create(self, key: Hashable, *, tags: dict[str, str], run_name: str, start_time: int) -> str:
        write_id = self._ids.setdefault(key, uuid.uuid4().hex)
        if key in self._tried:  # an earlier attempt may have reached the store before it failed
            found = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{WRITE_TAG}` = '{write_id}'",
                                            max_results=1)
            if found:
                return found[0].info.run_id
        self._tried.add(key)
        run = self.client.create_run(self.experiment_id, start_time=start_time, tags={**tags, WRITE_TAG: write_id},
                                     run_name=run_name)
        return run.info.run_id

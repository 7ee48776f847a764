"""A create_run the store committed but whose answer was lost is not made twice when the write is retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from enpire.track.create_once import WRITE_TAG, RunCreator
from enpire.track.retry import with_retry


class LosesAnswers:
    """A real SQLite client whose first create_run is committed and then fails, as when a server dies mid-reply."""

    def __init__(self, client: MlflowClient) -> None:
        self.client, self.creates = client, 0

    def create_run(self, *args: Any, **kwargs: Any) -> Any:
        run = self.client.create_run(*args, **kwargs)
        self.creates += 1
        if self.creates == 1:
            raise MlflowException("API request failed: ('Connection aborted.', ConnectionResetError(104, "
                                  "'Connection reset by peer'))")
        return run

    def search_runs(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.search_runs(*args, **kwargs)


def test_a_retried_create_returns_the_committed_run_instead_of_a_second_one(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("enpire/drawer")
    flaky = LosesAnswers(client)
    creator = RunCreator(flaky, experiment)
    tags = {"enpire.kind": "iteration", "enpire.iteration": "0"}
    run_id = with_retry(lambda: creator.create(("iteration", 0), tags=tags, run_name="iter-0000", start_time=1),
                        {})
    runs = client.search_runs([experiment], "tags.`enpire.kind` = 'iteration'")
    assert [r.info.run_id for r in runs] == [run_id] and flaky.creates == 1  # found, not created again
    assert runs[0].data.tags[WRITE_TAG] and runs[0].data.tags["enpire.iteration"] == "0"
    other = creator.create(("iteration", 1), tags={**tags, "enpire.iteration": "1"}, run_name="iter-0001",
                           start_time=2)
    assert other != run_id and flaky.creates == 2  # another key: a run of its own

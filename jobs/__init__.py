"""The Cloud Run job: `python -m jobs.pipeline_runner --run-id ...`."""

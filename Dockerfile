# The pipeline runner (Cloud Run job): python -m jobs.pipeline_runner --run-id ID.
# Build and push: see terraform/README.md ("Build and push the runner image").

# Exact tag of the base image; after the first pull, pin its digest too
# (FROM python:3.12.11-slim-bookworm@sha256:...) so rebuilds are reproducible.
FROM python:3.12.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Runtime dependencies only (the functions' pins plus the source readers' Arrow);
# own layer so a code change does not reinstall them.
COPY requirements.txt requirements-runner.txt ./
RUN pip install --no-cache-dir -r requirements-runner.txt

# Only what the job imports: the library, the job, the table schemas.
COPY shared/ shared/
COPY jobs/ jobs/
COPY schemas/ schemas/

# The job never needs root: a fixed unprivileged uid, no home, no shell login.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin runner
USER 10001

# A batch job has no port to probe: Cloud Run jobs watch the exit code instead.
HEALTHCHECK NONE

ENTRYPOINT ["python", "-m", "jobs.pipeline_runner"]

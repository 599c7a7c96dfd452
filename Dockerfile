# syntax=docker/dockerfile:1
# OneThing 一件事: one image for the worker (`onething worker`) and the API (`onething api`).
#
#   docker build -t onething:0.1.0 .
#   docker run --rm onething:0.1.0 --help
#
# docker-compose.yml runs it with its settings; docs/deployment.md explains them.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: the package and the runtime lock's dependencies, installed into a venv --
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/onething
WORKDIR /src
# The runtime lock only (requirements/runtime.txt, `make lock`): what production runs, each file
# checked against its hash. No test or lint tool and no Temporal dev server (the `local` and `dev`
# extras are make's, requirements/dev.txt). Copied alone first, so this layer is rebuilt only when
# the lock changes. Every dependency ships wheels for linux/amd64 and arm64: no compiler.
COPY requirements/runtime.txt requirements/runtime.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/onething/bin/pip install --require-hashes -r requirements/runtime.txt
# .dockerignore keeps tests, benchmarks, certificates, local databases and .env out of the context.
COPY . .
# OneThing itself, built by the locked setuptools: nothing is resolved or fetched beside the lock.
RUN /opt/onething/bin/pip install --no-deps --no-build-isolation /src

# -- runtime: the venv and nothing else from the build --
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="onething" \
      org.opencontainers.image.description="OneThing 一件事: worker and API (onething worker | onething api)"
ENV PATH=/opt/onething/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ONETHING_API_HOST=0.0.0.0 \
    ONETHING_ARCHIVE_DIR=/var/lib/onething/archive \
    ONETHING_FILE_STORE_DIR=/var/lib/onething/files \
    ONETHING_CALENDAR_FILE=/var/lib/onething/calendar/holiday_notices.yaml
COPY --from=build /opt/onething /opt/onething

# A system user with a fixed id (volume ownership, Kubernetes runAsNonRoot). The archive and
# calendar directories are created here, owned by that user, so a new named volume mounted on
# them starts with that ownership; the calendar starts as the shipped holiday notices
# (`onething calendar load` adds newer ones to it). The last two commands fail the build,
# not the first start, if a module, a data file or the time zone database is missing.
# The CJK font the electronic licences' PDFs are set in (documents/licence_pdf.py).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 onething \
    && useradd --system --uid 10001 --gid onething --home-dir /var/lib/onething --shell /usr/sbin/nologin onething \
    && mkdir -p /var/lib/onething/archive /var/lib/onething/files /var/lib/onething/calendar \
    && python -c "import os, shutil; from domain.workcalendar import default_calendar_file; \
shutil.copy(default_calendar_file(), os.environ['ONETHING_CALENDAR_FILE'])" \
    && chown -R onething:onething /var/lib/onething \
    && python -c "import zoneinfo; zoneinfo.ZoneInfo('Asia/Shanghai'); \
import api.main, worker, cli; cli.build_parser()" \
    && onething catalogue validate

USER 10001:10001
WORKDIR /var/lib/onething
EXPOSE 8000
ENTRYPOINT ["onething"]
CMD ["api"]

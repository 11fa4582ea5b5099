# Two images from one file (docker-compose.yml builds both):
#   target web     web (gunicorn) and beat: Django, DRF, the pages and the API, without PyTorch:
#                  the web process never imports it (tests/screening/test_production_http.py)
#   target worker  the workers (cpu, training, gpu): the same plus PyTorch and torchvision (the
#                  `ml` extra of pyproject.toml; CUDA wheels, about 4.4 GB). The last stage, so
#                  a plain `docker build .` makes it. CPU-only workers, without the CUDA
#                  libraries: --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Python packages are installed at the versions of constraints.txt (those the test suite ran
# with); the base image is Python 3.11 on Debian bookworm (its patch release floats).
FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 1000 app
COPY pyproject.toml README.md constraints.txt ./
COPY screening/__init__.py screening/__init__.py
COPY classifier/__init__.py classifier/__init__.py

FROM base AS deps
# digest2 (the MPC's NEO classifier) is built from its source: a C compiler for that, then gone
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --constraint constraints.txt -e . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

# --- web and beat: no PyTorch ---
FROM deps AS web
COPY . .
# /data: what the app's user writes (static files, the product's own files under VAR_DIR).
RUN mkdir -p /data/media /data/static /data/var && chown -R app /data
USER app
ENV MEDIA_ROOT=/data/media STATIC_ROOT=/data/static VAR_DIR=/data/var
EXPOSE 8000
# gunicorn.conf.py: gthread workers on :8000
CMD ["gunicorn", "screening.wsgi"]

# --- the workers: PyTorch too ---
FROM deps AS worker
ARG TORCH_INDEX_URL=""
RUN pip install --constraint constraints.txt \
        ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple} \
        -e '.[ml]'
COPY . .
# MODELS_DIR is /data/models, the `models` volume: the baseline checkpoints are copied there (a
# new volume starts with them) and retraining writes its candidates there, as the app's user.
COPY --chown=app models/ /data/models/
RUN mkdir -p /data/media /data/static /data/var /data/models/candidates \
    && chown app /data /data/media /data/static /data/var /data/models /data/models/candidates
USER app
ENV MEDIA_ROOT=/data/media STATIC_ROOT=/data/static VAR_DIR=/data/var MODELS_DIR=/data/models
CMD ["python", "-m", "screening.ops.workers", "cpu"]

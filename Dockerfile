# One image for web, workers and beat; the GPU worker runs it with an NVIDIA device.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY screening/__init__.py screening/__init__.py
COPY classifier/__init__.py classifier/__init__.py
RUN pip install -e . && useradd --create-home --uid 1000 app
COPY . .
RUN mkdir -p /data/media /data/models /data/static /data/beat && chown -R app /data
USER app
ENV MEDIA_ROOT=/data/media STATIC_ROOT=/data/static
EXPOSE 8000
CMD ["gunicorn", "screening.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "120"]
